"""`evenstride report` (text, --json, --csv, --html) and the demo, on a real store on disk.

The command is attached to a test-local group (the same global options as `evenstride`), so the
tests do not depend on how cli/main.py registers it.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner, Result

from evenstride.cli.demo_cmd import demo_cmd
from evenstride.cli.report_cmd import report_cmd
from evenstride.connectors.strava.streams import frame_from_streams
from evenstride.ingest import ingest_file, ingest_records
from evenstride.store import open_store

SYNTHETIC = Path(__file__).resolve().parents[1] / "fixtures" / "synthetic"
SEASON = SYNTHETIC / "season"
HOSTILE_NAME = '<img src=x onerror="alert(1)">&<b>'
HOSTILE_FILE = "<script>alert('f')</script>.fit"


@click.group()
@click.option("--home", type=click.Path(path_type=Path), required=True)
@click.pass_context
def group(ctx: click.Context, home: Path) -> None:
    ctx.ensure_object(dict)
    ctx.obj["home"] = home


group.add_command(report_cmd)
group.add_command(demo_cmd)


def invoke(home: Path, *args: str) -> Result:
    return CliRunner().invoke(group, ["--home", str(home), *args], catch_exceptions=False)


def strava_streams(k: int) -> dict:
    """A plausible Strava run's streams (cadence per leg), deterministic per k."""
    rng = np.random.RandomState(500 + k)
    n = 1500 + 60 * (k % 5)
    speed = 2.8 + 0.25 * np.sin(np.arange(n) / 200.0 + k) + 0.03 * rng.standard_normal(n)
    cadence = (82 + 6 * (speed - 2.8) + 0.7 * rng.standard_normal(n)).round()
    return {
        "time": {"data": list(range(n))},
        "distance": {"data": np.cumsum(speed).round(1).tolist()},
        "velocity_smooth": {"data": speed.round(3).tolist()},
        "cadence": {"data": cadence.astype(int).tolist()},
        "heartrate": {"data": [148] * n},
        "altitude": {"data": [10.0] * n},
        "grade_smooth": {"data": [0.0] * n},
        "moving": {"data": [True] * n},
    }


def build_home(home: Path, *, strava_runs: int = 12) -> None:
    """Season athlete, a hostile-named athlete (wrist + strap files), a Strava-only athlete."""
    store = open_store(home)
    for p in sorted(SEASON.glob("*.fit")):
        ingest_file(store, p.read_bytes(), source="local", source_id=p.name, athlete="season",
                    file_name=p.name)  # fmt: skip
    for name in ("steady_left_51_2.fit", "wrist_only_run.fit"):
        ingest_file(store, (SYNTHETIC / name).read_bytes(), athlete=HOSTILE_NAME,
                    file_name=HOSTILE_FILE if name.startswith("steady") else name)  # fmt: skip
    start0 = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)
    for k in range(strava_runs):
        start = start0 + timedelta(days=3 * k)
        streams = strava_streams(k)
        records, _ = frame_from_streams(streams, start, "Run")
        n = len(streams["time"]["data"])
        ingest_records(
            store, records, json.dumps(streams).encode(), source="strava", source_id=str(9000 + k),
            athlete="stravaonly", start_time=start, elapsed_s=float(n),
            distance_m=float(streams["distance"]["data"][-1]), file_name=f"strava-{k}.json",
        )  # fmt: skip
    store.set_sync_state("stravaonly", "strava", "cursor", "2024-06-03T06:30:00+00:00")
    store.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    h = tmp_path_factory.mktemp("report-home") / "home"
    build_home(h)
    return h


def test_text_report_for_the_season(home: Path) -> None:
    out = invoke(home, "report", "--athlete", "season")
    assert out.exit_code == 0, out.output
    text = out.output
    assert "athlete season" in text
    assert re.search(
        r"GCT balance\s+shifted_left: SHIFTED toward the LEFT foot since 2024-03-22", text
    )
    assert re.search(r"latest run\s+2024-04-10: 51\.\d\d %L, d \+1\.\d\d pp, zone orange", text)
    assert "baseline    d +0.3" in text and "MDC95" in text
    assert re.search(r"Cadence\s+stable", text)
    assert "Coverage      22 runs, 22 with a balance sensor, 22 comparable" in text
    assert "sensors     garmin hrm_pro #" in text
    assert "Last run      2024-04-10" in text and "last sync never" in text
    assert "Last 6 weeks" in text


def test_strava_only_athlete_in_every_form(home: Path, tmp_path: Path) -> None:
    text = invoke(home, "report", "--athlete", "stravaonly").output
    assert "GCT balance   no balance sensor data" in text
    assert re.search(r"Cadence\s+(stable|insufficient_data|dropped|rose|returning)", text)
    assert "12 runs, 0 with a balance sensor" in text
    assert "last sync strava 2024-06-03T06:30:00+00:00" in text
    data = json.loads(invoke(home, "report", "--athlete", "stravaonly", "--json").output)
    (rep,) = data["athletes"]
    assert rep["coverage"]["runs_with_balance"] == 0 and rep["latest"] is None
    assert any("no balance sensor data" in n for n in rep["notes"])
    assert rep["cadence"]["n_runs"] == 12 and rep["cadence"]["state"] != "insufficient_data"
    assert all(r["notes"] == "no balance sensor data" for r in rep["runs"])
    rows = list(csv.DictReader(io.StringIO(invoke(home, "report", "--athlete", "stravaonly",
                                                  "--csv").output)))  # fmt: skip
    assert len(rows) == 12 and {r["notes"] for r in rows} == {"no balance sensor data"}
    assert {r["source"] for r in rows} == {"strava"} and all(r["balance_pct"] == "" for r in rows)
    page = tmp_path / "s.html"
    assert invoke(home, "report", "--athlete", "stravaonly", "--html", str(page)).exit_code == 0
    html = page.read_text()
    assert "no balance sensor data" in html
    assert 'id="a0-balance"' not in html and 'id="a0-cadence"' in html


def test_json_and_csv_carry_the_per_run_summaries(home: Path) -> None:
    data = json.loads(invoke(home, "report", "--athlete", "season", "--json").output)
    (rep,) = data["athletes"]
    assert rep["balance"]["state"] == "shifted_left" and len(rep["runs"]) == 22
    assert rep["runs"][0]["file_name"] == "run_01_2024-03-04.fit"
    assert rep["runs"][-1]["detector_state"] == "shifted_left"
    rows = list(csv.DictReader(io.StringIO(invoke(home, "report", "--csv").output)))
    assert {r["athlete"] for r in rows} == {"season", HOSTILE_NAME, "stravaonly"}
    assert len(rows) == 22 + 2 + 12


def test_since_filters_runs_and_usage_errors(home: Path) -> None:
    out = invoke(home, "report", "--athlete", "season", "--since", "2024-04-01")
    assert "(runs since 2024-04-01)" in out.output and "Coverage      6 runs" in out.output
    assert "insufficient_data" in out.output  # the detector only sees those runs
    assert invoke(home, "report", "--athlete", "nobody").exit_code == 2
    assert invoke(home, "report", "--json", "--csv").exit_code == 2
    assert "no runs stored yet" in invoke(home.parent / "empty", "report").output


def test_outside_strings_are_escaped(home: Path, tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    out = invoke(home, "report", "--html", str(page))
    assert out.exit_code == 0 and f"HTML report written to {page}" in out.output
    html = page.read_text()
    assert "<script" not in html and "<img" not in html and HOSTILE_NAME not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&lt;b&gt;" in html
    assert "&lt;script&gt;alert(&#x27;f&#x27;)&lt;/script&gt;.fit" in html
    assert 'name="viewport"' in html and "Content-Security-Policy" in html
    assert not re.search(r"(src|href)=\"?(https?:)?//", html)  # nothing fetched at view time


def test_terminal_output_strips_control_characters(tmp_path: Path) -> None:
    store = open_store(tmp_path / "h")
    name = "evil\x1b[2J\x07name"
    ingest_file(store, (SYNTHETIC / "steady_left_51_2.fit").read_bytes(), athlete=name)
    store.close()
    out = invoke(tmp_path / "h", "report")
    assert "\x1b" not in out.output and "\x07" not in out.output
    assert "athlete evil[2Jname" in out.output


def test_demo_shows_the_trend_and_writes_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its folder goes with tmp_path
    out = CliRunner().invoke(group, ["--home", "/nonexistent-unused", "demo"],
                             catch_exceptions=False)  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "athlete season" in out.output and "shifted_left" in out.output
    found = re.search(r"open the HTML report: (file://\S+)", out.output)
    assert found is not None
    path = Path(found.group(1).removeprefix("file://"))
    assert path.is_file() and path.name == "report.html"
    assert path.is_relative_to(tmp_path)  # in the demo's temporary folder, which the output names
    assert f"the demo's files are in {path.parents[1]} (delete the folder when done)" in out.output
    html = path.read_text()
    assert html.count('<circle class="pt"') > 22 and "running/treadmill" in out.output
