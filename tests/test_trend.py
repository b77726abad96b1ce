"""Baseline noise (TE, MDC) and the trend detector's states on constructed run series."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evenstride.metrics import assess_athlete, assess_cadence_trend, assess_trend, summarise_run
from evenstride.metrics.baseline import (
    MDC95_FACTOR,
    comparable_runs,
    compute_baseline,
    mdc,
    robust_sd,
    typical_error,
)
from evenstride.metrics.simulate import simulate_run_records
from evenstride.metrics.trend import (
    _STATE_DOWN,
    _STATE_UP,
    DEFAULT_TREND,
    TrendSettings,
    detect_shifts,
)

START = pd.Timestamp("2026-01-06 07:00", tz="UTC")
SENSOR = "HRM-Pro Plus 111"


def series(
    d: np.ndarray | list[float],
    *,
    every_days: float = 2.0,
    sensor: str = SENSOR,
    surface: str = "road",
    band: str = "easy",
    minutes: float = 40.0,
    cadence: np.ndarray | list[float] | None = None,
    start: pd.Timestamp = START,
) -> pd.DataFrame:
    """A DataFrame of run summaries, one run every `every_days` days."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    cad = np.full(n, 170.0) if cadence is None else np.asarray(cadence, dtype=float)
    return pd.DataFrame(
        {
            "run_id": [f"{sensor[-3:]}-{k}" for k in range(n)],
            "start_time": start + pd.to_timedelta(np.arange(n) * every_days, unit="D"),
            "sensor": sensor,
            "surface": surface,
            "pace_band": band,
            "speed_median_mps": 3.0,
            "d": d,
            "balance_minutes": minutes,
            "clean_minutes": minutes,
            "has_balance": True,
            "cadence_median": cad,
            "cadence_at_reference": cad,
        }
    )


def noise(n: int, sd: float = 0.3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, sd, n)


# ----------------------------------------------------------------------------------- baseline


def test_typical_error_matches_sd_and_ignores_outliers() -> None:
    x = noise(400, 0.4, seed=1)
    assert typical_error(x) == pytest.approx(np.std(np.diff(x)) / math.sqrt(2), rel=0.05)
    assert typical_error(x, method="level") == pytest.approx(np.std(x), rel=0.05)
    assert typical_error(x) == pytest.approx(0.4, rel=0.15)
    y = x.copy()
    y[[50, 200, 333]] += [6.0, -8.0, 5.0]
    assert typical_error(y) == pytest.approx(typical_error(x), rel=0.05)
    assert np.std(np.diff(y)) / math.sqrt(2) > 1.5 * typical_error(y)  # plain SD would inflate


def test_typical_error_ignores_slow_level_drift() -> None:
    x = noise(60, 0.3, seed=2) + np.linspace(0.0, 3.0, 60)
    assert typical_error(x) == pytest.approx(0.3, rel=0.25)
    assert typical_error(x, method="level") > 0.6


def test_typical_error_edge_cases() -> None:
    assert math.isnan(typical_error([0.1, 0.2]))
    assert typical_error([0.5, 0.5, 0.5, 0.5]) == 0.0
    assert math.isnan(robust_sd([1.0]))
    with pytest.raises(ValueError):
        typical_error([1.0, 2.0, 3.0], method="nope")


def test_mdc_is_2_77_te() -> None:
    assert mdc(1.0) == pytest.approx(2.77, abs=0.005)
    assert mdc(0.3) == pytest.approx(MDC95_FACTOR * 0.3)
    assert mdc(1.0, 0.90) == pytest.approx(2.33, abs=0.005)
    b = compute_baseline(series(0.8 + noise(30, 0.25, seed=3)))
    assert b.mdc95 == pytest.approx(2.77 * b.te, rel=1e-3)
    assert b.level == pytest.approx(0.8, abs=0.15)
    assert b.n_runs == 30 and b.clean_minutes == 1200.0
    json.dumps(b.to_dict())


def test_comparable_runs_use_latest_sensor_surface_and_pace_group() -> None:
    old = series(noise(10), sensor="HRM-Run 999")
    new = series(noise(12), sensor=SENSOR, start=START + pd.Timedelta(days=40))
    tread = series(noise(4), surface="treadmill", start=START + pd.Timedelta(days=41))
    tempo = series(noise(5), band="tempo", start=START + pd.Timedelta(days=42))
    steady = series(noise(3), band="steady", start=START + pd.Timedelta(days=43))
    short = series(noise(3), minutes=5.0, start=START + pd.Timedelta(days=44))
    df = pd.concat([old, new, tread, tempo, steady, short], ignore_index=True)
    runs, stratum = comparable_runs(df)
    assert stratum == {"sensor": SENSOR, "surface": "road", "pace_group": "easy+steady"}
    assert len(runs) == 12 + 3
    assert runs["start_time"].is_monotonic_increasing


# ----------------------------------------------------------------------------------- detector


def test_insufficient_data_below_min_runs() -> None:
    a = assess_trend(series(0.4 + noise(9)))
    assert a.state == "insufficient_data"
    assert a.n_runs == 9 and a.baseline_level is None and a.te is None
    assert a.current is not None and a.current_zone in ("green", "orange")
    assert len(a.supporting_runs) == 9
    assert any("10 needed" in n for n in a.notes)


def test_stable_series_is_stable() -> None:
    a = assess_trend(series(1.1 + noise(60, 0.3, seed=4)))
    assert a.state == "stable"
    assert a.baseline_level == pytest.approx(1.1, abs=0.2)
    assert 0.15 < a.te < 0.5
    assert a.mdc95 == pytest.approx(MDC95_FACTOR * a.te)
    assert abs(a.magnitude) < a.mdc95
    assert a.current_zone == "orange"
    assert a.sensor == SENSOR and a.surface == "road" and a.pace_group == "easy+steady"
    assert a.n_runs == 60 and a.clean_minutes == 2400.0
    assert a.since is None and not a.shifted
    json.dumps(a.to_dict(), allow_nan=False)


@pytest.mark.parametrize(("step", "state"), [(1.5, "shifted_left"), (-1.5, "shifted_right")])
def test_step_shift_detected_with_direction_and_since(step: float, state: str) -> None:
    d = 0.2 + noise(40, 0.3, seed=5)
    d[28:] += step
    df = series(d)
    a = assess_trend(df)
    assert a.state == state and a.shifted
    assert a.shift_direction == ("left" if step > 0 else "right")
    first_shifted = df["start_time"].iloc[28].date()
    assert a.since is not None and abs((a.since - first_shifted).days) <= 4
    assert a.magnitude == pytest.approx(step, abs=0.4)
    assert a.supporting_runs[-1]["run_id"] == df["run_id"].iloc[-1]
    assert isinstance(a.supporting_runs[0]["date"], date)
    # detected within 3 weeks of the first shifted run
    trace = detect_shifts(d, min_shift=0.5, te_floor=0.1, te_prior=0.3)
    alarm = trace.first_alarm()
    assert alarm is not None and 28 <= alarm <= 28 + 10
    want = _STATE_UP if step > 0 else _STATE_DOWN
    assert trace.state[alarm] == want


def test_returning_then_stable() -> None:
    d = noise(70, 0.25, seed=6)
    d[20:32] += 2.0
    df = series(d)
    trace = detect_shifts(d, min_shift=0.5, te_floor=0.1, te_prior=0.3)
    states = trace.state.tolist()
    assert _STATE_UP in states
    assert states[-1] == 1  # stable again at the end
    first_return = states.index(4)
    assert 32 <= first_return <= 36
    back_to_stable = first_return + states[first_return:].index(1)
    assert back_to_stable - first_return == DEFAULT_TREND.stable_runs - 1
    a = assess_trend(df.iloc[: first_return + 2])
    assert a.state == "returning"
    assert len(a.episodes) == 1 and a.episodes[0]["direction"] == "shifted_left"
    assert a.episodes[0]["since"] == a.since and a.episodes[0]["zone"] in ("orange", "red")
    assert a.has_balance_sensor
    assert a.since == df["start_time"].iloc[trace.since[first_return]].date()
    assert assess_trend(df).state == "stable"


def test_single_outlier_never_alarms_anywhere() -> None:
    base = 0.5 + noise(50, 0.2, seed=7)
    for pos in (10, 11, 25, 49):
        for size in (-15.0, -4.0, 4.0, 15.0):
            d = base.copy()
            d[pos] += size
            trace = detect_shifts(d, min_shift=0.5, te_floor=0.1, te_prior=0.3)
            assert trace.first_alarm() is None, (pos, size)
    d = base.copy()
    d[-1] += 10.0  # the latest run is wild: still stable, not shifted
    assert assess_trend(series(d)).state == "stable"


@given(
    level=st.floats(min_value=-3.0, max_value=3.0),
    jitter=st.lists(st.floats(min_value=-0.1, max_value=0.1), min_size=12, max_size=40),
    pos=st.integers(min_value=0, max_value=39),
    size=st.floats(min_value=-30.0, max_value=30.0),
)
@settings(max_examples=150, deadline=None)
def test_property_one_outlier_cannot_raise_an_alarm(
    level: float, jitter: list[float], pos: int, size: float
) -> None:
    d = level + np.asarray(jitter)
    d[pos % len(d)] += size
    trace = detect_shifts(d, min_shift=0.5, te_floor=0.1, te_prior=0.3)
    assert trace.first_alarm() is None


def test_two_opposite_outliers_do_not_alarm() -> None:
    d = noise(40, 0.2, seed=8)
    d[15] += 4.0
    d[17] -= 4.0
    assert detect_shifts(d, min_shift=0.5, te_floor=0.1, te_prior=0.3).first_alarm() is None


def test_small_shift_below_relevance_is_not_reported() -> None:
    # a 0.35 pp step in a very quiet athlete is statistically clear but below 0.5 pp
    d = 0.05 * np.sin(np.arange(60))
    d[30:] += 0.35
    a = assess_trend(series(d))
    assert a.state == "stable"


def test_sensor_change_resets_baseline() -> None:
    old = series(2.0 + noise(30, 0.2, seed=9), sensor="HRM-Run 999")
    new = series(noise(6, 0.2, seed=10), start=START + pd.Timedelta(days=61))
    a = assess_trend(pd.concat([old, new], ignore_index=True))
    assert a.state == "insufficient_data" and a.n_runs == 6 and a.sensor == SENSOR


def test_no_balance_data_gives_insufficient_with_reason_but_cadence_works() -> None:
    df = series(np.full(30, np.nan), cadence=172.0 + noise(30, 1.0, seed=11))
    df["has_balance"] = False
    df["balance_minutes"] = 0.0
    a = assess_trend(df)
    assert a.state == "insufficient_data" and "no balance sensor data" in a.notes
    assert not a.has_balance_sensor and a.episodes == []
    c = assess_cadence_trend(df)
    assert c.state == "stable" and c.unit == "spm" and c.sensor is None
    both = assess_athlete(df)
    assert both.balance.state == "insufficient_data" and both.cadence.state == "stable"
    json.dumps(both.to_dict(), allow_nan=False)


@pytest.mark.parametrize(("step", "state"), [(-4.0, "dropped"), (4.0, "rose")])
def test_cadence_shift_states(step: float, state: str) -> None:
    cad = 170.0 + noise(40, 1.0, seed=12)
    cad[26:] += step
    c = assess_cadence_trend(series(noise(40), cadence=cad))
    assert c.state == state
    assert c.magnitude == pytest.approx(step, abs=1.0)
    assert c.current_zone in ("green", "blue", "purple", "orange")


def test_cadence_without_reference_uses_fit_on_summaries() -> None:
    rng = np.random.default_rng(13)
    n = 40
    speed = rng.uniform(2.7, 3.3, n)
    cad = 140.0 + 10.0 * speed + rng.normal(0.0, 0.8, n)
    df = series(noise(n), cadence=cad).drop(columns=["cadence_at_reference"])
    df["speed_median_mps"] = speed
    c = assess_cadence_trend(df)
    assert c.state == "stable"
    assert any("spm per m/s" in note for note in c.notes)
    assert c.te is not None and c.te < 1.5


def test_speed_dependent_balance_is_compared_at_reference_speed() -> None:
    rng = np.random.default_rng(14)
    n = 50
    speed = rng.uniform(2.6, 3.6, n)
    d = 0.3 + 1.5 * (speed - 3.1) + rng.normal(0.0, 0.15, n)
    df = series(d)
    df["speed_median_mps"] = speed
    a = assess_trend(df)
    assert a.speed_slope == pytest.approx(1.5, abs=0.2)
    assert a.te < 0.3  # the pace effect no longer counts as noise
    assert a.state == "stable"
    off = assess_trend(df, settings=TrendSettings(speed_adjust=False))
    assert off.speed_slope is None and off.te > a.te


def test_assess_trend_accepts_run_summaries_end_to_end() -> None:
    rng = np.random.default_rng(15)
    summaries = []
    for k in range(12):
        start = START + pd.Timedelta(days=2 * k)
        rec = simulate_run_records(rng, duration_s=1500, balance_pct=50.9, start=start)
        summaries.append(summarise_run(rec, run_id=f"run{k}", sensor=SENSOR, sub_sport="street"))
    a = assess_trend(summaries)
    assert a.state == "stable"
    assert a.n_runs == 12
    assert a.current == pytest.approx(0.9, abs=0.1)
    assert a.current_zone == "orange"
    assert a.supporting_runs[-1]["run_id"] == "run11"


def test_settings_change_behaviour() -> None:
    d = 0.2 + noise(40, 0.3, seed=5)
    d[28:] += 1.5
    strict = TrendSettings(min_shift_pp=2.0)
    assert assess_trend(series(d), settings=strict).state == "stable"
    assert assess_trend(series(d[:15]), settings=TrendSettings(min_runs=20)).state == (
        "insufficient_data"
    )
    with pytest.raises(ValueError):
        assess_trend(series(d), metric="power")


def test_an_athlete_without_runs_gets_insufficient_data() -> None:
    verdict = assess_athlete(pd.DataFrame())
    assert verdict.balance.state == "insufficient_data"
    assert verdict.cadence.state == "insufficient_data"
    assert assess_athlete([]).balance.n_runs == 0
