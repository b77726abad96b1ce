"""`evenstride plan` on a season whose balance shifted left: the left leg gets more, first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from garmin_fit_sdk import Decoder, Stream
from icalendar import Calendar

from evenstride.cli.main import cli

SEASON = Path(__file__).resolve().parents[1] / "fixtures" / "synthetic" / "season"
TODAY = "2024-04-15"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    result = CliRunner().invoke(cli, ["--home", str(home), "import", str(SEASON)])
    assert result.exit_code == 0, result.output
    return home


def run(home: Path, *args: str):
    result = CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_left_shift_gives_a_left_focus_plan(home: Path) -> None:
    plan = json.loads(run(home, "plan", "--today", TODAY, "--json"))
    assert plan["focus_side"] == "left" and plan["band"] == "orange"
    e = plan["explanation"]
    rule_ids = {r["id"] for r in e["rules"]}
    assert "FOCUS-SIDE" in rule_ids or any("FOCUS" in r for r in rule_ids)
    assert plan["sessions"] and all(s["date"] >= TODAY for s in plan["sessions"])
    for session in plan["sessions"]:
        main = next(b for b in session["blocks"] if b["kind"] == "main")
        sides = [s["side"] for s in main["steps"] if s["side"] in ("left", "right")]
        assert sides[0] == "left"
        left = sum(s["sets"] for s in main["steps"] if s["side"] == "left")
        right = sum(s["sets"] for s in main["steps"] if s["side"] == "right")
        assert left > right


def test_markdown_shows_evidence_and_focus(home: Path) -> None:
    text = run(home, "plan", "--today", TODAY)
    assert "shifted_left" in text and "LEFT (focus)" in text and "MDC95" in text


def test_files_in_every_format(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["plan", "--today", TODAY, "--out", str(out)]
    for fmt in ("md", "html", "json", "ics", "fit"):
        args += ["--format", fmt]
    run(home, *args)
    cal = Calendar.from_ical((out / "evenstride-plan-default.ics").read_bytes())
    events = [c for c in cal.walk() if c.name == "VEVENT"]
    plan = json.loads((out / "evenstride-plan-default.json").read_text())
    assert len(events) == len(plan["sessions"])
    fits = sorted((out / "evenstride-plan-default-fit").glob("*.fit"))
    assert len(fits) == len(plan["sessions"])
    messages, errors = Decoder(Stream.from_byte_array(fits[0].read_bytes())).read()
    assert not errors
    assert messages["workout_mesgs"][0]["sub_sport"] == "strength_training"
    names = [s.get("wkt_step_name", "") for s in messages["workout_step_mesgs"]]
    first_sided = next(n for n in names if n.upper().startswith(("LEFT", "RIGHT")))
    assert first_sided.upper().startswith("LEFT")


def test_replanning_keeps_past_sessions(home: Path) -> None:
    first = json.loads(run(home, "plan", "--today", TODAY, "--json"))
    later_day = first["sessions"][2]["date"]
    second = json.loads(run(home, "plan", "--today", later_day, "--json"))
    kept = [s for s in second["sessions"] if s["date"] < later_day]
    before = {s["date"]: s for s in first["sessions"] if s["date"] < later_day}
    for s in kept:
        assert s == before[s["date"]]


def test_rules_are_printable(home: Path) -> None:
    text = run(home, "plan", "--rules")
    assert "## bands" in text and "orange" in text


def test_format_without_out_is_a_usage_error(home: Path) -> None:
    result = CliRunner().invoke(cli, ["--home", str(home), "plan", "--format", "md"])
    assert result.exit_code == 2 and "--out" in result.output
