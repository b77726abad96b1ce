"""`sync strava` end to end: real stravalib and keyring backend, fake Strava, real store."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import keyring
import pandas as pd
import pytest
from click.testing import CliRunner
from fake_strava import (
    FakeStrava,
    cli_root,
    login,
    make_streams,
    strava_fake_fixture,  # noqa: F401 - the `fake` fixture
    strava_keyring_fixture,  # noqa: F401 - the `strava_keyring` fixture
)

from evenstride.cli import exitcodes
from evenstride.connectors.strava import auth
from evenstride.connectors.strava.sync import NO_STREAMS_NOTE, SyncOptions, sync
from evenstride.ingest import ingest_file
from evenstride.metrics import assess_athlete
from evenstride.metrics.summary import NO_BALANCE_FLAG
from evenstride.store import open_store

pytestmark = pytest.mark.usefixtures("strava_keyring")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def day(n: int, hour: int = 7) -> dt.datetime:
    return (NOW - dt.timedelta(days=n)).replace(hour=hour, minute=0, second=0)


def stored_tokens(athlete: str = "default") -> dict[str, Any]:
    return json.loads(keyring.get_password("evenstride", f"strava/{athlete}/tokens"))


def run_cli(home: Path, *args: str) -> Any:
    return CliRunner().invoke(cli_root(), ["--home", str(home), *args])


def summary_of(result: Any) -> dict[str, Any]:
    return json.loads(result.stdout)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_sync_runs_with_sub_sports_devices_and_raw_json(fake: FakeStrava, home: Path) -> None:
    login(fake)
    fake.add_run(101, day(5), sport_type="Run")
    fake.add_run(102, day(4), sport_type="TrailRun")
    fake.add_run(103, day(3), sport_type="VirtualRun", device_name="Zwift")
    fake.add_run(104, day(2), sport_type="Run", trainer=True)
    fake.add_run(105, day(1), sport_type="Ride")
    result = run_cli(home, "sync", "strava", "--json")
    assert result.exit_code == 0, result.output
    s = summary_of(result)
    assert (s["listed"], s["running"], s["imported"], s["not_running"]) == (5, 4, 4, 1)
    assert set(s["rate_usage"]) == {"overall", "read"}
    with open_store(home) as store:
        acts = {a["source_id"]: a for a in store.list_activities("default", source="strava")}
        assert {k: a["sub_sport"] for k, a in acts.items()} == {
            "101": "generic", "102": "trail", "103": "virtual_activity", "104": "treadmill",
        }  # fmt: skip
        assert acts["103"]["device"] == "Zwift"
        assert acts["101"]["extra"]["strava"]["sport_type"] == "Run"
        assert acts["101"]["extra"]["streams"]["cadence_scale"] == "doubled"
        raw = json.loads(store.archive.get(acts["101"]["sha256"]))
        assert raw["activity"] == fake.activities[0]
        assert raw["streams"]["cadence"] == fake.streams[101]["cadence"]
        run = store.list_runs("default", activity_id=acts["101"]["id"])[0]
        assert run["start_time"] == day(5)
        assert 165 <= run["summary"]["cadence_median"] <= 175  # 85 per leg -> ~170 steps/min
    streams_calls = [r for r in fake.api_calls() if r["path"].endswith("/streams")]
    assert len(streams_calls) == 4  # not for the ride
    q = streams_calls[0]["query"]
    assert q["keys"].split(",") == [
        "time", "distance", "velocity_smooth", "heartrate", "cadence", "altitude",
        "grade_smooth", "moving",
    ]  # fmt: skip
    assert all(r["authorization"].startswith("Bearer ") for r in fake.api_calls())


def test_pagination_cursor_and_dedup(fake: FakeStrava, home: Path) -> None:
    login(fake)
    for i in range(203):  # 203 rides: two pages of 200 + 3, no streams needed
        fake.add_run(1000 + i, day(20) + dt.timedelta(minutes=i), sport_type="Ride")
    fake.add_run(2001, day(3))
    fake.add_run(2002, day(2))
    s = summary_of(run_cli(home, "sync", "strava", "--json"))
    assert (s["listed"], s["imported"], s["not_running"]) == (205, 2, 203)
    pages = [r["query"] for r in fake.api_calls() if r["path"].endswith("/athlete/activities")]
    assert [p["page"] for p in pages] == ["1", "2"] and pages[0]["per_page"] == "200"
    assert s["cursor"] == day(2).isoformat()
    # the next run lists from cursor - 2 days, skips stored runs by id (no streams calls)
    before = len(fake.api_calls())
    fake.add_run(2003, day(1))
    s = summary_of(run_cli(home, "sync", "strava", "--json"))
    calls = fake.api_calls()[before:]
    assert int(calls[0]["query"]["after"]) == int((day(2) - dt.timedelta(days=2)).timestamp())
    assert (s["imported"], s["already"]) == (1, 2)
    assert [c["path"] for c in calls if c["path"].endswith("streams")] == [
        "/api/v3/activities/2003/streams"
    ]
    with open_store(home) as store:
        assert len(store.list_runs("default")) == 3


def test_refresh_ahead_of_expiry_persists_the_rotated_token(fake: FakeStrava, home: Path) -> None:
    issued = login(fake, expires_in=60)  # inside the 5-minute margin: refresh before any call
    fake.add_run(301, day(1))
    result = run_cli(home, "sync", "strava", "--json")
    assert result.exit_code == 0, result.output
    assert fake.refreshes == 1
    tokens = stored_tokens()
    assert tokens["refresh_token"] != issued["refresh_token"]
    assert tokens["refresh_token"] in fake.refresh and issued["refresh_token"] not in fake.refresh
    assert tokens["expires_at"] > issued["expires_at"]
    assert fake.api_calls()[0]["authorization"] == f"Bearer {tokens['access_token']}"
    # the next run uses the saved (rotated) pair without refreshing again
    assert run_cli(home, "sync", "strava", "--json").exit_code == 0
    assert fake.refreshes == 1


def test_a_401_refreshes_once_and_replays(fake: FakeStrava, home: Path) -> None:
    issued = login(fake)
    fake.access.pop(issued["access_token"])  # Strava dropped the access token early
    fake.add_run(401, day(1))
    result = run_cli(home, "sync", "strava", "--json")
    assert result.exit_code == 0, result.output
    assert summary_of(result)["imported"] == 1 and fake.refreshes == 1
    assert stored_tokens()["refresh_token"] in fake.refresh


def test_revoked_refresh_token_means_login_again(fake: FakeStrava, home: Path) -> None:
    issued = login(fake, athlete="bob")
    fake.access.pop(issued["access_token"])
    fake.refresh.discard(issued["refresh_token"])  # the athlete revoked the app
    result = run_cli(home, "sync", "strava", "--athlete", "bob")
    assert result.exit_code == exitcodes.AUTH_NEEDED
    assert "run `evenstride login strava --athlete bob` again" in result.output


def test_not_logged_in(fake: FakeStrava, home: Path) -> None:
    result = run_cli(home, "sync", "strava", "--json")
    assert result.exit_code == exitcodes.AUTH_NEEDED
    assert "evenstride login strava" in summary_of(result)["error"]
    assert fake.requests == []


def test_429_stops_cleanly_and_the_next_run_resumes(fake: FakeStrava, home: Path) -> None:
    login(fake)
    for i in range(4):
        fake.add_run(500 + i, day(10 - i))
    fake.exhaust_after = 3  # another client of the same app used the budget up: listing +
    result = run_cli(home, "sync", "strava", "--json")  # two streams calls, then 429
    s = summary_of(result)
    assert result.exit_code == exitcodes.RATE_LIMITED, result.output
    assert "429" in s["stopped"] and "resume after" in s["retry_hint"]
    assert s["imported"] == 2 and s["cursor"] == day(9).isoformat()
    assert s["rate_usage"]["read"]["short_usage"] == 101  # read from the 429 headers
    fake.exhaust_after = None
    # next window: usage reset; the run resumes at the cursor and fetches only what is missing
    fake.usage = {"overall": [0, 310], "read": [0, 310]}
    s = summary_of(run_cli(home, "sync", "strava", "--json"))
    assert (s["imported"], s["already"]) == (2, 2)
    with open_store(home) as store:
        assert len(store.list_runs("default")) == 4


def test_budget_margin_stops_before_strava_says_429(fake: FakeStrava, home: Path) -> None:
    login(fake)
    for i in range(8):
        fake.add_run(600 + i, day(10 - i))
    fake.usage["read"] = [85, 300]  # keep 10 of 100: listing 86, streams 87..90, then stop
    result = run_cli(home, "sync", "strava", "--json")
    s = summary_of(result)
    assert result.exit_code == exitcodes.RATE_LIMITED
    assert "15-minute read" in s["stopped"] and "90 of 100" in s["stopped"]
    assert "resume after" in s["retry_hint"]
    assert fake.usage["read"][0] == 90 and s["imported"] == 4  # never near Strava's 429


def test_daily_budget_is_respected(fake: FakeStrava, home: Path) -> None:
    login(fake)
    fake.add_run(650, day(2))
    fake.add_run(651, day(1))
    fake.usage["read"] = [0, 948]  # daily margin 5 % of 1000 = 50: listing 949, streams 950 stop
    s = summary_of(run_cli(home, "sync", "strava", "--json"))
    assert "daily read" in s["stopped"] and "UTC" in s["retry_hint"]
    assert s["imported"] == 1


def test_application_inactive_has_its_own_message(fake: FakeStrava, home: Path) -> None:
    login(fake)
    fake.inactive = True
    result = run_cli(home, "sync", "strava")
    assert result.exit_code == exitcodes.USAGE
    assert "subscription" in result.output and "settings/api" in result.output


def test_server_errors_are_retried(fake: FakeStrava, home: Path) -> None:
    login(fake)
    fake.add_run(700, day(1))
    fake.fail_next = [("/streams", 502), ("/streams", 503)]
    s = summary_of(run_cli(home, "sync", "strava", "--json"))
    assert s["imported"] == 1 and s["exit_code"] == 0
    fake.add_run(701, day(0, hour=1))
    fake.fail_next = [("/streams", 500)] * 3
    result = run_cli(home, "sync", "strava", "--json")
    assert result.exit_code == exitcodes.UNAVAILABLE
    assert "HTTP 500" in summary_of(result)["stopped"]


def test_manual_and_streamless_activities(fake: FakeStrava, home: Path) -> None:
    login(fake)
    fake.add_run(801, day(3), manual=True, device_name=None, average_cadence=None)
    fake.add_run(802, day(2), streams=None)  # recorded, but Strava has no streams (404)
    streams = make_streams(1800, cadence=None, heartrate=False)
    fake.add_run(803, day(1), streams=streams)  # streams without cadence
    result = run_cli(home, "sync", "strava", "--json")
    s = summary_of(result)
    assert result.exit_code == 0, result.output
    assert [n["activity_id"] for n in s["without_streams"]] == ["801", "802"]
    assert s["without_streams"][0]["note"].startswith("manual activity")
    assert s["imported"] == 1
    assert not any(r["path"].endswith("/801/streams") for r in fake.api_calls())
    with open_store(home) as store:
        acts = {a["source_id"]: a for a in store.list_activities("default")}
        assert NO_STREAMS_NOTE in acts["801"]["reason"] and acts["801"]["status"] == "ok"
        assert store.list_runs("default", activity_id=acts["801"]["id"]) == []
        run = store.list_runs("default", activity_id=acts["803"]["id"])[0]
        assert run["summary"]["cadence_median"] is None
    text = run_cli(home, "sync", "strava", "--since", day(5).strftime("%Y-%m-%d"))
    assert text.exit_code == 0 and "3 already stored" in text.output


def _fit_twin(fake: FakeStrava, activity_id: int) -> bytes:
    """A synthetic Garmin FIT run (30 min, 2024-05-12 06:15 UTC) and its Strava copy."""
    data = (FIXTURES / "synthetic" / "steady_left_51_2.fit").read_bytes()
    start = dt.datetime(2024, 5, 12, 6, 15, 1, tzinfo=dt.UTC)  # Strava rounds differently
    fake.add_run(activity_id, start, seconds=1799, distance=5383.4)
    return data


@pytest.mark.parametrize("fit_first", [True, False])
def test_a_run_from_garmin_and_strava_is_stored_once(
    fake: FakeStrava, home: Path, fit_first: bool
) -> None:
    login(fake)
    fit = _fit_twin(fake, 901)
    since = ["--since", "2024-05-01"]
    with open_store(home) as store:
        if fit_first:
            assert ingest_file(store, fit, source="garmin", source_id="g1").status == "imported"
    s = summary_of(run_cli(home, "sync", "strava", "--json", *since))
    assert s["exit_code"] == 0
    with open_store(home) as store:
        if not fit_first:
            assert s["imported"] == 1
            assert ingest_file(store, fit, source="garmin", source_id="g1").status == "imported"
        else:
            assert s["same_as_other_source"] == 1
        runs = store.list_runs("default")
        assert len(runs) == 1 and runs[0]["source"] == "garmin"
        assert runs[0]["summary"]["balance_median"] is not None  # the FIT version, with balance
        strava = store.find_activity("default", "strava", "901")
        assert strava["extra"]["duplicate_of"] == runs[0]["activity_id"]
    # and it is not fetched again
    before = len(fake.api_calls())
    s = summary_of(run_cli(home, "sync", "strava", "--json", *since))
    assert s["already"] == 1
    assert not [c for c in fake.api_calls()[before:] if c["path"].endswith("streams")]


def test_strava_only_athlete_gets_cadence_trends(fake: FakeStrava, home: Path) -> None:
    login(fake, athlete="sam")
    for i in range(12):
        act = fake.add_run(1100 + i, day(40 - 3 * i), seconds=2400, distance=7200.0)
        fake.streams[act["id"]] = make_streams(2400, cadence=84 + (i % 2), seed=i)
    s = summary_of(run_cli(home, "sync", "strava", "--athlete", "sam", "--json"))
    assert s["imported"] == 12
    with open_store(home) as store:
        runs = store.list_runs("sam")
    summaries = [r["summary"] for r in runs]
    assert all(168 <= x["cadence_median"] <= 172 for x in summaries)
    assert all(x["balance_median"] is None and not x["has_balance"] for x in summaries)
    assert all(NO_BALANCE_FLAG in x["flags"] for x in summaries)
    assert all(r["sensor"] is None for r in runs)
    frame = pd.DataFrame(summaries)
    frame["start_time"] = pd.to_datetime(frame["start_time"], utc=True)
    verdict = assess_athlete(frame)
    assert verdict.cadence.state != "insufficient_data", verdict.cadence
    assert verdict.balance.state == "insufficient_data"


def test_sync_function_reports_instead_of_raising(fake: FakeStrava, home: Path) -> None:
    login(fake)
    fake.add_run(1201, day(1))
    fake.limits["read"] = [100, 1000]
    fake.usage["read"] = [100, 100]  # the very first call is a 429
    with open_store(home) as store:
        summary = sync(auth.open_client("default"), store, SyncOptions())
    assert summary.exit_code == exitcodes.RATE_LIMITED and summary.listed == 0
    assert summary.cursor is None
