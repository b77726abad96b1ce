"""The compiled medians (metrics.summary_kernels) equal the numpy definitions to the last bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evenstride.metrics import summary_kernels as mk
from evenstride.metrics.fit import read_fit
from evenstride.metrics.summary import (
    Ranked,
    _sorted_quantiles,
    summarise_fit_run,
    weighted_quantiles,
)

pytestmark = pytest.mark.skipif(not mk.COMPILED, reason="numba not available")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
QS = np.array([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])


def _data(rng: np.random.Generator, n: int, decimals: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.round(rng.normal(50, 1.5, n), decimals)  # quantised: many ties
    x[rng.random(n) < 0.1] = np.nan
    w = rng.choice([0.0, 0.25, 0.5, 1.0, 1.0, 1.0, 1.7, 3.0, np.nan], n)
    return x, w


def test_interp_is_numpys() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        n = int(rng.integers(1, 30))
        xp = np.cumsum(rng.random(n) + 1e-3) / 7.0
        fp = np.round(rng.normal(0, 5, n), int(rng.integers(0, 3)))
        xs = np.concatenate([xp, rng.uniform(-1, xp[-1] + 1, 20), [np.nan, xp[0], xp[-1]]])
        zero = np.zeros(n)  # no half weights, total 1: the positions are xp itself
        got = np.array([mk._interp(x, xp, zero, 1.0, fp, 0, n) for x in xs])
        np.testing.assert_array_equal(got, np.interp(xs, xp, fp))


def test_masked_quantiles_equal_the_numpy_definition() -> None:
    rng = np.random.default_rng(5)
    for _ in range(300):
        n = int(rng.integers(0, 500))
        x, w = _data(rng, n, int(rng.integers(0, 3)))
        mask = rng.random(n) < 0.7
        order = Ranked(x).order
        use = mask & np.isfinite(w) & (w > 0) & np.isfinite(x)
        idx = order[use[order]]
        expected = _sorted_quantiles(x[idx], w[idx], QS)
        np.testing.assert_array_equal(
            mk._sorted_masked(order, x[order], w[order], mask, QS), expected
        )
        np.testing.assert_array_equal(
            mk._sorted_masked(order, x[order], w[order], mask, QS),
            weighted_quantiles(x[use], w[use], QS),
        )


def test_grouped_quantiles_are_per_group_weighted_quantiles() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(0, 400))
        x, w = _data(rng, n, int(rng.integers(0, 3)))
        groups = rng.integers(-2, 7, n)
        mask = rng.random(n) < 0.8
        order = Ranked(x).order
        got = mk._sorted_grouped(order, x[order], w[order], np.where(mask, groups, -1), 6, QS)
        for g in range(6):
            sel = mask & (groups == g)
            np.testing.assert_array_equal(got[g], weighted_quantiles(x[sel], w[sel], QS))


def test_counting_order_is_the_stable_sort_or_declines() -> None:
    rng = np.random.default_rng(9)
    for per_unit, decimals in ((100.0, 2), (1000.0, 3), (10.0, 1), (64.0, None)):
        for _ in range(100):
            n = int(rng.integers(0, 600))
            raw = rng.integers(-3000, 9000, n)
            x = raw / 64.0 if decimals is None else np.round(raw / per_unit, decimals)
            x[rng.random(n) < 0.1] = np.nan
            order, ok = mk.counting_order(x, per_unit, 8 * n + 65536)
            finite = np.flatnonzero(np.isfinite(x))
            assert ok
            np.testing.assert_array_equal(order, finite[np.argsort(x[finite], kind="stable")])
    # values off the grid, too wide a range, non-finite only: declined or empty, never wrong
    x = np.array([1.0, 1.004, 0.5, 2.0])  # 1.0 and 1.004 share the key 100 at 100 per unit
    assert not mk.counting_order(x, 100.0, 1000)[1]
    assert not mk.counting_order(np.array([0.0, 1e6]), 100.0, 1000)[1]
    assert not mk.counting_order(np.array([1e300, 0.0]), 100.0, 10**9)[1]
    order, ok = mk.counting_order(np.array([np.nan, np.inf, -np.inf]), 100.0, 1000)
    assert ok and len(order) == 0


def _fixture_runs() -> list:
    files = sorted((FIXTURES / "synthetic").rglob("*.fit"))
    files += sorted((FIXTURES / "samples").glob("running_*/*.fit"))
    return [run for f in files for run in read_fit(f.read_bytes()).runs()]


def test_summaries_are_bit_identical_to_the_numpy_path(monkeypatch) -> None:
    runs = _fixture_runs()
    assert len(runs) >= 10
    compiled = [summarise_fit_run(r).to_dict() for r in runs]
    monkeypatch.setattr(mk, "COMPILED", False)  # the numpy reference in summary.py
    reference = [summarise_fit_run(r).to_dict() for r in runs]
    assert compiled == reference


def test_speed_bin_slope_equals_the_numpy_path(monkeypatch) -> None:
    from evenstride.metrics.summary import _balance_speed_slope

    rng = np.random.default_rng(13)
    results = []
    for _ in range(60):
        n = int(rng.integers(0, 3000))
        spd = np.round(rng.uniform(2.0, 4.5, n), 3)
        bal = np.round(50.5 + 0.8 * (spd - 3) + rng.normal(0, 0.4, n), 2)
        spd[rng.random(n) < 0.05] = np.nan
        bal[rng.random(n) < 0.05] = np.nan
        w = rng.choice([0.5, 1.0, 1.0, 2.0], n)
        within = rng.random(n) < 0.9
        results.append((spd, bal, w, within, _balance_speed_slope(bal, spd, w, within=within)))
    assert sum(r[-1] is not None for r in results) > 30
    monkeypatch.setattr(mk, "COMPILED", False)
    for spd, bal, w, within, got in results:
        assert _balance_speed_slope(bal, spd, w, within=within) == got


def test_theil_sen_slope_kernel_is_theil_sens_slope() -> None:
    """Odd and even pair counts (median of one or two values), ties in x, NaNs, too few points."""
    from evenstride.metrics.summary import theil_sen

    rng = np.random.default_rng(29)
    checked = 0
    for _ in range(2000):
        n = int(rng.integers(0, 40))
        x = np.round(rng.uniform(2.0, 4.5, n), int(rng.integers(0, 3)))  # rounded: equal xs
        y = np.round(50 + rng.normal(0, 1, n) + 0.7 * x, 2)
        x[rng.random(n) < 0.1] = np.nan
        y[rng.random(n) < 0.1] = np.inf
        expected, _ = theil_sen(x, y)
        got = mk.theil_sen_slope(x, y)
        if np.isnan(expected):
            assert np.isnan(got)
        else:
            assert got == expected, (x, y)  # to the bit
            checked += 1
    assert checked > 1500
    assert mk.theil_sen_slope(np.array([1.0, 2.0]), np.array([5.0, 3.0])) == -2.0  # a known one


def test_pairwise_sum_is_numpys_sum() -> None:
    rng = np.random.default_rng(17)
    sizes = [*range(0, 300), *rng.integers(300, 40_000, 200).tolist()]
    for n in sizes:
        a = rng.normal(0, 1, n) * 10.0 ** rng.uniform(-6, 6, n)
        assert mk._pairwise(a, 0, n) == a.sum()
        mask = rng.random(n) < 0.6
        assert mk._masked_sum(a, mask, np.empty(n)) == a[mask].sum()
        w = rng.uniform(0, 3, n)
        ok = mask & np.isfinite(a)
        expected = np.average(a[ok], weights=w[ok]) if ok.any() else np.nan
        got = mk._masked_average(a, w, mask, np.empty(n), np.empty(n))
        assert got == expected or (np.isnan(got) and np.isnan(expected))


def test_shared_sample_summaries_are_bit_identical(shared_samples, monkeypatch) -> None:
    """Real watch files (running dynamics, laps, pauses, hills) through both paths."""
    from conftest import RUNNING_GROUPS, shared_sample_files

    runs = [
        run for f in shared_sample_files(RUNNING_GROUPS) for run in read_fit(f.read_bytes()).runs()
    ]
    assert sum(summarise_fit_run(r).has_balance for r in runs) >= 5
    compiled = [summarise_fit_run(r, reference_speed=3.0).to_dict() for r in runs]
    monkeypatch.setattr(mk, "COMPILED", False)
    assert [summarise_fit_run(r, reference_speed=3.0).to_dict() for r in runs] == compiled


def test_weighted_mean_kernel_is_the_numpy_formula() -> None:
    rng = np.random.default_rng(19)
    for _ in range(300):
        n = int(rng.integers(0, 2000))
        v = rng.normal(150, 30, n)
        v[rng.random(n) < 0.2] = np.nan
        w = rng.choice([0.0, 0.5, 1.0, 1.0, 2.0, 10.0, -1.0], n) * rng.uniform(0.5, 1.5, n)
        ok = ~np.isnan(v) & (w > 0)
        total = w[ok].sum()
        expected = (v[ok] * w[ok]).sum() / total if total > 0 else np.nan
        got = mk.weighted_mean(v, w)
        assert got == expected or (np.isnan(got) and np.isnan(expected))


def test_one_compiled_version_for_frames_and_arrays() -> None:
    """Read-only and writable, frame and array inputs share one compiled run_statistics."""
    from evenstride.metrics.run_table import columns_frame
    from evenstride.metrics.summary import summarise_run

    run = _fixture_runs()[0]
    frozen = {k: v.copy() for k, v in run.columns.items()}
    for v in frozen.values():
        v.flags.writeable = False
    expected = summarise_fit_run(run).to_dict()
    for records in (run.columns, frozen, columns_frame(run.columns)):
        got = summarise_run(records, laps=run.laps, sub_sport=run.sub_sport,
                            start_time=run.start_time, run_id=expected["run_id"])  # fmt: skip
        assert got.to_dict() == expected
    assert len(mk.run_statistics.signatures) == 1


def test_watch_means_kernel_is_hold_weights_then_weighted_mean() -> None:
    """One compiled call per run gives the numpy functions' numbers bit for bit."""
    from evenstride.metrics.weights import hold_weights, watch_means, weighted_mean

    rng = np.random.default_rng(23)
    for trial in range(400):
        n = int(rng.integers(0, 600))
        t = 1.7e9 + np.cumsum(rng.choice([0.0, 0.5, 1.0, 1.0, 3.0, 15.0], n))
        intervals = None
        if trial % 3 and n:
            edges = np.sort(rng.uniform(t[0] - 5, t[-1] + 5, 2 * int(rng.integers(1, 4))))
            intervals = [(float(a), float(b)) for a, b in edges.reshape(-1, 2)]
        if trial % 7 == 0 and n:
            t[rng.integers(0, n)] = np.nan  # a damaged timestamp propagates as in numpy
        cols = [rng.normal(100, 20, n) for _ in range(int(rng.integers(1, 10)))]
        for c in cols:
            c[rng.random(n) < 0.3] = np.nan
        cap = float(rng.choice([10.0, 2.0, 0.5]))
        weights = hold_weights(t, intervals, cap)
        expected = [weighted_mean(c, weights) for c in cols]
        got = watch_means(t, intervals, cols, cap)
        np.testing.assert_array_equal(got, expected)


def test_value_orders_fall_back_per_column_off_the_grid() -> None:
    from evenstride.metrics import columns as C
    from evenstride.metrics.summary import _value_order, _value_orders

    rng = np.random.default_rng(29)
    units = [C.RESOLUTION[c] for c in (C.GCT_BALANCE, C.SPEED, C.CADENCE, C.GCT)]
    for _ in range(100):
        n = int(rng.integers(1, 400))
        cols = []
        for unit in units:
            x = np.round(rng.normal(50, 3, n) * unit) / unit
            if rng.random() < 0.4:
                x = x + rng.normal(0, 1e-6, n)  # off the sensor grid: the ordinary sort
            x[rng.random(n) < 0.2] = np.nan
            cols.append(x)
        got = _value_orders(tuple(cols))
        for order, x in zip(got, cols, strict=True):
            np.testing.assert_array_equal(order, _value_order(x))
            assert not order.flags.writeable  # one compiled run_statistics for every input
