"""metrics.report_data: the pure report builder, on a real store and on hand-made DataFrames."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evenstride.ingest import ingest_file
from evenstride.metrics.fit import read_fit
from evenstride.metrics.report_data import (
    RUN_COLUMNS,
    report_data,
    run_detail,
    runs_frame,
    weekly_aggregates,
)
from evenstride.store import open_store

SYNTHETIC = Path(__file__).resolve().parents[1] / "fixtures" / "synthetic"
SEASON = SYNTHETIC / "season"


def season_truth() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(SEASON.glob("*.truth.json"))]


@pytest.fixture(scope="module")
def season_rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    store = open_store(tmp_path_factory.mktemp("season-home"))
    for p in sorted(SEASON.glob("*.fit")):
        res = ingest_file(store, p.read_bytes(), source="local", source_id=p.name,
                          athlete="season", file_name=p.name)  # fmt: skip
        assert res.status == "imported"
    rows = store.list_runs("season")
    store.close()
    return rows


def test_season_report_shows_the_shift(season_rows: list[dict]) -> None:
    truth = season_truth()
    before = truth[0]["target_balance_left_pct"]
    first_after = next(t for t in truth if t["target_balance_left_pct"] != before)
    rep = report_data(runs_frame(season_rows), athlete="season")
    assert rep.balance.state == "shifted_left"
    assert rep.balance.since == date.fromisoformat(first_after["start_time_utc"][:10])
    assert rep.latest is not None and rep.latest.zone == "orange" and rep.latest.comparable
    assert rep.latest.date == date.fromisoformat(truth[-1]["start_time_utc"][:10])
    assert rep.latest.balance_pct == pytest.approx(truth[-1]["target_balance_left_pct"], abs=0.2)
    cov = rep.coverage
    assert cov.runs == cov.runs_with_balance == cov.comparable_balance_runs == len(truth)
    assert cov.sensors == [season_rows[-1]["sensor"]] and cov.runs_below_min_minutes == 0
    assert cov.first_run == date(2024, 3, 4)
    # the detector's per-run view: a baseline from run min_runs on, at the old level
    table = rep.runs
    assert list(table.columns) == list(RUN_COLUMNS) and len(table) == len(truth)
    base = table["baseline_d"].to_numpy(float)
    assert np.isnan(base[:10]).all() and np.isfinite(base[10:]).all()
    assert base[-1] + 50 == pytest.approx(before, abs=0.1)
    assert (table["mdc95"].to_numpy(float)[10:] > 0).all()
    assert table["detector_state"].iat[-1] == "shifted_left"
    # weekly aggregates add up to the runs and minutes
    wk = rep.weekly
    assert wk["runs"].sum() == len(truth)
    assert wk["minutes"].sum() == pytest.approx(table["running_minutes"].sum(), abs=0.5)
    assert wk["median_d"].iat[0] == pytest.approx(before - 50, abs=0.1)
    assert rep.cadence_fit is not None and rep.cadence_fit.n == len(truth)
    json.dumps(rep.to_dict(), allow_nan=False)  # the JSON form is strict JSON


def test_report_from_plain_dataframe_is_pure_and_deterministic() -> None:
    """Usable from pandas: any DataFrame with RunSummary columns, no store needed."""
    rng = np.random.RandomState(7)
    n_before, n_after = 14, 6
    d = np.r_[0.2 + 0.1 * rng.standard_normal(n_before), 1.6 + 0.1 * rng.standard_normal(n_after)]
    starts = pd.date_range("2024-01-01 07:00", periods=n_before + n_after, freq="2D", tz="UTC")
    df = pd.DataFrame(
        {
            "run_id": [f"r{k}" for k in range(len(d))],
            "start_time": starts,
            "sensor": "hrm-pro 1",
            "surface": "road",
            "pace_band": "easy",
            "has_balance": True,
            "d": d,
            "balance_minutes": 25.0,
            "clean_minutes": 25.0,
            "running_minutes": 30.0,
            "cadence_median": 170 + rng.standard_normal(len(d)),
            "speed_median_mps": 3.0 + 0.1 * rng.standard_normal(len(d)),
        }
    )
    a = report_data(df, athlete="pandas")
    b = report_data(df.sample(frac=1.0, random_state=1), athlete="pandas")  # order-insensitive
    assert a.balance.state == b.balance.state == "shifted_left"
    assert a.runs["detector_d"].tolist() == b.runs["detector_d"].tolist()
    assert a.latest is not None and a.latest.run_id == "r19"
    assert a.coverage.runs_with_balance == 20 and a.coverage.comparable_balance_runs == 20
    assert a.cadence.state in ("stable", "insufficient_data", "returning")
    assert a.weekly["runs"].sum() == 20


def test_weekly_aggregates_keep_empty_weeks() -> None:
    df = pd.DataFrame(
        {
            "start_time": pd.to_datetime(
                ["2024-03-04T06:00Z", "2024-03-10T20:00Z", "2024-03-25T06:00Z"], utc=True
            ),
            "running_minutes": [30.0, 40.0, np.nan],
            "duration_s": [1800.0, 2400.0, 1500.0],
            "d": [0.5, 1.5, np.nan],
        }
    )
    wk = weekly_aggregates(df)
    assert wk["week_start"].tolist() == [date(2024, 3, 4), date(2024, 3, 11), date(2024, 3, 18),
                                         date(2024, 3, 25)]  # fmt: skip
    assert wk["runs"].tolist() == [2, 0, 0, 1]
    assert wk["minutes"].tolist() == [70.0, 0.0, 0.0, 25.0]  # duration when minutes unknown
    assert wk["balance_runs"].tolist() == [2, 0, 0, 0]
    assert wk["median_d"].iat[0] == 1.0 and wk["median_d"].isna().tolist()[1:] == [True] * 3


def test_no_balance_athlete_gets_an_honest_note(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    wrist = SYNTHETIC / "wrist_only_run.fit"
    ingest_file(store, wrist.read_bytes(), athlete="wrist", file_name=wrist.name)
    rep = report_data(runs_frame(store.list_runs("wrist")), athlete="wrist")
    assert not rep.has_balance and rep.latest is None
    assert rep.balance.state == "insufficient_data"
    assert any("no balance sensor data" in n for n in rep.notes)
    assert rep.runs["notes"].iat[0] == "no balance sensor data"
    assert rep.cadence.n_runs == 1 and rep.cadence_fit is not None


def test_run_detail_windows_one_run() -> None:
    data = (SYNTHETIC / "steady_left_51_2.fit").read_bytes()
    truth = json.loads((SYNTHETIC / "steady_left_51_2.truth.json").read_text())
    run = read_fit(data).runs()[0]
    det = run_detail(run.records, run_id="x", window_s=30.0)
    assert det is not None and det.run_id == "x"
    assert len(det.elapsed_min) == pytest.approx(truth["n_records"] / 30, abs=1)
    assert det.elapsed_min[0] == 0.25 and det.elapsed_min == sorted(det.elapsed_min)
    assert not any(det.clean[:9]) and all(det.clean[11:-1])  # 5-min warm-up is not clean
    assert float(np.median(det.balance_pct)) == pytest.approx(51.2, abs=0.2)
    assert np.isfinite(det.speed_mps).all()
    wrist = read_fit((SYNTHETIC / "wrist_only_run.fit").read_bytes()).runs()[0]
    assert run_detail(wrist.records) is None
