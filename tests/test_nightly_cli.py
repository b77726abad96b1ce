"""`evenstride nightly` and `evenstride cron`: failures stay per athlete, one run at a time,
private logs without secrets, dry runs that write nothing to Garmin."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from fake_garmin import (
    CLIENT_ID,
    fake_fixture,  # noqa: F401 - the `fake` fixture
    keyring_file_fixture,  # noqa: F401 - the `keyring_file` fixture
)

from evenstride import nightly
from evenstride.cli.cron_cmd import cron_cmd
from evenstride.cli.nightly_cmd import nightly_cmd
from evenstride.connectors.garmin import auth
from evenstride.store import open_store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="flock, SIGKILL, file modes")

DEAD_TOKENS = json.dumps(
    {"di_token": "DEAD-ACCESS", "di_refresh_token": "DEAD-REFRESH", "di_client_id": CLIENT_ID}
)
WRITES = ("POST", "PUT", "DELETE")


@click.group()
@click.option("--home", type=click.Path(path_type=Path), required=True)
@click.pass_context
def cli(ctx: click.Context, home: Path) -> None:
    ctx.obj = {"home": home}


cli.add_command(nightly_cmd)
cli.add_command(cron_cmd)


def invoke(home: Path, *args: str):
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


def recent_runs(fake, n: int = 4) -> list[int]:
    """Runs inside the first sync's window (it looks back a year from now)."""
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=6)
    return [fake.add_activity(start + dt.timedelta(hours=30 * i)) for i in range(n)]


def roster(home: Path, **profiles: dict) -> None:
    with open_store(home) as store:
        for name, profile in profiles.items():
            store.update_athlete_profile(name, profile)


def remote_writes(fake) -> list[str]:
    """Requests that change Garmin (the token endpoint only exchanges tokens)."""
    return [
        f"{r.method} {r.path}"
        for r in fake.log
        if r.method in WRITES and not r.path.startswith("/di-oauth2-service")
    ]


def test_one_athlete_with_revoked_tokens_does_not_stop_the_other(
    fake, keyring_file, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    ids = recent_runs(fake)
    auth.save_tokens("ana", DEAD_TOKENS)  # refused and not refreshable: like a revoked login
    auth.save_tokens("ben", fake.tokens_json())
    roster(home, ana={"sources": ["garmin"]}, ben={})  # ben: sources from stored logins

    result = invoke(home, "nightly")

    assert result.exit_code == nightly.EXIT_SOME_FAILED, result.output
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["ana", "ben"]  # roster order, ana first
    assert "sync garmin FAILED" in lines[0] and "login garmin --athlete ana" in lines[0]
    assert "push skipped (Garmin login needed)" in lines[0]
    assert lines[1].startswith(f"ben: sync garmin +{len(ids)} runs; trend ")
    assert "; plan week 1 phase " in lines[1] and "; push " in lines[1] and "created" in lines[1]
    assert "1 of 2 athletes failed: ana" in result.stderr
    with open_store(home) as store:
        assert {a["source_id"] for a in store.list_activities("ben")} == {str(i) for i in ids}
        assert store.list_activities("ana") == []
        assert store.get_sync_state("ana", "nightly", "status") == "failed: sync garmin"
        assert store.get_sync_state("ben", "nightly", "status") == "ok"
        assert store.get_sync_state("ben", "garmin", nightly.SYNCED_AT_KEY)
    assert (home / "plans" / "ben" / "latest.json").exists()
    assert fake.workouts and fake.schedules  # ben's plan reached the (fake) Garmin calendar


def test_any_exception_in_one_athlete_is_contained(
    fake, keyring_file, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    recent_runs(fake, 2)
    auth.save_tokens("ana", fake.tokens_json())
    auth.save_tokens("ben", fake.tokens_json())
    roster(home, ana={}, ben={})
    real = nightly.sync_source

    def flaky(store, source, athlete):
        if athlete == "ana":
            raise RuntimeError("disk on fire; token=abcdef123456")
        return real(store, source, athlete)

    monkeypatch.setattr(nightly, "sync_source", flaky)
    result = invoke(home, "nightly", "--dry-run")
    assert result.exit_code == 1
    ana, ben = result.stdout.splitlines()
    assert "sync garmin FAILED (RuntimeError: disk on fire; token=[REDACTED])" in ana
    assert "abcdef123456" not in result.output
    assert ben.startswith("ben: sync garmin +2 runs")


def test_dry_run_sends_no_writes_to_garmin(fake, keyring_file, tmp_path: Path) -> None:
    home = tmp_path / "home"
    recent_runs(fake)
    auth.save_tokens("default", fake.tokens_json())

    result = invoke(home, "nightly", "--dry-run")

    assert result.exit_code == 0, result.output
    assert "push dry-run: would create " in result.stdout
    assert remote_writes(fake) == []
    assert not fake.workouts and not fake.schedules
    assert [r for r in fake.log if r.path.startswith("/download-service")]  # it did sync


def _holder(home: Path) -> subprocess.Popen:
    """A separate process that takes the lock and sleeps (until the test kills it)."""
    code = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from evenstride.nightly import NightlyLock
        lock = NightlyLock(Path(sys.argv[1]))
        lock.acquire()
        print("locked", flush=True)
        time.sleep(120)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(home)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_second_run_is_refused_and_a_killed_runs_lock_is_cleared(
    keyring_file, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    holder = _holder(home)
    try:
        refused = invoke(home, "nightly")
        assert refused.exit_code == nightly.EXIT_LOCKED == 75
        assert "another nightly run is in progress" in refused.stderr
        assert f"pid {holder.pid} on {socket.gethostname()}" in refused.stderr
        assert not (home / "logs").exists()  # refused before doing anything
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (home / nightly.LOCK_NAME).exists()  # the killed run left its lock file behind

    result = invoke(home, "nightly")

    assert result.exit_code == 0, result.output
    assert f"cleared a stale lock left by pid {holder.pid}" in result.stderr
    assert result.stdout.startswith("default: sync none")
    assert not (home / nightly.LOCK_NAME).exists()  # released at the end
    assert "cleared a stale lock" in nightly.log_path(home).read_text()


def test_without_flock_a_dead_pid_on_this_host_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Network file systems without flock: O_EXCL creation plus a pid check."""

    def no_flock(fd: int, op: int) -> None:
        raise OSError(37, "No locks available")  # ENOLCK

    monkeypatch.setattr(nightly.fcntl, "flock", no_flock)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = tmp_path / nightly.LOCK_NAME
    host = socket.gethostname()
    path.write_text(json.dumps({"pid": dead.pid, "host": host, "started": "then"}))
    lock = nightly.NightlyLock(tmp_path)
    assert lock.acquire() == {"pid": dead.pid, "host": host, "started": "then"}
    assert lock.mode == "exclusive"
    assert json.loads(path.read_text())["pid"] == os.getpid()
    with pytest.raises(nightly.LockHeldError, match=f"pid {os.getpid()}"):
        nightly.NightlyLock(tmp_path).acquire()  # a live pid is never stale
    lock.release()
    assert not path.exists()
    path.write_text(json.dumps({"pid": dead.pid, "host": "elsewhere", "started": "then"}))
    with pytest.raises(nightly.LockHeldError):  # another host's pid cannot be checked
        nightly.NightlyLock(tmp_path).acquire()


def test_log_is_private_rotating_and_free_of_tokens(fake, keyring_file, tmp_path: Path) -> None:
    home = tmp_path / "home"
    recent_runs(fake, 2)
    auth.save_tokens("default", fake.tokens_json())
    fake.expire_access_tokens()  # forces a refresh: new tokens flow through the run
    result = invoke(home, "nightly")
    assert result.exit_code == 0, result.output
    assert fake.refreshes == 1
    path = nightly.log_path(home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert "nightly start" in text and "summary: default: sync garmin +2 runs" in text
    for token in [*fake.issued, "di_token", "refresh_token"]:
        assert token not in text
        assert token not in result.output


def test_redacting_filter_masks_token_like_text(tmp_path: Path) -> None:
    close = nightly.setup_logging(tmp_path)
    logger = logging.getLogger("evenstride.test")
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    secrets = {
        "Authorization: Bearer FAKE-ACCESS-0001-12345678": "FAKE-ACCESS-0001-12345678",
        '{"di_token": "abc.def-ghi", "x": 1}': "abc.def-ghi",
        "refresh_token=r3fr3sh-t0k3n&client_id=5": "r3fr3sh-t0k3n",
        "password: hunter2hunter2": "hunter2hunter2",
        f"jwt {jwt} seen": jwt,
        "GET /oauth/callback?code=s3cr3tc0de&state=x": "s3cr3tc0de",
        "opaque aB3dE5fG7hJ9kL1mN3pQ5rS7tU9 here": "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9",
    }
    try:
        for message in secrets:
            logger.warning("%s", message)
        try:
            raise ValueError("client_secret=topsecretvalue")
        except ValueError:
            logger.exception("boom")
        logger.info("sha %s stays", "ab" * 32)
    finally:
        close()
    text = nightly.log_path(tmp_path).read_text()
    for secret in [*secrets.values(), "topsecretvalue"]:
        assert secret not in text
    assert text.count("[REDACTED]") >= len(secrets) + 1
    assert "ab" * 32 in text  # hex digests (activity hashes) are not token-like
    assert "Traceback" in text and "ValueError" in text


def test_unusable_keyring_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        result = invoke(tmp_path / "home", "nightly")
    finally:
        keyring.set_keyring(previous)
    assert result.exit_code == nightly.EXIT_CONFIG == 2
    assert "PYTHON_KEYRING_BACKEND" in result.stderr
    assert not (tmp_path / "home" / nightly.LOCK_NAME).exists()


def test_unknown_athlete_is_a_configuration_error(keyring_file, tmp_path: Path) -> None:
    result = invoke(tmp_path / "home", "nightly", "--athlete", "nobody")
    assert result.exit_code == 2 and "no athlete named 'nobody'" in result.stderr


def test_help_documents_the_exit_codes() -> None:
    text = CliRunner().invoke(nightly_cmd, ["--help"]).output
    for code in ("0 every athlete", "1 some athletes failed", "2 configuration", "75 another"):
        assert code in " ".join(text.split())
    assert "Exit codes" in (nightly.__doc__ or "")


def test_cron_prints_crontab_and_systemd_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "my home"
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    fake_exe = tmp_path / "bin" / "evenstride"
    fake_exe.parent.mkdir()
    fake_exe.write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "argv", [str(fake_exe), "cron"])

    result = invoke(home, "cron", "--at", "04:05")

    assert result.exit_code == 0, result.output
    out = result.output
    cron = next(line for line in out.splitlines() if line.startswith("5 4 * * * "))
    assert f"EVENSTRIDE_HOME='{home}'" in cron
    assert "PYTHON_KEYRING_BACKEND=keyrings.alt.file.PlaintextKeyring" in cron
    assert f"{fake_exe} nightly >> '{home}/logs/cron.log' 2>&1" in cron
    assert "flock" not in cron
    assert f'ExecStart="{fake_exe}" "nightly"' in out
    assert f'Environment="EVENSTRIDE_HOME={home}"' in out
    assert "OnCalendar=*-*-* 04:05:00" in out and "[Timer]" in out
    assert "systemctl --user enable --now evenstride-nightly.timer" in out
    assert (home / "logs").is_dir()  # the cron line's `>>` needs the folder


def test_cron_rejects_a_bad_time(tmp_path: Path) -> None:
    assert invoke(tmp_path, "cron", "--at", "25:00").exit_code == 2


def test_rotated_logs_stay_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nightly, "LOG_MAX_BYTES", 300)
    close = nightly.setup_logging(tmp_path)
    try:
        for i in range(40):
            logging.getLogger("evenstride.nightly").info("line %d of a long night", i)
    finally:
        close()
    files = sorted(nightly.log_path(tmp_path).parent.iterdir())
    assert len(files) == 1 + nightly.LOG_BACKUPS  # nightly.log + .1 ... .5, older ones dropped
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
