"""`login|logout|sync garmin` end to end: real garminconnect, real keyring backend, fake network."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click
import keyring
import pytest
from click.testing import CliRunner
from fake_garmin import (
    DISPLAY_NAME,
    EMAIL,
    MFA_CODE,
    PASSWORD,
    FakeGarminConnect,
    fake_fixture,  # noqa: F401 - the `fake` fixture
    keyring_file_fixture,  # noqa: F401 - the `keyring_file` fixture
)

from evenstride.cli import garmin_cmds
from evenstride.connectors import secrets
from evenstride.connectors.garmin import auth
from evenstride.connectors.garmin.errors import (
    EXIT_AUTH,
    EXIT_NO_KEYRING,
    EXIT_OK,
    EXIT_RATE_LIMITED,
)
from evenstride.store import open_store


def _root() -> click.Group:
    """The same shape as evenstride.cli.main: `--home` in ctx.obj, then login/logout/sync."""

    @click.group()
    @click.option("--home", type=click.Path(path_type=Path), required=True)
    @click.pass_context
    def root(ctx: click.Context, home: Path) -> None:
        ctx.obj = {"home": home}

    for name, cmd in (
        ("login", garmin_cmds.login_garmin),
        ("logout", garmin_cmds.logout_garmin),
        ("sync", garmin_cmds.sync_garmin),
    ):
        group = click.Group(name)
        group.add_command(cmd)
        root.add_command(group)
    return root


@pytest.fixture
def run(tmp_path: Path) -> Any:
    home = tmp_path / "home"

    def invoke(*args: str, input: str | None = None) -> Any:
        return CliRunner().invoke(_root(), ["--home", str(home), *args], input=input)

    invoke.home = home
    return invoke


@pytest.fixture
def tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(garmin_cmds, "_interactive", lambda: True)


def _stored_tokens(athlete: str = "default") -> dict[str, Any] | None:
    text = keyring.get_password("evenstride", f"garmin/{athlete}/tokens")
    return json.loads(text) if text else None


def test_login_with_mfa_stores_tokens_not_password_then_logout(fake, keyring_file, run, tty):
    fake.mfa = True
    result = run("login", "garmin", input=f"{EMAIL}\n{PASSWORD}\n{MFA_CODE}\n")
    assert result.exit_code == EXIT_OK, result.output
    assert f"as {DISPLAY_NAME}" in result.output and "MFA code" in result.output
    tokens = _stored_tokens()
    assert tokens["di_token"] in fake.access_tokens and tokens["di_refresh_token"]
    assert fake.logins == 1
    assert keyring.get_password("evenstride", "garmin/default/password") is None
    assert keyring.get_password("evenstride", "garmin/default/email") is None

    out = run("logout", "garmin")
    assert out.exit_code == 0 and "tokens" in out.output
    assert _stored_tokens() is None
    assert "No Garmin login" in run("logout", "garmin").output


def test_login_wrong_mfa_code_fails_with_auth_exit(fake, keyring_file, run, tty):
    fake.mfa = True
    result = run("login", "garmin", input=f"{EMAIL}\n{PASSWORD}\n000000\n")
    assert result.exit_code == EXIT_AUTH
    assert _stored_tokens() is None


def test_login_save_password_per_athlete(fake, keyring_file, run, tty):
    result = run(
        "login", "garmin", "--athlete", "alice", "--save-password", input=f"{EMAIL}\n{PASSWORD}\n"
    )
    assert result.exit_code == EXIT_OK, result.output
    assert keyring.get_password("evenstride", "garmin/alice/password") == PASSWORD
    assert _stored_tokens("default") is None and _stored_tokens("alice")
    assert set(auth.forget("alice")) == {"tokens", "email", "password"}


def test_login_without_terminal_fails_at_once(fake, keyring_file, run):
    result = run("login", "garmin", input=f"{EMAIL}\n{PASSWORD}\n")
    assert result.exit_code == EXIT_AUTH
    assert "needs a terminal" in result.output and "--token-store" in result.output
    assert fake.log == []  # nothing was even sent


def test_import_token_store_file_and_folder(fake, keyring_file, run, tmp_path):
    folder = tmp_path / "garminconnect"
    folder.mkdir()
    (folder / "garmin_tokens.json").write_text(fake.tokens_json())
    result = run("login", "garmin", "--token-store", str(folder))
    assert result.exit_code == EXIT_OK, result.output
    assert _stored_tokens()["di_token"] == json.loads(fake.tokens_json())["di_token"]

    garth = tmp_path / "old"
    garth.mkdir()
    (garth / "oauth1_token.json").write_text("{}")
    (garth / "oauth2_token.json").write_text("{}")
    old = run("login", "garmin", "--athlete", "bob", "--token-store", str(garth))
    assert old.exit_code == EXIT_AUTH and "garth" in old.output


def test_sync_without_login_fails_fast_with_the_command(fake, keyring_file, run):
    result = run("sync", "garmin", "--athlete", "carol")
    assert result.exit_code == EXIT_AUTH
    assert "evenstride login garmin --athlete carol" in result.output
    assert fake.log == []
    as_json = run("sync", "garmin", "--json")
    assert json.loads(as_json.output)["exit_code"] == EXIT_AUTH


def test_sync_saves_refreshed_tokens_and_prints_summary(fake, keyring_file, run):
    fake.add_runs(25)
    auth.save_tokens("default", fake.tokens_json())
    fake.expire_access_tokens()  # the first call gets 401 -> refresh -> replay
    result = run("sync", "garmin", "--since", "2023-12-01", "--json")
    assert result.exit_code == EXIT_OK, result.output
    summary = json.loads(result.output)
    assert summary["imported"] == len(fake.running_ids())
    assert fake.refreshes == 1
    assert _stored_tokens()["di_token"] in fake.access_tokens  # written back
    assert _stored_tokens()["di_refresh_token"] == fake.refresh_token

    text = run("sync", "garmin")
    assert text.exit_code == EXIT_OK
    assert "0 imported" in text.output.splitlines()[-1]


def test_refresh_is_saved_even_when_the_sync_stops_on_429(fake, keyring_file, run):
    fake.add_runs(10)
    auth.save_tokens("default", fake.tokens_json())
    fake.expire_access_tokens()
    fake.fail("/download-service", 429, times=1, headers={"Retry-After": "3600"})
    result = run("sync", "garmin", "--since", "2023-12-01")
    assert result.exit_code == EXIT_RATE_LIMITED
    assert "retry after" in result.output and "3600 s" in result.output
    assert _stored_tokens()["di_refresh_token"] == fake.refresh_token


def test_saved_password_relogs_in_when_tokens_are_refused(fake, keyring_file, run, tty):
    fake.add_runs(5)
    assert run("login", "garmin", "--save-password", input=f"{EMAIL}\n{PASSWORD}\n").exit_code == 0
    fake.revoke_all()
    result = run("sync", "garmin", "--since", "2023-12-01")
    assert result.exit_code == EXIT_OK, result.output
    assert fake.logins == 2
    assert _stored_tokens()["di_refresh_token"] == fake.refresh_token


def test_refused_tokens_without_saved_password_say_what_to_run(fake, keyring_file, run):
    auth.save_tokens("default", fake.tokens_json())
    fake.revoke_all()
    result = run("sync", "garmin")
    assert result.exit_code == EXIT_AUTH
    assert "evenstride login garmin" in result.output


def test_no_keyring_backend_is_a_clear_configuration_error(fake, run, tty, monkeypatch):
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        for args in (("sync", "garmin"), ("logout", "garmin"), ("login", "garmin")):
            result = run(*args, input=f"{EMAIL}\n{PASSWORD}\n")
            assert result.exit_code == EXIT_NO_KEYRING, (args, result.output)
            assert "PYTHON_KEYRING_BACKEND" in result.output
        with pytest.raises(secrets.KeyringUnavailableError, match="keyrings.alt"):
            secrets.get_secret("garmin", "default", "tokens")
    finally:
        keyring.set_keyring(previous)
    assert fake.logins == 0  # no password login was wasted


def test_keyring_round_trip_with_a_real_backend(keyring_file):
    secrets.set_secret("garmin", "x", "tokens", '{"di_token": "abc"}')
    assert secrets.get_secret("garmin", "x", "tokens") == '{"di_token": "abc"}'
    assert "garmin_2fx_2ftokens" in Path(keyring_file.file_path).read_text()  # really on disk
    assert secrets.delete_secret("garmin", "x", "tokens") is True
    assert secrets.delete_secret("garmin", "x", "tokens") is False
    assert secrets.get_secret("garmin", "x", "tokens") is None
    with pytest.raises(ValueError):
        secrets.secret_key("garmin", "a/b", "tokens")


def test_tokens_and_password_never_leak(fake, keyring_file, run, tty, caplog, tmp_path):
    """Grep every output, the database, the archive and the logs for the secrets."""
    caplog.set_level(logging.DEBUG, logger="evenstride")
    caplog.set_level(logging.INFO)
    fake.add_runs(12)
    outputs = [run("login", "garmin", input=f"{EMAIL}\n{PASSWORD}\n").output]
    fake.expire_access_tokens()
    fake.fail("/download-service", 500, times=1)
    outputs.append(run("sync", "garmin", "--since", "2023-12-01", "--json").output)
    fake.revoke_all()
    outputs.append(run("sync", "garmin").output)
    outputs.append(run("sync", "garmin", "--json").output)
    assert len(fake.issued) >= 4
    haystacks = {"cli output": "\n".join(outputs), "logs": caplog.text}
    for path in run.home.rglob("*"):
        if path.is_file():
            haystacks[str(path)] = path.read_bytes().decode("latin-1")
    with open_store(run.home) as store:
        for sha in store.archive.iter():  # every archived payload as it came (packed, zstd)
            haystacks[f"raw file {sha}"] = store.archive.get(sha).decode("latin-1")
        haystacks["sync state"] = json.dumps(
            [store.get_sync_state("default", "garmin", "cursor")]
            + [a["extra"] for a in store.list_activities("default")],
            default=str,
        )
    for secret in [*fake.issued, PASSWORD]:
        for where, text in haystacks.items():
            assert secret not in text, f"{secret[:12]}… leaked into {where}"


def test_fake_server_requires_no_real_network(fake: FakeGarminConnect) -> None:
    from evenstride.connectors.garmin.client import GarminClient

    client = GarminClient()
    inner = client._api.client
    for attr in ("_connectapi", "_connect", "_sso", "_di_token_url", "_ios_service_url"):
        assert getattr(inner, attr).startswith(fake.url), attr
