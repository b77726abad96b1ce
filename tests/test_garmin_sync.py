"""Incremental sync against the fake Garmin Connect, driving the real garminconnect client."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fake_garmin import (
    EPOCH,
    FakeGarminConnect,
    fake_fixture,  # noqa: F401 - the `fake` fixture
    make_zip,
)

from evenstride.connectors.garmin.client import GarminClient
from evenstride.connectors.garmin.errors import (
    EXIT_AUTH,
    EXIT_OK,
    EXIT_RATE_LIMITED,
    EXIT_SOME_FAILED,
    EXIT_UNAVAILABLE,
)
from evenstride.connectors.garmin.sync import (
    CURSOR_KEY,
    SyncOptions,
    SyncSummary,
    is_running,
    start_time,
    sync,
    unzip_fit,
)
from evenstride.ingest import ingest_file as INGEST  # noqa: N812 - the real spine
from evenstride.store import open_store

NOW = EPOCH + dt.timedelta(days=400)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with open_store(tmp_path / "home") as s:
        yield s


def _client(fake: FakeGarminConnect) -> GarminClient:
    client = GarminClient()
    client.load_tokens(fake.tokens_json())
    return client


def _sync(fake: FakeGarminConnect, store: Any, **opts: Any) -> SyncSummary:
    opts.setdefault("page_size", 20)
    if "since" not in opts and store.get_sync_state("default", "garmin", CURSOR_KEY) is None:
        opts["since"] = dt.date(2023, 12, 1)
    return sync(_client(fake), store, SyncOptions(**opts), ingest=INGEST, now=NOW)


def _stored(store: Any) -> Counter[str]:
    return Counter(a["source_id"] for a in store.list_activities("default", source="garmin"))


def _assert_each_run_once(fake: FakeGarminConnect, store: Any) -> None:
    stored = _stored(store)
    assert set(stored) == {str(i) for i in fake.running_ids()}
    assert max(stored.values()) == 1


def test_hundreds_of_activities_over_many_pages_each_run_exactly_once(fake, store) -> None:
    fake.add_runs(300)
    summary = _sync(fake, store)
    assert summary.exit_code == EXIT_OK, summary.line()
    assert summary.listed == 300
    assert summary.imported == len(fake.running_ids()) == 240
    assert summary.not_running == 60
    assert len(fake.requests_to("/activitylist-service")) >= 15  # 300 / 20 per page
    _assert_each_run_once(fake, store)
    assert Counter(fake.downloads) == Counter(fake.running_ids())  # non-runs never downloaded
    cursor = store.get_sync_state("default", "garmin", CURSOR_KEY)
    assert cursor == start_time(max(fake.activities.values(), key=start_time)).isoformat()

    # a second run lists only the overlap window and downloads nothing
    fake.downloads.clear()
    pages_before = len(fake.requests_to("/activitylist-service"))
    again = _sync(fake, store)
    assert (again.imported, again.exit_code, fake.downloads) == (0, EXIT_OK, [])
    assert len(fake.requests_to("/activitylist-service")) - pages_before == 1
    _assert_each_run_once(fake, store)


def test_new_and_late_uploaded_runs_are_picked_up(fake, store) -> None:
    fake.add_runs(30)
    _sync(fake, store)
    last = max(start_time(e) for e in fake.activities.values())
    late = fake.add_activity(last - dt.timedelta(hours=30))  # uploaded late, inside the overlap
    new = fake.add_activity(last + dt.timedelta(days=1), "trail_running")
    fake.downloads.clear()
    summary = _sync(fake, store)
    assert sorted(fake.downloads) == sorted([late, new])
    assert summary.imported == 2
    _assert_each_run_once(fake, store)


def test_rate_limit_stops_at_once_keeps_progress_and_resumes(fake, store) -> None:
    fake.add_runs(60)
    calls = {"n": 0}

    def limit_after_ten(aid: int) -> None:
        calls["n"] += 1
        if calls["n"] == 10:
            fake.fail("/download-service", 429, headers={"Retry-After": "600"})

    fake.on_download = limit_after_ten
    summary = _sync(fake, store)
    assert summary.exit_code == EXIT_RATE_LIMITED
    assert "429" in summary.stopped and "600 s" in summary.retry_hint
    assert summary.imported == 10
    assert len(fake.requests_to("/download-service")) == 11  # no retry storm after the 429
    assert len(_stored(store)) == 10

    fake.on_download = None
    resumed = _sync(fake, store)
    assert resumed.exit_code == EXIT_OK
    assert resumed.imported == len(fake.running_ids()) - 10
    _assert_each_run_once(fake, store)
    assert max(Counter(fake.downloads).values()) == 1  # nothing downloaded twice


def test_429_while_listing_stops_before_any_download(fake, store) -> None:
    fake.add_runs(60)
    fake.fail("/activitylist-service", 429, times=1)
    fake.fail("/activitylist-service", 429, times=1)  # would be a retry; must never be asked
    summary = _sync(fake, store)
    assert summary.exit_code == EXIT_RATE_LIMITED
    assert "no Retry-After" in summary.retry_hint
    assert len(fake.requests_to("/activitylist-service")) == 1
    assert fake.downloads == []


def test_server_errors_are_retried_with_backoff_then_succeed(fake, store) -> None:
    fake.add_runs(10)
    fake.fail("/activitylist-service", 500, times=2)
    fake.fail("/download-service", 503, times=2)
    summary = _sync(fake, store)
    assert summary.exit_code == EXIT_OK, summary.line()
    _assert_each_run_once(fake, store)


def test_persistent_outage_stops_with_exit_5_and_resumes_exactly(fake, store) -> None:
    fake.add_runs(40)
    seen = {"n": 0}

    def cut_after_seven(aid: int) -> None:
        seen["n"] += 1
        if seen["n"] == 7:
            fake.drop("/download-service", times=3)  # first try + 2 retries, all cut

    fake.on_download = cut_after_seven
    summary = _sync(fake, store)
    assert summary.exit_code == EXIT_UNAVAILABLE
    assert "after 3 attempts" in summary.stopped
    assert summary.imported == 7
    fake.on_download = None
    assert _sync(fake, store).exit_code == EXIT_OK
    _assert_each_run_once(fake, store)


def test_timeouts_count_as_unavailable(fake, store, monkeypatch) -> None:
    monkeypatch.setenv("EVENSTRIDE_GARMIN_TIMEOUT_S", "0.2")
    monkeypatch.setenv("EVENSTRIDE_GARMIN_RETRIES", "1")
    fake.add_runs(3)
    fake.delay("/activitylist-service", 1.0, times=2)
    summary = _sync(fake, store)
    assert summary.exit_code == EXIT_UNAVAILABLE
    assert "Timeout" in summary.stopped


def test_corrupt_zip_and_undecodable_fit_are_marked_failed_and_sync_goes_on(fake, store) -> None:
    fake.add_runs(10)
    corrupt = fake.add_activity(EPOCH + dt.timedelta(hours=1), body=b"PK\x03\x04 truncated zip")
    garbage_fit = make_zip(b"this is not a FIT file at all", "77_ACTIVITY.fit")
    undecodable = fake.add_activity(EPOCH + dt.timedelta(hours=2), body=garbage_fit)
    gpx_only = fake.add_activity(EPOCH + dt.timedelta(hours=3), body=make_zip(b"<gpx/>", "a.gpx"))
    summary = _sync(fake, store)
    assert summary.exit_code == EXIT_SOME_FAILED
    failed = {f["activity_id"]: f["reason"] for f in summary.failed}
    assert set(failed) == {str(corrupt), str(undecodable), str(gpx_only)}
    assert "corrupt download" in failed[str(corrupt)]
    assert "not a FIT file" in failed[str(gpx_only)]
    rows = {a["source_id"]: a for a in store.list_activities("default", source="garmin")}
    assert rows[str(corrupt)]["status"] == "failed" and rows[str(corrupt)]["reason"]
    assert rows[str(undecodable)]["status"] == "failed"
    _assert_each_run_once(fake, store)
    # the failures are definitive: the next run neither re-downloads nor re-reports them
    fake.downloads.clear()
    again = _sync(fake, store)
    assert (again.exit_code, fake.downloads) == (EXIT_OK, [])


def test_missing_original_404_is_marked_failed(fake, store) -> None:
    fake.add_runs(4)
    gone = fake.add_activity(EPOCH + dt.timedelta(hours=5))
    del fake.files[gone]
    summary = _sync(fake, store)
    assert summary.failed == [
        {"activity_id": str(gone), "reason": "not found on Garmin Connect (HTTP 404)"}
    ]
    assert summary.exit_code == EXIT_SOME_FAILED


def test_summary_json_is_kept_and_balance_disagreement_flagged(fake, store) -> None:
    agree = fake.add_activity(EPOCH, balance=50.4)
    differ = fake.add_activity(EPOCH + dt.timedelta(hours=3), balance=50.4, fit_balance=51.2)
    summary = _sync(fake, store)
    assert [m["activity_id"] for m in summary.balance_mismatches] == [str(differ)]
    rows = {a["source_id"]: a for a in store.list_activities("default", source="garmin")}
    extra = rows[str(differ)]["extra"]
    assert extra["summary"]["avgGroundContactBalance"] == 50.4
    assert extra["summary"]["avgGroundContactTime"] == 250.0
    assert extra["balance_check"]["agree"] is False
    assert extra["balance_check"]["diff_pp"] == pytest.approx(0.8)
    assert rows[str(agree)]["extra"]["balance_check"]["agree"] is True


def test_since_backfills_history_before_the_cursor(fake, store) -> None:
    old = fake.add_activity(EPOCH - dt.timedelta(days=200))
    fake.add_runs(10)
    first = _sync(fake, store)  # since 2023-12-01: the old run is outside
    assert str(old) not in _stored(store) and first.exit_code == EXIT_OK
    back = _sync(fake, store, since=dt.date(2023, 1, 1))
    assert back.imported == 1
    _assert_each_run_once(fake, store)


def test_refused_tokens_stop_with_auth_exit(fake, store) -> None:
    fake.add_runs(3)
    client = _client(fake)
    fake.revoke_all()
    summary = sync(client, store, SyncOptions(page_size=20), ingest=INGEST, now=NOW)
    assert summary.exit_code == EXIT_AUTH
    assert fake.downloads == []


def test_expired_access_token_is_refreshed_mid_sync(fake, store) -> None:
    fake.add_runs(30)
    client = _client(fake)
    before = client.tokens()
    fake.on_download = lambda aid: fake.expire_access_tokens() if len(fake.downloads) == 5 else None
    summary = sync(
        client, store, SyncOptions(page_size=20, since=dt.date(2023, 1, 1)), ingest=INGEST, now=NOW
    )
    assert summary.exit_code == EXIT_OK
    assert fake.refreshes == 1
    assert client.tokens() != before
    assert json.loads(client.tokens())["di_refresh_token"] == fake.refresh_token


def test_unzip_and_type_helpers() -> None:
    assert unzip_fit(make_zip(b"\x0e\x10" + b"x" * 6 + b".FIT", "1_ACTIVITY.fit"))[0] == (
        "1_ACTIVITY.fit"
    )
    bare = b"\x0e\x10\x00\x00\x00\x00\x00\x00.FIT"
    assert unzip_fit(bare) == (None, bare)
    assert is_running({"activityType": {"typeKey": "virtual_run"}})
    assert is_running({"activityType": {"typeKey": "new_running_kind", "parentTypeId": 1}})
    assert not is_running({"activityType": {"typeKey": "cycling", "parentTypeId": 17}})
    assert start_time({"startTimeGMT": "2024-05-01 06:00:00"}) == dt.datetime(
        2024, 5, 1, 6, tzinfo=dt.UTC
    )
