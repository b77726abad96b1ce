"""The adapter's workout writes: garminconnect's undecorated writes mapped to our errors."""

from __future__ import annotations

import datetime as dt

import pytest
from fake_garmin import FakeGarminConnect, fake_fixture  # noqa: F401 - the `fake` fixture

from evenstride.connectors.garmin.client import GarminClient
from evenstride.connectors.garmin.errors import RateLimitedError, UnavailableError

WORKOUT = {
    "workoutName": "[evenstride] 2024-04-16 A",
    "description": "[evenstride:" + "a" * 16 + "]",
}
DAY = dt.date(2024, 4, 16)


def _client(fake: FakeGarminConnect) -> GarminClient:
    client = GarminClient()
    client.load_tokens(fake.tokens_json())
    return client


def test_round_trip_upload_schedule_calendar_unschedule_delete(fake) -> None:
    fake.calendar_spill_days = 7
    c = _client(fake)
    wid = c.upload_workout(WORKOUT)
    sid = c.schedule_workout(wid, DAY)
    assert [w["workoutId"] for w in c.workouts_page(0, 10)] == [wid]
    items = c.calendar_month(2024, 4)
    assert [(i["id"], i["date"]) for i in items] == [(sid, "2024-04-16")]
    assert fake.requests_to("/calendar-service/year/2024/month/3")  # Garmin's 0-based month
    assert c.unschedule_workout(sid) is True and c.unschedule_workout(sid) is False
    assert c.delete_workout(wid) is True and c.delete_workout(wid) is False  # 404 = gone


def test_429_on_a_write_is_rate_limited_with_retry_after(fake) -> None:
    fake.fail("/workout-service/workout", 429, method="POST", headers={"Retry-After": "90"})
    with pytest.raises(RateLimitedError, match="429") as info:
        _client(fake).upload_workout(WORKOUT)
    assert info.value.retry_after_s == 90 and info.value.exit_code == 4


def test_a_lost_post_is_not_retried_a_lost_delete_is(fake) -> None:
    c = _client(fake)
    fake.drop("/workout-service/workout", method="POST", handled=True)
    with pytest.raises(UnavailableError, match="RemoteDisconnected|ConnectionError"):
        c.upload_workout(WORKOUT)
    assert len(fake.requests_to("/workout-service/workout")) == 1  # sent once: no duplicate
    assert len(fake.workouts) == 1  # ... although it did happen
    wid = next(iter(fake.workouts))
    fake.drop("/workout-service/workout/", method="DELETE")
    assert c.delete_workout(wid) is True  # retried after the cut
    assert len([r for r in fake.log if r.method == "DELETE"]) == 2


def test_server_errors_on_a_post_are_unavailable_not_retried(fake) -> None:
    fake.fail("/workout-service/schedule/", 503, method="POST", times=5)
    with pytest.raises(UnavailableError, match="HTTP 503"):
        _client(fake).schedule_workout(123, DAY)
    assert len(fake.requests_to("/workout-service/schedule/")) == 1
