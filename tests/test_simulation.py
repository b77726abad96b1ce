"""Proof by simulation: false alarms, detection of 1.5 pp steps, no alarm from one outlier.

Seeded, so deterministic; benchmarks/simulate_seasons.py runs the same with more seasons.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from evenstride.metrics import assess_trend, summarise_run
from evenstride.metrics.simulate import (
    SeasonSpec,
    evaluate,
    simulate_run_records,
    simulate_season,
    wilson_interval,
)
from evenstride.metrics.trend import DEFAULT_TREND, detect_shifts, prepare_series

SEED = 20260105


@pytest.fixture(scope="module")
def balance_report():
    return evaluate(250, 250, seed=SEED)


def test_false_alarms_at_most_5_percent_of_stable_seasons(balance_report) -> None:
    r = balance_report
    assert r.n_stable == 250
    assert r.false_alarm_rate <= 0.05, r.lines()


def test_step_of_1_5_pp_detected_within_3_weeks_in_90_percent(balance_report) -> None:
    r = balance_report
    assert r.window_days == 21.0 and r.shift == 1.5
    assert r.detection_rate >= 0.90, r.lines()
    for direction, (hit, total) in r.detected_by_direction.items():
        assert total == 125
        assert hit / total >= 0.90, (direction, r.lines())
    q50, q95 = r.delay_quantiles()
    assert q50 <= 10.0 and q95 <= 21.0


def test_report_lines_and_wilson_interval(balance_report) -> None:
    text = "\n".join(balance_report.lines())
    assert "false alarms" in text and "95 % CI" in text and "detection delay" in text
    lo, hi = wilson_interval(5, 100)
    assert lo == pytest.approx(0.0215, abs=0.001) and hi == pytest.approx(0.1118, abs=0.001)
    assert wilson_interval(0, 50)[0] == 0.0


def test_a_single_outlier_run_never_creates_an_alarm() -> None:
    """Same seasons with and without one 2-4 pp (or 10 pp) outlier run: no extra alarm."""
    rng = np.random.default_rng(SEED + 1)
    spec = replace(SeasonSpec(), outlier_rate=0.0)
    checked = 0
    for k in range(150):
        season = simulate_season(rng, spec)
        prep = prepare_series(season.summaries)
        clean = detect_shifts(
            prep.values, min_shift=prep.min_shift, te_floor=prep.te_floor, te_prior=prep.te_prior
        )
        if clean.first_alarm() is not None:
            continue
        pos = int(rng.integers(DEFAULT_TREND.min_runs, len(prep.values)))
        size = (1 if k % 2 else -1) * (10.0 if k % 5 == 0 else rng.uniform(2.0, 4.0))
        values = prep.values.copy()
        values[pos] += size
        trace = detect_shifts(
            values, min_shift=prep.min_shift, te_floor=prep.te_floor, te_prior=prep.te_prior
        )
        assert trace.first_alarm() is None, (k, pos, size)
        checked += 1
    assert checked >= 140


def test_simulated_season_shape() -> None:
    s = simulate_season(np.random.default_rng(1), SeasonSpec(shift_pp=1.5))
    df = s.summaries
    assert len(df) == 26 * 4
    assert s.shift_start is not None
    assert set(df["pace_band"]) <= {"easy", "steady", "tempo", "fast"}
    after = df["start_time"] >= s.shift_start
    assert after.any() and (~after).sum() >= 8 * 4


def test_per_second_records_end_to_end_shift_detected() -> None:
    """Records -> summarise_run -> assess_trend: a real 1.5 pp shift toward the left."""
    rng = np.random.default_rng(SEED + 2)
    start = pd.Timestamp("2026-02-02 06:00", tz="UTC")
    summaries = []
    for k in range(22):
        level = 50.3 + (1.5 if k >= 14 else 0.0) + rng.normal(0.0, 0.2)
        rec = simulate_run_records(
            rng,
            duration_s=1800,
            balance_pct=level,
            speed_mps=float(rng.uniform(2.8, 3.1)),
            start=start + pd.Timedelta(days=2 * k),
        )
        summaries.append(
            summarise_run(rec, run_id=f"r{k}", sensor="HRM-Pro 42", sub_sport="street")
        )
    a = assess_trend(summaries)
    assert a.state == "shifted_left"
    assert a.since is not None
    assert a.since >= (start + pd.Timedelta(days=2 * 12)).date()
    assert a.magnitude == pytest.approx(1.5, abs=0.4)
    assert a.current_zone in ("orange", "red")
