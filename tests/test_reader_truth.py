"""The reader against the synthetic files' ground truth (written by fixtures/make_synthetic.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evenstride.metrics.fit import read_fit
from evenstride.metrics.fit.sensors import balance_sensor, sensors

SYNTHETIC = Path(__file__).resolve().parents[1] / "fixtures" / "synthetic"
FILES = sorted(SYNTHETIC.glob("*.fit")) + sorted(SYNTHETIC.glob("season/*.fit"))


def truth_of(path: Path) -> dict:
    return json.loads(path.with_suffix(".truth.json").read_text())


def test_fixture_set_is_complete() -> None:
    names = {p.name for p in FILES}
    assert {"steady_left_51_2.fit", "walking_with_rd.fit", "sensor_dropout.fit"} <= names
    assert len([p for p in FILES if p.parent.name == "season"]) >= 10


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_counts_and_means_match_truth(path: Path) -> None:
    truth = truth_of(path)
    ff = read_fit(path)
    assert not ff.partial and ff.warnings == []
    assert ff.record_count == truth["n_records"]
    runs = ff.runs()
    if not truth["is_run"]:
        assert runs == []
        return
    (run,) = runs
    assert run.sport == truth["sport"] and run.sub_sport == truth["sub_sport"]
    balance = run.records["gct_balance_pct"]
    assert int(balance.notna().sum()) == truth.get("n_balance_valid", 0)
    if truth.get("n_balance_valid"):
        assert balance.mean() == pytest.approx(truth["balance_mean_valid"], abs=1e-9)
        assert run.watch_mean("gct_balance_pct") == pytest.approx(
            truth["balance_time_weighted_mean"], abs=1e-9
        )
        assert run.records["gct_ms"].mean() == pytest.approx(truth["gct_mean_valid_ms"], abs=1e-9)
    else:
        assert run.records["gct_balance_pct"].isna().all()
    cadence = run.records["cadence_spm"]
    assert cadence[cadence > 0].mean() == pytest.approx(truth["cadence_mean_spm"], abs=1e-9)
    assert run.distance_m == pytest.approx(truth["distance_m"], abs=0.01)


def test_zero_and_invalid_running_dynamics_are_missing_not_zero() -> None:
    truth = truth_of(SYNTHETIC / "walk_break_and_stop.fit")
    run = read_fit(SYNTHETIC / "walk_break_and_stop.fit").runs()[0]
    # raw records keep the device's zeros (as every decoder does) ...
    assert (
        read_fit(SYNTHETIC / "walk_break_and_stop.fit").records["stance_time_balance"] == 0
    ).sum() == (truth["n_balance_zero"])
    # ... the run's cleaned columns never average them
    assert run.records["gct_balance_pct"].min() > 40
    assert run.records["gct_ms"].min() > 100


def test_sensor_dropout_0xffff_and_absent_fields() -> None:
    truth = truth_of(SYNTHETIC / "sensor_dropout.fit")
    ff = read_fit(SYNTHETIC / "sensor_dropout.fit")
    raw = ff.records["stance_time_balance"]
    absent_or_invalid = truth["n_balance_invalid_0xffff"] + truth["n_balance_absent"]
    assert int(raw.isna().sum()) == absent_or_invalid
    assert not np.any(raw > 100)  # 0xFFFF never leaks as 655.35


def test_timer_pause_is_not_weighted() -> None:
    run = read_fit(SYNTHETIC / "walk_break_and_stop.fit").runs()[0]
    assert len(run.timer_intervals) == 2  # stopped once for 75 s


def test_sensors_identify_the_balance_source() -> None:
    ff = read_fit(SYNTHETIC / "steady_left_51_2.fit")
    found = sensors(ff.devices)
    roles = {s["role"] for s in found}
    assert {"watch", "running_dynamics"} <= roles
    label = balance_sensor(found)
    assert label is not None and label.startswith("garmin hrm_pro #")
    wrist = read_fit(SYNTHETIC / "wrist_only_run.fit")
    assert balance_sensor(sensors(wrist.devices)) is None


def test_bytes_path_and_memoryview_give_the_same_result() -> None:
    path = SYNTHETIC / "treadmill_right_48_5.fit"
    data = path.read_bytes()
    a, b, c = read_fit(path), read_fit(data), read_fit(memoryview(data))
    for other in (b, c):
        assert a.records.equals(other.records)
        assert a.sessions == other.sessions
