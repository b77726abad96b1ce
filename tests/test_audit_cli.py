"""`evenstride audit`: the roster sorted by concern, with the numbers a coach needs."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from evenstride.cli.audit_cmd import audit_cmd
from evenstride.cli.plan_cmd import make_plan, save_plan
from evenstride.metrics.audit import TIERS, AuditRow, order
from evenstride.store import Store, open_store

START = dt.datetime(2024, 1, 1, 7, tzinfo=dt.UTC)
TODAY = "2024-03-05"


@click.group()
@click.option("--home", type=click.Path(path_type=Path), required=True)
@click.pass_context
def cli(ctx: click.Context, home: Path) -> None:
    ctx.obj = {"home": home}


cli.add_command(audit_cmd)


def seed(
    store: Store,
    athlete: str,
    levels: list[float],
    *,
    start: dt.datetime = START,
    sensor: str | None = "HRM-Pro",
    rng_seed: int = 1,
    title: str | None = None,
) -> None:
    """One run every 2 days at the given d levels (pp), with noise; sensor None = wrist only."""
    rng = random.Random(rng_seed)
    for i, level in enumerate(levels):
        t = start + dt.timedelta(days=2 * i)
        d = level + rng.gauss(0, 0.2) if sensor else None
        summary = {
            "run_id": f"{athlete}-{i}", "start_time": t.isoformat(), "sensor": sensor,
            "surface": "road", "pace_band": "easy", "duration_s": 1800.0,
            "clean_minutes": 30.0, "balance_minutes": 30.0 if sensor else 0.0,
            "has_balance": sensor is not None, "d": d,
            "balance_median": None if d is None else 50 + d, "speed_median_mps": 3.0,
            "cadence_median": 170 + rng.gauss(0, 1), "cadence_at_reference": 170 + rng.gauss(0, 1),
        }  # fmt: skip
        aid = store.upsert_activity(
            athlete, source="garmin", source_id=f"{athlete}-{i}", sha256=None, start_time=t,
            duration_s=1800, sport="running",
            extra={"summary": {"activityName": title or f"Easy run {i}"}},
        )  # fmt: skip
        store.replace_runs(aid, [{"session_index": 0, "start_time": t, "summary": summary}])


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("audit")
    base = [0.2] * 20
    with open_store(home) as store:
        seed(store, "fresh-stable", [0.3] * 30, rng_seed=3)
        seed(store, "orange-small", base + [1.0] * 10, rng_seed=5)
        seed(store, "wrist", [0.0] * 30, sensor=None, rng_seed=4)
        seed(store, "red", base + [2.8] * 10, rng_seed=1, title="Tempo <b>Tuesday</b>")
        seed(store, "stale-stable", [0.3] * 25, rng_seed=6)  # last run 10 days earlier
        seed(store, "orange-big", base + [1.9] * 10, rng_seed=2)
        seed(store, "lives-in-red", [2.6] * 30, rng_seed=7)  # stable, but in the red zone
        store.ensure_athlete("empty")  # on the roster, nothing synced yet
        store.set_sync_state("red", "garmin", "synced_at", "2024-03-04T03:17:00+00:00")
        plan = make_plan(store, home, "red", today=dt.date(2024, 3, 1), weeks=4)
        save_plan(home, plan)
    return home


EXPECTED = [
    "red", "orange-big", "orange-small", "lives-in-red", "stale-stable", "fresh-stable",
    "empty", "wrist",
]  # fmt: skip


def audit(home: Path, *args: str) -> str:
    result = CliRunner().invoke(
        cli, ["--home", str(home), "audit", "--today", TODAY, *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_json_is_sorted_by_concern_with_the_coachs_numbers(home: Path) -> None:
    rows = json.loads(audit(home, "--format", "json"))["athletes"]
    assert [r["athlete"] for r in rows] == EXPECTED
    by = {r["athlete"]: r for r in rows}
    red = by["red"]
    assert (red["concern"], red["zone"], red["state"]) == ("red shift", "red", "shifted_left")
    assert red["since"] == "2024-02-10"  # the first run of the shift (run 20 of 2-day steps)
    assert red["magnitude_pp"] > 2 and red["mdc_ratio"] == pytest.approx(
        red["magnitude_pp"] / red["mdc_pp"], abs=0.01
    )
    assert red["last_run"] == "2024-02-28" and red["days_since_run"] == 6
    assert red["last_sync"].startswith("2024-03-04") and red["days_since_sync"] == 1
    assert red["balance_share"] == 1.0 and red["runs"] == 30 and red["sensor"] == "HRM-Pro"
    assert red["plan_phase"] >= 1 and red["plan_week"] >= 1
    assert red["next_session_date"] >= TODAY and red["next_session"]
    assert red["last_run_title"] == "Tempo <b>Tuesday</b>"
    assert by["orange-big"]["mdc_ratio"] > by["orange-small"]["mdc_ratio"]
    assert by["orange-big"]["concern"] == by["orange-small"]["concern"] == "orange shift"
    assert by["lives-in-red"]["state"] == "stable" and by["lives-in-red"]["zone"] == "red"
    assert by["stale-stable"]["days_since_run"] == 16 and by["fresh-stable"]["days_since_run"] == 6
    assert by["wrist"]["balance_share"] == 0.0 and by["wrist"]["concern"] == "no verdict"
    assert by["wrist"]["cadence_state"] == "stable"
    assert by["empty"]["runs"] == 0 and by["empty"]["days_since_run"] is None
    assert by["empty"]["plan_phase"] is None


def test_table_shows_magnitude_against_mdc(home: Path) -> None:
    lines = audit(home).splitlines()
    assert lines[0].split()[:3] == ["athlete", "concern", "zone"]
    assert [line.split()[0] for line in lines[2:]] == EXPECTED
    red = lines[2]
    assert "red shift" in red and "shifted_left since 2024-02-10" in red
    assert "×MDC" in red and " pp = " in red
    assert "run 6 d ago, synced 1 d ago" in red and "100% of 30 runs (HRM-Pro)" in red
    assert "phase " in red and "2024-03-" in red
    wrist = next(line for line in lines if line.startswith("wrist"))
    assert "0% of 30 runs" in wrist and "no plan" in wrist


def test_csv_has_one_row_per_athlete(home: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(audit(home, "--format", "csv"))))
    assert [r["athlete"] for r in rows] == EXPECTED
    assert rows[0]["concern"] == "red shift" and float(rows[0]["mdc_ratio"]) > 1


def test_only_some_athletes_and_unknown_ones(home: Path) -> None:
    rows = json.loads(audit(home, "--format", "json", "--athlete", "wrist", "--athlete", "red"))
    assert [r["athlete"] for r in rows["athletes"]] == ["red", "wrist"]
    result = CliRunner().invoke(cli, ["--home", str(home), "audit", "--athlete", "nobody"])
    assert result.exit_code == 2 and "no athlete named 'nobody'" in result.output


def test_html_needs_out(home: Path) -> None:
    result = CliRunner().invoke(cli, ["--home", str(home), "audit", "--format", "html"])
    assert result.exit_code == 2 and "--out" in result.output


def _row(name: str, tier: int, zone: str | None, ratio: float | None, days: int | None):
    return AuditRow(
        athlete=name, tier=tier, concern=TIERS[tier], zone=zone, mdc_ratio=ratio,
        days_since_run=days,
    )  # fmt: skip


def test_order_rule() -> None:
    rows = [
        _row("stable-green-stale", 4, "green", 0.2, 30),
        _row("stable-green-noisy", 4, "green", 3.0, 1),  # stable: ratio does not count
        _row("shift-green", 2, "green", 5.0, 1),
        _row("orange-2x", 1, "orange", 2.0, 1),
        _row("orange-4x-stale", 1, "orange", 4.0, 40),
        _row("orange-4x", 1, "orange", 4.0, 2),
        _row("red-1x", 0, "red", 1.1, 1),
        _row("returning-red", 3, "red", 0.5, 1),
        _row("returning-green", 3, "green", 0.5, 1),
        _row("stable-orange", 4, "orange", 0.1, 1),
        _row("no-runs", 5, None, None, None),
        _row("no-verdict", 5, None, None, 3),
    ]
    assert [r.athlete for r in order(rows)] == [
        "red-1x", "orange-4x-stale", "orange-4x", "orange-2x", "shift-green", "returning-red",
        "returning-green", "stable-orange", "stable-green-stale", "stable-green-noisy",
        "no-runs", "no-verdict",
    ]  # fmt: skip
