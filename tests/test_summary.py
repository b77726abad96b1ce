"""Per-run summaries: zones, cleaning gates, robust statistics, laps, cadence-speed fit."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evenstride.metrics import columns as C
from evenstride.metrics import summarise_run
from evenstride.metrics.clean import CleanSettings, clean_samples, grade_from_altitude
from evenstride.metrics.simulate import simulate_run_records
from evenstride.metrics.summary import (
    DEFAULT_CADENCE_SLOPE,
    NO_BALANCE_FLAG,
    PaceBands,
    fit_cadence_speed,
    pace_band,
    surface_of,
    theil_sen,
    weighted_median,
    weighted_quantiles,
)
from evenstride.metrics.zones import cadence_zone, zone_keys, zone_of_balance, zone_of_d

T0 = pd.Timestamp("2026-03-02 06:30", tz="UTC")


def steady_run(
    n: int = 1800,
    *,
    balance: float | np.ndarray | None = 50.0,
    speed: float | np.ndarray = 3.0,
    cadence: float | np.ndarray = 170.0,
    start: pd.Timestamp = T0,
) -> pd.DataFrame:
    """A flat 1 Hz run without noise: every sample passes the gates except the warm-up."""
    t = np.arange(n, dtype=float)
    spd = np.broadcast_to(np.asarray(speed, dtype=float), (n,)).copy()
    bal = (
        np.full(n, np.nan)
        if balance is None
        else np.broadcast_to(np.asarray(balance, dtype=float), (n,)).copy()
    )
    return pd.DataFrame(
        {
            C.TIMESTAMP: start + pd.to_timedelta(t, unit="s"),
            C.DISTANCE: np.cumsum(spd),
            C.SPEED: spd,
            C.ALTITUDE: np.full(n, 50.0),
            C.CADENCE: np.broadcast_to(np.asarray(cadence, dtype=float), (n,)).copy(),
            C.GCT: np.full(n, 240.0),
            C.GCT_BALANCE: bal,
            C.VERTICAL_OSCILLATION: np.full(n, 80.0),
            C.VERTICAL_RATIO: np.full(n, 7.0),
            C.STEP_LENGTH: np.full(n, 1100.0),
        }
    )


# ----------------------------------------------------------------------------------- zones


@pytest.mark.parametrize(
    ("balance", "zone"),
    [
        (50.0, "green"),
        (50.7, "green"),
        (50.74, "green"),  # shown by Garmin as 50.7
        (50.75, "orange"),  # shown as 50.8
        (50.8, "orange"),
        (52.2, "orange"),
        (52.24, "orange"),
        (52.25, "red"),
        (52.3, "red"),
        (49.3, "green"),
        (49.26, "green"),
        (49.25, "orange"),
        (47.8, "orange"),
        (47.76, "orange"),
        (47.75, "red"),
        (40.0, "red"),
    ],
)
def test_garmin_zone_boundaries_with_quantisation(balance: float, zone: str) -> None:
    assert zone_of_balance(balance) == zone


def test_zone_of_missing_values() -> None:
    assert zone_of_d(None) is None
    assert zone_of_d(math.nan) is None
    assert zone_of_balance(None) is None


def test_zone_keys_split_sides() -> None:
    keys = zone_keys(np.array([0.0, 1.0, -1.0, 3.0, -3.0, np.nan]))
    assert keys.tolist() == [0, 1, 2, 3, 4, -1]


@given(st.floats(min_value=-20, max_value=20, allow_nan=False))
@settings(max_examples=200, deadline=None)
def test_zones_are_symmetric(d: float) -> None:
    assert zone_of_d(d) == zone_of_d(-d)


def test_cadence_zone_bands() -> None:
    assert cadence_zone(190) == "purple"
    assert cadence_zone(180) == "blue"
    assert cadence_zone(168) == "green"
    assert cadence_zone(155) == "orange"
    assert cadence_zone(140) == "red"
    assert cadence_zone(None) is None


# ----------------------------------------------------------------------------------- robust stats


@given(st.lists(st.floats(min_value=-1e3, max_value=1e3), min_size=1, max_size=60))
@settings(max_examples=200, deadline=None)
def test_weighted_median_equals_median_for_equal_weights(xs: list[float]) -> None:
    assert weighted_median(xs) == pytest.approx(float(np.median(xs)), abs=1e-9)


def test_weighted_quantiles_respect_time_weights() -> None:
    # 50.0 held for 9 s, 52.0 for 1 s: the time-weighted median stays near 50.0
    assert weighted_median([50.0, 52.0], [9.0, 1.0]) < 50.5
    assert weighted_median([50.0, 52.0], [1.0, 9.0]) > 51.5
    assert weighted_median([50.0, 50.0, 50.0, 52.0], [3.0, 3.0, 3.0, 1.0]) == 50.0
    assert np.isnan(weighted_quantiles([np.nan], None, (0.5,))[0])


def test_theil_sen_ignores_outliers() -> None:
    x = np.linspace(2.0, 4.0, 40)
    y = 150.0 + 10.0 * x
    y[[3, 17, 30]] += [40.0, -50.0, 60.0]
    slope, intercept = theil_sen(x, y)
    assert slope == pytest.approx(10.0, abs=1e-9)
    assert intercept == pytest.approx(150.0, abs=1e-9)
    assert all(math.isnan(v) for v in theil_sen([3.0, 3.0], [1.0, 2.0]))


# ----------------------------------------------------------------------------------- cleaning


def test_grade_from_altitude_over_distance() -> None:
    dist = np.arange(0.0, 1000.0, 3.0)
    alt = 100.0 + 0.06 * dist  # 6 % everywhere
    g = grade_from_altitude(dist, alt)
    assert np.nanmedian(g) == pytest.approx(6.0, abs=0.05)
    assert np.all(np.isnan(grade_from_altitude(dist, np.full_like(dist, np.nan))))


def test_clean_gates_remove_walk_pause_warmup_and_hill() -> None:
    df = simulate_run_records(np.random.default_rng(3), duration_s=3600, balance_pct=50.5)
    cs = clean_samples(df)
    t = cs.t_s
    assert not cs.clean[t < 300].any()  # warm-up (running time)
    walk = (df[C.CADENCE] < 140).to_numpy()
    assert walk.any() and not cs.clean[walk].any()
    hill = np.abs(cs.grade_pct) > 2.0
    assert hill.sum() > 100 and not cs.clean[hill].any()
    gap_after = np.flatnonzero(np.diff(t) > 5.0) + 1
    assert len(gap_after) == 1
    k = gap_after[0]
    assert not cs.clean[k : k + 10].any()  # settling after the pause
    assert cs.clean[k + 15 : k + 60].all()
    assert cs.grade_checked


def test_warmup_is_running_time_not_wall_clock() -> None:
    # 5 minutes standing at a light (walking cadence) before the run: warm-up starts later
    df = steady_run(1200)
    df.loc[:299, C.CADENCE] = 0.0
    df.loc[:299, C.SPEED] = 0.0
    cs = clean_samples(df)
    assert not cs.clean[:600].any()
    assert cs.clean[601:].all()
    cs_short = clean_samples(df, warmup_s=60)
    assert cs_short.clean[361:].all() and not cs_short.clean[:360].any()


def test_strava_columns_grade_and_moving() -> None:
    df = steady_run(1200, balance=None)
    df = df.drop(columns=[C.ALTITUDE])
    df[C.GRADE] = 0.0
    df.loc[700:799, C.GRADE] = 5.0
    df[C.MOVING] = True
    df.loc[900:949, C.MOVING] = False
    cs = clean_samples(df)
    assert not cs.clean[700:800].any()
    assert not cs.clean[900:950].any()
    assert cs.clean[400:700].all()


# ----------------------------------------------------------------------------------- summaries


def test_summary_recovers_balance_despite_nuisances() -> None:
    rng = np.random.default_rng(11)
    df = simulate_run_records(rng, duration_s=3600, balance_pct=51.2)
    naive = float(np.nanmedian(df[C.GCT_BALANCE]))
    s = summarise_run(df, sensor="HRM-Pro 123", sub_sport="street", run_id="a1")
    assert s.has_balance and NO_BALANCE_FLAG not in s.flags
    assert s.balance_median == pytest.approx(51.2, abs=0.05)
    assert s.d == pytest.approx(1.2, abs=0.05)
    assert abs(naive - 51.2) > abs(s.balance_median - 51.2)  # cleaning matters
    assert s.zone == "orange"
    assert 45.0 < s.clean_minutes < 52.0
    assert s.balance_minutes == pytest.approx(s.clean_minutes)
    assert 0.9 < s.balance_iqr < 1.3  # 0.8 pp per-sample SD -> IQR ~1.08
    assert sum(s.zone_minutes.values()) == pytest.approx(s.balance_minutes, abs=0.01)
    assert s.zone_minutes["orange_left"] > s.zone_minutes["orange_right"]
    assert s.surface == "road" and s.sensor == "HRM-Pro 123"
    assert s.stratum.pace_band == "easy"
    assert s.cadence_mean == pytest.approx(170.0, abs=1.0)
    assert s.gct_mean_ms == pytest.approx(250.0, abs=2.0)
    assert s.vertical_oscillation_mm == pytest.approx(85.0, abs=0.5)
    assert s.vertical_ratio_pct == pytest.approx(7.5, abs=0.1)
    assert s.speed_median_mps == pytest.approx(3.0, abs=0.05)
    assert abs(s.drift_pp) < 0.1


def test_summary_to_dict_is_json_safe() -> None:
    df = steady_run(900, balance=50.4)
    s = summarise_run(
        df,
        laps=[{"start_time": T0, "total_elapsed_time": 900.0}],
        run_id="x",
        reference_speed=3.0,
    )
    d = s.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert back["start_time"] == "2026-03-02T06:30:00+00:00"
    assert back["laps"][0]["balance_median"] == 50.4
    assert back["balance_speed_slope"] is None  # one speed only


def test_no_balance_sensor_still_summarises_cadence() -> None:
    df = steady_run(1800, balance=None, cadence=172.0)
    s = summarise_run(df)
    assert not s.has_balance
    assert NO_BALANCE_FLAG in s.flags
    assert s.balance_median is None and s.d is None and s.zone is None and s.drift_pp is None
    assert s.balance_minutes == 0.0
    assert s.cadence_median == 172.0
    assert s.clean_minutes == pytest.approx(25.0, abs=0.05)
    json.dumps(s.to_dict(), allow_nan=False)


def test_drift_is_last_third_minus_first_third() -> None:
    n = 3300  # 300 s warm-up + 3000 clean samples
    bal = np.where(np.arange(n) < 300 + 1500, 50.0, 51.0)
    s = summarise_run(steady_run(n, balance=bal))
    assert s.drift_pp == pytest.approx(1.0)
    assert s.balance_median in (50.0, 51.0, 50.5)


def test_balance_speed_slope() -> None:
    speeds = np.repeat([2.6, 3.0, 3.4, 3.8], 600)
    speeds = np.concatenate([np.full(300, 2.6), speeds])
    bal = 50.0 + 0.5 * (speeds - 3.0)
    s = summarise_run(steady_run(len(speeds), balance=bal, speed=speeds))
    assert s.balance_speed_slope == pytest.approx(0.5, abs=1e-6)


def test_laps_by_start_time_and_elapsed() -> None:
    n = 1500
    bal = np.where(np.arange(n) < 900, 50.2, 51.4)
    df = steady_run(n, balance=bal, cadence=np.where(np.arange(n) < 900, 168.0, 176.0))
    laps = [
        {"start_time": T0, "total_elapsed_time": 900.0},
        {"start_time": (T0 + pd.Timedelta(seconds=900)).to_pydatetime(), "total_elapsed_time": 600},
    ]
    s = summarise_run(df, laps=laps)
    assert [lp.balance_median for lp in s.laps] == [50.2, 51.4]
    assert [lp.zone for lp in s.laps] == ["green", "orange"]
    assert [lp.cadence_median for lp in s.laps] == [168.0, 176.0]
    # lap values include the warm-up part (first lap keeps its first 5 minutes; only the
    # first 10 s after the start settle, as after any pause)
    assert s.laps[0].clean_minutes == pytest.approx(15.0 - 10 / 60, abs=0.01)
    assert s.laps[1].clean_minutes == pytest.approx(10.0, abs=0.05)


def test_unsorted_records_are_sorted() -> None:
    df = steady_run(1200, balance=np.linspace(50.0, 51.0, 1200))
    a = summarise_run(df)
    b = summarise_run(df.sample(frac=1.0, random_state=1))
    assert a.balance_median == b.balance_median and a.drift_pp == b.drift_pp


def test_implausible_balance_values_are_ignored() -> None:
    bal = np.full(1200, 50.6)
    bal[400:460] = 99.0
    bal[500:520] = 0.5
    s = summarise_run(steady_run(1200, balance=bal))
    assert s.balance_mean == pytest.approx(50.6)


def test_empty_records() -> None:
    s = summarise_run(steady_run(0))
    assert s.clean_minutes == 0.0 and s.balance_median is None and s.cadence_mean is None


# ----------------------------------------------------------------------------------- cadence


def test_fit_cadence_speed_from_pairs_and_fallback() -> None:
    rng = np.random.default_rng(2)
    sp = rng.uniform(2.5, 4.0, 60)
    cd = 130.0 + 11.0 * sp + rng.normal(0.0, 0.5, 60)
    cd[:4] += 25.0  # odd runs (strides, GPS trouble)
    fit = fit_cadence_speed(list(zip(sp, cd, strict=True)))
    assert fit.slope_spm_per_mps == pytest.approx(11.0, abs=0.6)
    assert fit.method == "theil-sen"
    assert fit.reference_speed_mps == pytest.approx(float(np.median(sp)))
    assert fit.predict(3.0) == pytest.approx(163.0, abs=1.5)
    flat = fit_cadence_speed([(3.0, 170.0), (3.01, 171.0), (3.02, 169.0)])
    assert flat.method == "default-slope" and flat.slope_spm_per_mps == DEFAULT_CADENCE_SLOPE
    with pytest.raises(ValueError):
        fit_cadence_speed([])


def test_cadence_at_reference_speed_is_pace_adjusted() -> None:
    fit = fit_cadence_speed([(2.5, 160.0), (3.0, 165.0), (3.5, 170.0), (4.0, 175.0)])
    assert fit.slope_spm_per_mps == pytest.approx(10.0)
    slow = summarise_run(steady_run(1200, speed=2.6, cadence=161.0), cadence_fit=fit)
    fast = summarise_run(steady_run(1200, speed=3.8, cadence=173.0), cadence_fit=fit)
    assert slow.cadence_median == 161.0 and fast.cadence_median == 173.0
    assert slow.cadence_at_reference == pytest.approx(fast.cadence_at_reference)
    assert slow.reference_speed_mps == fit.reference_speed_mps
    # summaries can feed the fit too
    mid = summarise_run(steady_run(1200, speed=3.2, cadence=167.0), cadence_fit=fit)
    fit2 = fit_cadence_speed([slow, mid, fast])
    assert fit2.slope_spm_per_mps == pytest.approx(10.0)
    plain = summarise_run(steady_run(1200, speed=2.6, cadence=161.0), reference_speed=3.0)
    assert any("default cadence-speed slope" in f for f in plain.flags)
    assert plain.cadence_at_reference == pytest.approx(161.0 + DEFAULT_CADENCE_SLOPE * 0.4)


# ----------------------------------------------------------------------------------- strata


def test_pace_bands_relative_and_fixed() -> None:
    assert pace_band(3.0, 3.0) == "easy"
    assert pace_band(3.3, 3.0) == "steady"
    assert pace_band(3.6, 3.0) == "tempo"
    assert pace_band(4.2, 3.0) == "fast"
    assert pace_band(2.9) == "easy"
    assert pace_band(3.3) == "steady"
    assert pace_band(3.8) == "tempo"
    assert pace_band(4.5) == "fast"
    assert pace_band(None) is None
    custom = PaceBands(names=("slow", "quick"), relative_edges=(1.1,), fixed_edges_mps=(3.0,))
    assert pace_band(3.5, bands=custom) == "quick"


def test_surface_from_sub_sport() -> None:
    assert surface_of("treadmill") == "treadmill"
    assert surface_of("indoor_running") == "treadmill"
    assert surface_of("track") == "track"
    assert surface_of("trail") == "trail"
    assert surface_of("street") == "road"
    assert surface_of(None) == "road"


def test_gates_are_settings() -> None:
    df = steady_run(1200, speed=1.7)  # a very slow jog
    assert summarise_run(df).clean_minutes == 0.0
    relaxed = CleanSettings(min_speed_mps=1.5)
    assert summarise_run(df, settings=relaxed).clean_minutes == pytest.approx(15.0, abs=0.05)


def test_summarise_fit_run_takes_everything_from_the_run() -> None:
    from evenstride.metrics.fit.model import Run
    from evenstride.metrics.run_table import frame_columns
    from evenstride.metrics.summary import summarise_fit_run

    df = steady_run(1200, balance=49.0)
    run = Run(
        index=0,
        sport="running",
        sub_sport="treadmill",
        start_time=T0,
        elapsed_s=1200.0,
        timer_s=1200.0,
        distance_m=3600.0,
        session={},
        laps=[{"start_time": T0, "total_elapsed_time": 1200.0}],
        columns=frame_columns(df),
    )
    s = summarise_fit_run(run, sensor="HRM-Pro 9")
    assert s.surface == "treadmill" and s.sub_sport == "treadmill"
    assert s.run_id == "2026-03-02T06:30:00+00:00#0"
    assert s.d == pytest.approx(-1.0) and s.zone == "orange"
    assert len(s.laps) == 1 and s.laps[0].balance_median == 49.0


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.floats(40, 60), st.just(float("nan"))),
            st.sampled_from([0.0, 0.5, 1.0, 2.0, 7.0]),
            st.integers(-1, 4),
        ),
        max_size=60,
    )
)
def test_grouped_weighted_median_equals_one_group_at_a_time(rows) -> None:
    """The one-sort grouped median (laps, speed bins) is exactly the per-group weighted median."""
    from evenstride.metrics.summary import grouped_weighted_median

    x = np.array([r[0] for r in rows], dtype=float)
    w = np.array([r[1] for r in rows], dtype=float)
    g = np.array([r[2] for r in rows], dtype=np.int64)
    got = grouped_weighted_median(x, w, g, 5)
    for k in range(5):
        expected = weighted_median(x[g == k], w[g == k])
        np.testing.assert_array_equal(got[k], expected)


def test_ranked_medians_equal_sorting_each_subset() -> None:
    """Ranked (one sort per run) gives bit-identical results to sorting every subset."""
    from evenstride.metrics.summary import Ranked, grouped_weighted_median

    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(0, 400))
        x = np.round(rng.normal(50, 1, n), int(rng.integers(0, 3)))  # quantised: many ties
        x[rng.random(n) < 0.1] = np.nan
        w = rng.choice([0.0, 0.5, 1.0, 1.0, 1.0, 3.0], n)
        mask = rng.random(n) < 0.7
        groups = rng.integers(-1, 6, n)
        ranked = Ranked(x)
        use = mask & (w > 0)
        expect = weighted_quantiles(x[mask], w[mask], (0.25, 0.5, 0.75))
        np.testing.assert_array_equal(ranked.quantiles(w, use, (0.25, 0.5, 0.75)), expect)
        expect_g = grouped_weighted_median(x[mask], w[mask], groups[mask], 6)
        np.testing.assert_array_equal(ranked.grouped_median(w, groups, 6, use), expect_g)
