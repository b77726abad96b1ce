"""The garminconnect adapter: URL override, error translation, retry policy."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from pathlib import Path

import pytest
from fake_garmin import fake_fixture  # noqa: F401 - the `fake` fixture

from evenstride.connectors.garmin import auth
from evenstride.connectors.garmin.client import GarminClient, RetryPolicy, point_at
from evenstride.connectors.garmin.errors import (
    ActivityFetchError,
    AuthRequiredError,
    RateLimitedError,
    UnavailableError,
)


def _client(fake, **kw) -> GarminClient:
    client = GarminClient(**kw)
    client.load_tokens(fake.tokens_json())
    return client


def test_point_at_rewrites_every_url_and_refuses_unknown_layouts() -> None:
    import garminconnect

    inner = garminconnect.Garmin().client
    point_at(inner, "http://proxy.local:8080/")
    assert inner._connectapi == inner._sso == inner._connect == "http://proxy.local:8080"
    assert inner._di_token_url == "http://proxy.local:8080/di-oauth2-service/oauth/token"
    with pytest.raises(RuntimeError, match="EVENSTRIDE_GARMIN_API_URL"):
        point_at(object(), "http://x")


def test_every_request_reaches_the_configured_base(fake) -> None:
    fake.add_runs(3)
    client = _client(fake)
    fake.expire_access_tokens()
    assert len(client.activities_page(0, 10)) == 3
    assert client.verify() == "fake-runner"
    paths = {r.path for r in fake.log}
    assert "/di-oauth2-service/oauth/token" in paths  # the refresh went to the fake too


def test_retry_after_as_http_date(fake) -> None:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    fake.fail(
        "/activitylist-service", 429, headers={"Retry-After": email.utils.format_datetime(when)}
    )
    with pytest.raises(RateLimitedError) as info:
        _client(fake).activities_page(0, 5)
    assert 500 < info.value.retry_after_s <= 600
    assert "retry after" in info.value.retry_hint()


def test_5xx_retries_are_bounded_and_back_off(fake) -> None:
    slept: list[float] = []
    client = _client(fake, retry=RetryPolicy(attempts=3, base_delay_s=1.0), sleep=slept.append)
    fake.fail("/activitylist-service", 502, times=10)
    with pytest.raises(UnavailableError, match="HTTP 502 after 4 attempts"):
        client.activities_page(0, 5)
    assert slept == [1.0, 2.0, 4.0]
    assert len(fake.requests_to("/activitylist-service")) == 4


def test_per_activity_errors_and_refused_tokens(fake) -> None:
    fake.add_runs(1)
    client = _client(fake)
    with pytest.raises(ActivityFetchError, match="404"):
        client.download_original(123)
    fake.revoke_all()
    with pytest.raises(AuthRequiredError):
        client.activities_page(0, 5)
    with pytest.raises(AuthRequiredError, match="unreadable"):
        GarminClient().load_tokens("{}")


def test_read_token_store_accepts_file_and_folder(fake, tmp_path: Path) -> None:
    file = tmp_path / "tokens.json"
    file.write_text(fake.tokens_json())
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "garmin_tokens.json").write_text(fake.tokens_json())
    assert json.loads(auth.read_token_store(file)) == json.loads(fake.tokens_json())
    assert auth.read_token_store(folder) == auth.read_token_store(file)
    (tmp_path / "bad.json").write_text('{"something": 1}')
    with pytest.raises(AuthRequiredError, match="no garminconnect DI tokens"):
        auth.read_token_store(tmp_path / "bad.json")
