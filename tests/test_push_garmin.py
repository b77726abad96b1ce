"""`push garmin` end to end: real garminconnect, real store and keyring, stateful fake Garmin.

The athlete is the synthetic season (22 runs, balance shifts left after run 10), imported with
`evenstride import`; today is 2024-04-15 unless a test moves it.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from fake_garmin import (
    FakeGarminConnect,
    fake_fixture,  # noqa: F401 - the `fake` fixture
    keyring_file_fixture,  # noqa: F401 - the `keyring_file` fixture
)

from evenstride.cli.import_cmd import import_cmd
from evenstride.cli.plan_cmd import plan_cmd
from evenstride.cli.push_cmd import push_garmin
from evenstride.connectors.garmin import auth
from evenstride.connectors.garmin.client import GarminClient
from evenstride.connectors.garmin.errors import RateLimitedError
from evenstride.connectors.garmin.push import PushSummary, push_plan
from evenstride.planner import MARKER, catalog
from evenstride.store import open_store

SEASON = Path(__file__).resolve().parents[1] / "fixtures" / "synthetic" / "season"
TODAY = "2024-04-15"
LATER = "2024-04-24"


def _root() -> click.Group:
    """Like evenstride.cli.main: `--home` in ctx.obj; import, plan and a `push` group."""

    @click.group()
    @click.option("--home", type=click.Path(path_type=Path), required=True)
    @click.pass_context
    def root(ctx: click.Context, home: Path) -> None:
        ctx.obj = {"home": home}

    root.add_command(import_cmd)
    root.add_command(plan_cmd)
    push = click.Group("push")
    push.add_command(push_garmin)
    root.add_command(push)
    return root


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the season imported once; each test works on its own copy."""
    home = tmp_path_factory.mktemp("season") / "home"
    result = CliRunner().invoke(_root(), ["--home", str(home), "import", str(SEASON)])
    assert result.exit_code == 0, result.output
    return home


@pytest.fixture
def run(imported: Path, tmp_path: Path, fake: FakeGarminConnect, keyring_file: Any) -> Any:
    home = tmp_path / "home"
    shutil.copytree(imported, home)
    auth.save_tokens("default", fake.tokens_json())
    outputs: list[str] = []

    def invoke(*args: str) -> Any:
        result = CliRunner().invoke(_root(), ["--home", str(home), *args])
        outputs.append(result.output)
        return result

    invoke.home = home
    invoke.outputs = outputs
    return invoke


def push(run: Any, *args: str, today: str = TODAY) -> Any:
    return run("push", "garmin", "--today", today, *args)


# --------------------------------------------------------------------------- helpers on the fake


def ours(fake: FakeGarminConnect) -> dict[int, dict[str, Any]]:
    return {wid: w for wid, w in fake.workouts.items() if MARKER in w.get("workoutName", "")}


def calendar_of_ours(fake: FakeGarminConnect) -> list[tuple[str, int, str]]:
    return [(c["date"], c["workout_id"], c["name"]) for c in fake.calendar() if MARKER in c["name"]]


def plan_dates(home: Path) -> list[str]:
    plan = json.loads((home / "plans" / "default" / "latest.json").read_text())
    return sorted(s["date"] for s in plan["sessions"])


def assert_clean(fake: FakeGarminConnect, dates: list[str]) -> None:
    """Exactly one evenstride workout per date, each scheduled exactly once, no orphans."""
    cal = calendar_of_ours(fake)
    assert sorted(d for d, _, _ in cal) == sorted(dates)
    scheduled = [wid for _, wid, _ in cal]
    assert len(scheduled) == len(set(scheduled)), "a workout is on the calendar twice"
    assert set(scheduled) == set(ours(fake)), "an evenstride workout is not on the calendar"
    for day, wid, name in cal:
        assert name.startswith(f"{MARKER} {day} ")
        assert "[evenstride:" in ours(fake)[wid]["description"]


def sided_sets(workout: dict[str, Any]) -> tuple[list[str], dict[str, int]]:
    """Sides in step order and the sets per side (repeat iterations x steps of that side)."""
    order: list[str] = []
    sets = {"LEFT": 0, "RIGHT": 0}

    def walk(steps: list[dict[str, Any]], times: int) -> None:
        for step in steps:
            if step["type"] == "RepeatGroupDTO":
                walk(step["workoutSteps"], times * step["numberOfIterations"])
                continue
            side = (step.get("description") or "").split(" ")[0]
            if side in sets and step.get("category"):
                order.append(side)
                sets[side] += times

    for segment in workout["workoutSegments"]:
        assert segment["sportType"]["sportTypeId"] == 5
        walk(segment["workoutSteps"], 1)
    return order, sets


def snapshot(fake: FakeGarminConnect) -> dict[str, Any]:
    return {"workouts": json.dumps(fake.workouts, sort_keys=True), "cal": fake.calendar()}


# --------------------------------------------------------------------------- the tests


def test_left_shift_season_gives_left_first_workouts_on_garmin(run, fake) -> None:
    assert run("plan", "--today", TODAY, "--json").exit_code == 0
    result = push(run)
    assert result.exit_code == 0, result.output
    dates = plan_dates(run.home)
    assert len(dates) == 8 and dates[0] == TODAY
    assert_clean(fake, dates)
    assert f"{len(dates)} created" in result.output
    for w in ours(fake).values():
        assert w["sportType"]["sportTypeId"] == 5
        steps = w["workoutSegments"][0]["workoutSteps"]
        if "deload" not in w["workoutName"]:  # a deload week has single sets: no repeats
            assert any(s["type"] == "RepeatGroupDTO" for s in steps)
        order, sets = sided_sets(w)
        assert order[0] == "LEFT", w["workoutName"]
        assert sets["LEFT"] > sets["RIGHT"], (w["workoutName"], sets)
        assert "focus LEFT" in w["description"]


def test_push_twice_gives_the_same_calendar_and_sends_no_write(run, fake) -> None:
    assert push(run).exit_code == 0
    before = snapshot(fake)
    writes = len(fake.data_writes())
    result = push(run, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["created"] == [] and summary["replaced"] == [] and summary["removed"] == []
    assert len(summary["unchanged"]) == 8 and summary["writes"] == 0
    assert snapshot(fake) == before
    assert len(fake.data_writes()) == writes


def test_plan_change_touches_only_future_sessions_and_never_the_athletes(run, fake) -> None:
    own_past = fake.add_workout("Tempo 5k", on="2024-04-16")
    own_future = fake.add_workout("Long run", on="2024-05-02")
    own_lib = fake.add_workout("Hill repeats", sport_key="running")
    own_strength = fake.add_workout("My gym day", sport_key="strength_training", on=LATER)
    mine = {wid: json.dumps(fake.workouts[wid], sort_keys=True) for wid, _ in
            (own_past, own_future, own_lib, own_strength)}  # fmt: skip
    assert push(run).exit_code == 0
    first = {d: (wid, name) for d, wid, name in calendar_of_ours(fake)}
    first_json = {wid: json.dumps(w, sort_keys=True) for wid, w in ours(fake).items()}

    with open_store(run.home) as store:  # the coach forces the right leg from now on
        profile = dict(store.get_athlete("default")["profile"])
        profile["overrides"] = {"focus_side": "right"}
        store.update_athlete_profile("default", profile)
    result = push(run, today=LATER)
    assert result.exit_code == 0, result.output

    now = {d: (wid, name) for d, wid, name in calendar_of_ours(fake)}
    past = [d for d in first if d < LATER]
    assert past, "the test needs sessions before the later day"
    for d in past:  # past sessions: same workout, same JSON, still left first
        assert now[d] == first[d]
        assert json.dumps(fake.workouts[first[d][0]], sort_keys=True) == first_json[first[d][0]]
    future = sorted(d for d in now if d >= LATER)
    assert future
    for d in future:
        assert now[d][0] not in first_json, "a future session kept its old workout"
        order, sets = sided_sets(fake.workouts[now[d][0]])
        assert order[0] == "RIGHT" and sets["RIGHT"] > sets["LEFT"]
    for d in first:
        if d >= LATER and d not in now:
            assert first[d][0] not in fake.workouts  # removed: workout deleted too
    for wid, text in mine.items():
        assert json.dumps(fake.workouts[wid], sort_keys=True) == text
    assert {c["schedule_id"] for c in fake.calendar()} >= {
        s for _, s in (own_past, own_future, own_strength)
    }
    assert_clean(fake, sorted(set(plan_dates(run.home)) | set(past)))
    assert "3 past untouched" in result.output and "replaced" in result.output


def test_coach_override_today_replaces_future_sessions(run, fake) -> None:
    assert push(run).exit_code == 0
    old = set(ours(fake))
    with open_store(run.home) as store:
        profile = dict(store.get_athlete("default")["profile"])
        profile["overrides"] = {"focus_side": "right"}
        store.update_athlete_profile("default", profile)
    result = push(run, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert len(summary["replaced"]) == 8 and summary["created"] == []
    assert not old & set(ours(fake))
    assert_clean(fake, plan_dates(run.home))
    for w in ours(fake).values():
        assert sided_sets(w)[0][0] == "RIGHT"


def test_dry_run_shows_everything_and_sends_no_write(run, fake) -> None:
    fake.add_workout("Tempo 5k", on="2024-04-16")
    result = push(run, "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.count("would create") == 8
    assert "dry run, nothing sent" in result.output
    assert fake.data_writes() == [] and not ours(fake)
    assert not (run.home / "plans" / "default" / "latest.json").exists()  # nothing saved

    assert push(run).exit_code == 0
    before = snapshot(fake)
    n = len(fake.data_writes())
    result = push(run, "--dry-run", today=LATER)
    assert result.exit_code == 0, result.output
    assert "would replace" in result.output or "would create" in result.output
    assert "would remove" in result.output
    assert "delete workout" in result.output and "upload and schedule" in result.output
    assert len(fake.data_writes()) == n and snapshot(fake) == before
    js = json.loads(push(run, "--dry-run", "--json", today=LATER).output)
    assert js["dry_run"] is True and js["removed"] and js["writes"] == 0
    assert len(fake.data_writes()) == n


def test_429_half_way_stops_with_exit_4_and_the_next_push_completes(run, fake) -> None:
    fake.fail(
        "/workout-service/schedule/", 429, method="POST", after=2, headers={"Retry-After": "120"}
    )
    result = push(run)
    assert result.exit_code == 4, result.output
    assert "429" in result.output and "retry after" in result.output
    assert "run `evenstride push garmin` again" in result.output
    assert len(ours(fake)) == 3 and len(calendar_of_ours(fake)) == 2  # kept what was done
    writes = [r for r in fake.data_writes() if r.path.startswith("/workout-service")]
    assert len(writes) == 6  # stopped at the 429: nothing sent after it

    result = push(run)
    assert result.exit_code == 0, result.output
    assert_clean(fake, plan_dates(run.home))
    assert len(fake.workouts) == 8


def test_429_on_a_delete_during_replacement(run, fake) -> None:
    assert push(run).exit_code == 0
    fake.fail("/workout-service/workout/", 429, method="DELETE", after=1)
    result = push(run, "--json", today=LATER)
    assert result.exit_code == 4
    out = json.loads(result.output)
    assert out["exit_code"] == 4 and "429" in out["error"] and out["summary"]["pending"]
    assert push(run, today=LATER).exit_code == 0
    assert_clean(fake, sorted(set(plan_dates(run.home)) | {"2024-04-15", "2024-04-18"}))


def test_lost_answers_are_reconciled_within_the_same_run(run, fake) -> None:
    fake.drop("/workout-service/workout", method="POST", after=1, handled=True)  # upload done
    fake.drop("/workout-service/schedule/", method="POST", after=3, handled=True)  # schedule done
    fake.drop("/workout-service/workout", method="POST", after=5)  # upload never arrived
    result = push(run, "--json")
    assert result.exit_code == 0, result.output
    assert all(f.times == 0 for f in fake.faults)  # all three connections were really cut
    assert len(json.loads(result.output)["created"]) == 8
    assert_clean(fake, plan_dates(run.home))
    assert len(fake.workouts) == 8


def test_a_persistent_outage_exits_5_and_the_next_push_completes(run, fake) -> None:
    fake.drop("/workout-service/", method="POST", after=3, times=100, handled=True)
    result = push(run)
    assert result.exit_code == 5, result.output
    assert "unavailable" in result.output
    fake.faults.clear()
    assert push(run).exit_code == 0
    assert_clean(fake, plan_dates(run.home))
    assert len(fake.workouts) == 8


def test_unknown_exercise_fails_before_any_request(run, fake, monkeypatch) -> None:
    plan = json.loads(run("plan", "--today", TODAY, "--json").output)
    step = plan["sessions"][-1]["blocks"][1]["steps"][0]["exercise"]  # a main-block exercise
    gone = (step["category"], step["name"])
    known = catalog.catalogue_name

    def catalogue_without_it(category: str, name: str) -> str | None:
        """As if garminconnect's catalogue no longer had that exercise."""
        return None if (category, name) == gone else known(category, name)

    monkeypatch.setattr(catalog, "catalogue_name", catalogue_without_it)
    result = push(run)
    assert result.exit_code == 2, result.output
    assert "nothing was sent" in result.output and f"{gone[0]}/{gone[1]}" in result.output
    assert fake.log == []


def test_not_logged_in_exits_3(run, fake) -> None:
    auth.forget("default")
    result = push(run)
    assert result.exit_code == 3 and "login garmin" in result.output
    assert fake.log == []


def test_push_plan_for_the_nightly_job(run, fake) -> None:
    client = GarminClient()
    client.load_tokens(fake.tokens_json())
    with open_store(run.home) as store:
        from datetime import date

        s = push_plan(store, run.home, "default", today=date(2024, 4, 15), client=client)
        assert isinstance(s, PushSummary) and len(s.created) == 8 and not s.dry_run
        assert s.line().startswith("garmin/default push: 8 created, 0 replaced")
        record = json.loads(store.get_sync_state("default", "garmin", f"push:{TODAY}"))
        assert record["workout_id"] in fake.workouts
        again = push_plan(store, run.home, "default", today=date(2024, 4, 15), client=client)
        assert len(again.unchanged) == 8 and again.writes == 0
        later = push_plan(store, run.home, "default", today=date(2024, 4, 24), dry_run=True)
        assert later.dry_run and later.skipped_past and "dry run" in later.line()
        fake.fail("/workout-service/", 429, method="DELETE")
        with pytest.raises(RateLimitedError) as info:
            push_plan(store, run.home, "default", today=date(2024, 4, 24), client=client)
        assert isinstance(info.value.summary, PushSummary) and info.value.summary.exit_code == 4


def test_tokens_never_leak(run, fake, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    fake.expire_access_tokens()  # the first write triggers a refresh: new tokens issued
    assert push(run).exit_code == 0
    assert push(run, "--json", "--dry-run", today=LATER).exit_code == 0
    fake.fail("/workout-service/workout/", 429, method="DELETE")
    assert push(run, today=LATER).exit_code == 4
    fake.revoke_all()
    assert push(run, "--json", today=LATER).exit_code == 3
    assert len(fake.issued) >= 4
    haystacks = {"cli output": "\n".join(run.outputs), "logs": caplog.text}
    for path in run.home.rglob("*"):
        if path.is_file():
            haystacks[str(path)] = path.read_bytes().decode("latin-1")
    with open_store(run.home) as store:
        for sha in store.archive.iter():  # every archived payload as it came (packed, zstd)
            haystacks[f"raw file {sha}"] = store.archive.get(sha).decode("latin-1")
        haystacks["sync state"] = json.dumps(
            [store.get_sync_state("default", "garmin", f"push:{d}") for d in plan_dates(run.home)]
        )
    haystacks["garmin workouts"] = json.dumps(fake.workouts)
    for secret in fake.issued:
        for where, text in haystacks.items():
            assert secret not in text, f"{secret[:12]}… leaked into {where}"
