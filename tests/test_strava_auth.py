"""Strava OAuth end to end: real stravalib, real keyring backend, fake Strava on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import keyring
import pytest
from click.testing import CliRunner
from fake_strava import (
    ATHLETE_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    FakeStrava,
    cli_root,
    login,
    strava_fake_fixture,  # noqa: F401 - the `fake` fixture
    strava_keyring_fixture,  # noqa: F401 - the `strava_keyring` fixture
)

from evenstride.cli import exitcodes, strava_cmds
from evenstride.connectors.strava import auth
from evenstride.connectors.strava.client import (
    AppCredentials,
    RoutedApiV3,
    Settings,
    StravaClient,
)
from evenstride.connectors.strava.errors import AuthRequiredError, StravaError
from evenstride.connectors.strava.ratelimit import RateBudget

pytestmark = pytest.mark.usefixtures("strava_keyring")
APP = AppCredentials(CLIENT_ID, CLIENT_SECRET)


def stored(athlete: str = "default") -> dict[str, Any] | None:
    text = keyring.get_password("evenstride", f"strava/{athlete}/tokens")
    return json.loads(text) if text else None


def browser(fake: FakeStrava, *, scope: str = "read,activity:read_all", **override: str) -> Any:
    """Plays the user's browser: checks the authorize URL, then hits the local callback."""
    seen: dict[str, Any] = {}

    def announce(url: str) -> None:
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        seen.update(url=url, query=query)
        params = {"state": query["state"], "code": fake.issue_code(scope), "scope": scope}
        params.update(override)
        target = f"{query['redirect_uri']}?{urlencode(params)}"

        def hit() -> None:
            with urllib.request.urlopen(target, timeout=5) as resp:
                seen["page"] = resp.read().decode()

        threading.Thread(target=hit, daemon=True).start()

    announce.seen = seen  # type: ignore[attr-defined]
    return announce


def test_browser_flow_end_to_end(fake: FakeStrava) -> None:
    announce = browser(fake)
    who, warnings = auth.browser_login("default", APP, announce=announce, open_browser=False)
    seen = announce.seen
    assert seen["url"].startswith(f"{fake.url}/oauth/authorize?")  # the configured OAuth host
    assert seen["query"]["scope"] == "read,activity:read_all"
    assert seen["query"]["client_id"] == str(CLIENT_ID)
    assert seen["query"]["response_type"] == "code"
    assert seen["query"]["redirect_uri"].startswith("http://127.0.0.1:")
    assert "authorised" in seen["page"]
    assert who["id"] == ATHLETE_ID and warnings == []
    tokens = stored()
    assert tokens["athlete_id"] == ATHLETE_ID and tokens["refresh_token"] in fake.refresh
    assert auth.load_app() == APP
    assert [r["path"] for r in fake.requests] == ["/oauth/token"]
    assert fake.requests[0]["form_keys"] == ["client_id", "client_secret", "code", "grant_type"]


def test_browser_flow_without_read_all_warns(fake: FakeStrava) -> None:
    _, warnings = auth.browser_login(
        "default", APP, announce=browser(fake, scope="read,activity:read"), open_browser=False
    )
    assert warnings and "Only Me" in warnings[0]


@pytest.mark.parametrize(
    ("override", "scope", "expect"),
    [
        ({"state": "forged"}, "read,activity:read_all", "state"),
        ({"error": "access_denied"}, "read,activity:read_all", "access_denied"),
        ({}, "read", "activity permission"),
    ],
)
def test_browser_flow_refusals(fake: FakeStrava, override: dict, scope: str, expect: str) -> None:
    if "error" in override:
        override = {**override, "code": ""}
    with pytest.raises(AuthRequiredError, match=expect):
        auth.browser_login(
            "default", APP, announce=browser(fake, scope=scope, **override), open_browser=False
        )
    assert stored() is None


def test_browser_flow_times_out(fake: FakeStrava) -> None:
    with pytest.raises(AuthRequiredError, match="no answer"):
        auth.browser_login(
            "default", APP, announce=lambda url: None, open_browser=False, timeout_s=0.5
        )


def test_refresh_token_login_persists_the_rotated_token(fake: FakeStrava) -> None:
    held = fake.issue_tokens()["refresh_token"]
    who = auth.refresh_token_login("alice", APP, held + "\n")
    assert who["id"] == ATHLETE_ID
    tokens = stored("alice")
    assert tokens["refresh_token"] != held and tokens["refresh_token"] in fake.refresh
    assert held not in fake.refresh  # rotated: the old one is dead at Strava
    assert tokens["athlete_id"] == ATHLETE_ID


def test_refresh_token_login_refused(fake: FakeStrava) -> None:
    with pytest.raises(AuthRequiredError, match="login strava --athlete bob` again"):
        auth.refresh_token_login("bob", APP, "not-a-valid-token")


def test_every_request_goes_to_the_configured_hosts() -> None:
    settings = Settings(api_url="http://api.test/v9", oauth_url="http://auth.test")
    proto = RoutedApiV3(settings, RateBudget(), requests_session=__import__("requests").Session())
    assert proto.resolve_url("/athlete/activities") == "http://api.test/v9/athlete/activities"
    assert proto.resolve_url("https://www.strava.com/oauth/token") == "http://auth.test/oauth/token"
    assert proto.resolve_url("/oauth/deauthorize") == "http://auth.test/oauth/deauthorize"
    with pytest.raises(StravaError, match="outside the configured"):
        proto.resolve_url("https://www.strava.com/api/v3/athlete")
    client = StravaClient(APP, settings=settings)
    url = client.authorization_url("http://127.0.0.1:5000/callback", "s")
    assert url.startswith("http://auth.test/oauth/authorize?client_id=424242&")


def test_default_hosts_are_strava(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVENSTRIDE_STRAVA_API_URL", raising=False)
    monkeypatch.delenv("EVENSTRIDE_STRAVA_OAUTH_URL", raising=False)
    s = Settings.from_env()
    assert (s.api_url, s.oauth_url) == ("https://www.strava.com/api/v3", "https://www.strava.com")


# ------------------------------------------------------------------------------------ CLI


def run(tmp_path: Path, *args: str, input: str | None = None, env: dict | None = None) -> Any:
    return CliRunner().invoke(
        cli_root(), ["--home", str(tmp_path / "home"), *args], input=input, env=env
    )


def test_cli_login_never_prompts_without_a_terminal(fake: FakeStrava, tmp_path: Path) -> None:
    result = run(tmp_path, "login", "strava")
    assert result.exit_code == exitcodes.AUTH_NEEDED
    assert "--refresh-token -" in result.output
    result = run(tmp_path, "login", "strava", "--refresh-token", "-", input="abc\n")
    assert result.exit_code == exitcodes.AUTH_NEEDED
    assert "--client-id" in result.output  # no app stored: says what to run, no prompt
    assert fake.requests == []


def test_cli_login_refresh_token_from_stdin(fake: FakeStrava, tmp_path: Path) -> None:
    held = fake.issue_tokens()["refresh_token"]
    result = run(
        tmp_path, "login", "strava", "--athlete", "alice", "--client-id", str(CLIENT_ID),
        "--refresh-token", "-", input=held + "\n",
        env={"EVENSTRIDE_STRAVA_CLIENT_SECRET": CLIENT_SECRET},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Riina Runner" in result.output and str(ATHLETE_ID) in result.output
    assert stored("alice")["refresh_token"] in fake.refresh
    assert CLIENT_SECRET not in result.output and held not in result.output


def test_cli_login_in_a_terminal_prompts_for_the_app(
    fake: FakeStrava, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(strava_cmds, "_interactive", lambda: True)
    announce = browser(fake)
    real = auth.browser_login

    def driven(*args: Any, **kwargs: Any) -> Any:
        assert kwargs["open_browser"] is False
        return real(*args, **{**kwargs, "announce": announce})

    monkeypatch.setattr(auth, "browser_login", driven)
    result = run(
        tmp_path, "login", "strava", "--no-browser", input=f"{CLIENT_ID}\n{CLIENT_SECRET}\n"
    )
    assert result.exit_code == 0, result.output
    assert auth.load_app() == APP and stored()["athlete_id"] == ATHLETE_ID
    assert CLIENT_SECRET not in result.output


def test_cli_logout_forgets_and_revokes(fake: FakeStrava, tmp_path: Path) -> None:
    issued = login(fake)
    result = run(tmp_path, "logout", "strava", "--revoke")
    assert result.exit_code == 0, result.output
    assert "Revoked at Strava" in result.output and stored() is None
    assert fake.revoked == [issued["refresh_token"]]
    assert auth.load_app() == APP  # kept for the next login unless --forget-app
    result = run(tmp_path, "logout", "strava", "--forget-app")
    assert "No Strava login" not in result.output and auth.load_app() is None


def test_bad_app_credentials_are_a_config_error(tmp_path: Path, fake: FakeStrava) -> None:
    result = run(
        tmp_path, "login", "strava", "--client-id", "abc", "--client-secret", "x",
        "--refresh-token", "t",
    )  # fmt: skip
    assert result.exit_code == exitcodes.USAGE and "client id" in result.output


def test_wrong_client_secret_is_a_config_error(fake: FakeStrava) -> None:
    held = fake.issue_tokens()["refresh_token"]
    wrong = AppCredentials(CLIENT_ID, "f" * 40)
    with pytest.raises(StravaError, match="client id or secret") as info:
        auth.refresh_token_login("default", wrong, held)
    assert info.value.exit_code == exitcodes.USAGE
    assert auth.load_app() is None and stored() is None and held in fake.refresh
