"""No secret (client secret, access/refresh tokens, authorization codes) ever reaches logs,
the database, the archive, command output, --json or exception messages."""

from __future__ import annotations

import datetime as dt
import gzip
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fake_strava import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeStrava,
    cli_root,
    login,
    strava_fake_fixture,  # noqa: F401 - the `fake` fixture
    strava_keyring_fixture,  # noqa: F401 - the `strava_keyring` fixture
)
from test_strava_auth import browser

from evenstride.cli import strava_cmds
from evenstride.connectors.strava import auth
from evenstride.connectors.strava.client import AppCredentials, Tokens
from evenstride.store import open_store

pytestmark = pytest.mark.usefixtures("strava_keyring")


def test_no_secret_leaks_anywhere(
    fake: FakeStrava,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # everything: stravalib, urllib3, ours
    home = tmp_path / "home"
    texts: list[str] = []

    def cli(*args: str, input: str | None = None) -> Any:
        result = CliRunner().invoke(cli_root(), ["--home", str(home), *args], input=input)
        texts.extend([result.output, result.stdout, str(result.exception or "")])
        return result

    # 1. browser login in a "terminal", app credentials typed at the prompts
    monkeypatch.setattr(strava_cmds, "_interactive", lambda: True)
    real = auth.browser_login
    monkeypatch.setattr(
        auth, "browser_login", lambda *a, **k: real(*a, **{**k, "announce": browser(fake)})
    )
    assert (
        cli("login", "strava", "--no-browser", input=f"{CLIENT_ID}\n{CLIENT_SECRET}\n").exit_code
        == 0
    )
    monkeypatch.setattr(strava_cmds, "_interactive", lambda: False)
    # 2. syncs: refresh ahead of expiry, a 401 + replay, a manual activity, then a 429
    login(fake, expires_in=10)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for i in range(3):
        fake.add_run(50 + i, now - dt.timedelta(days=3 - i))
    fake.add_run(60, now - dt.timedelta(hours=5), manual=True)
    assert cli("sync", "strava", "--json").exit_code == 0
    fake.access.clear()  # every access token revoked: 401, refresh, replay
    fake.add_run(61, now - dt.timedelta(hours=1))
    assert cli("sync", "strava").exit_code == 0
    fake.add_run(62, now - dt.timedelta(minutes=30))
    fake.usage["read"] = [500, 500]
    assert cli("sync", "strava", "--json").exit_code == 4
    fake.usage["read"] = [0, 0]
    # 3. refused refresh token (exit 3), refresh-token login, a wrong code
    fake.refresh.clear()
    fake.access.clear()
    assert cli("sync", "strava", "--json").exit_code == 3
    held = fake.issue_tokens()["refresh_token"]
    assert cli("login", "strava", "--refresh-token", "-", input=held + "\n").exit_code == 0
    cli("login", "strava", "--refresh-token", "-", input="0123456789abcdef\n")
    assert cli("logout", "strava", "--revoke").exit_code == 0
    # exception messages
    try:
        auth.refresh_token_login("x", AppCredentials(CLIENT_ID, CLIENT_SECRET), held)
    except Exception as e:  # noqa: BLE001
        texts.append(f"{e!r} {e}")
    texts.append(repr(Tokens("AT-SECRET", "RT-SECRET", 1)) + repr(AppCredentials(1, "APPSECRET")))
    assert "SECRET" not in texts[-1]

    texts.append(caplog.text)
    texts.extend(r.getMessage() for r in caplog.records)
    blobs = [p.read_bytes() for p in home.rglob("*") if p.is_file()]
    with open_store(home) as store:
        for sha in store.archive.iter():
            blobs.append(store.archive.get(sha))
        assert store.list_activities("default")
    haystack = "\n".join(texts).encode() + b"\n".join(blobs)
    for blob in blobs:  # compressed archive files, in case
        if blob[:2] == b"\x1f\x8b":
            haystack += gzip.decompress(blob)
    secrets_seen = fake.secrets_seen() | {held}
    assert len(secrets_seen) > 10 and CLIENT_SECRET in secrets_seen
    leaked = [s for s in secrets_seen if s and s.encode() in haystack]
    assert leaked == []
