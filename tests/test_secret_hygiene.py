"""Secret hygiene: no token, password or client secret in logs, the database, reports, exception
messages or any command's output -- with every logger at DEBUG.

The fake servers issue the secrets (Garmin: ``FAKE-ACCESS-*``/``FAKE-REFRESH-*`` tokens, rotated
on refresh, plus the account password; Strava: the API application's client secret and the
40-hex-digit access/refresh tokens, rotated on refresh); a login with a saved password and
forced refreshes make every kind flow through the code. Then everything evenstride wrote or
printed is searched for every one of them: stdout and stderr of each command (``--json``
everywhere it exists, reports and the audit in all formats), a DEBUG capture of the
``evenstride``, ``urllib3``, ``requests``, ``garminconnect``, ``stravalib`` and ``curl_cffi``
loggers, the nightly rotating log, the SQLite file (raw bytes of the db, -wal, -shm) and every
text column of every table, every other file under --home (raw archive files decompressed),
every archived payload read back through the archive (packed ones included), and the messages (``str``, ``repr``, the chained causes) of the exceptions of forced failures.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard
from fake_garmin import (
    EMAIL,
    PASSWORD,
    FakeGarminConnect,
    fake_fixture,  # noqa: F401 - the `fake` fixture (fake Garmin)
    keyring_file_fixture,  # noqa: F401 - the `keyring_file` fixture
)
from fake_strava import CLIENT_SECRET, login
from test_fault_matrix import (
    NOW,
    SEASON,
    FaultyStrava,
    Outcome,
    _garmin_runs,
    _strava_runs,
    break_keyring,
    run_cli,
    short_waits,
    strava,  # noqa: F401 - the `strava` fixture (FaultyStrava)
)

from evenstride.connectors.garmin import auth as garmin_auth
from evenstride.store import DB_NAME, RawArchive, open_store

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="as test_fault_matrix")
LOGGERS = ("evenstride", "urllib3", "requests", "garminconnect", "stravalib", "curl_cffi")
TODAY = dt.date.today().isoformat()


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """Every record of the listed loggers at DEBUG, formatted with tracebacks."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    saved = {}
    for name in LOGGERS:
        lg = logging.getLogger(name)
        saved[name] = lg.level
        lg.setLevel(logging.DEBUG)
        lg.addHandler(handler)
    yield buf
    for name in LOGGERS:
        logging.getLogger(name).removeHandler(handler)
        logging.getLogger(name).setLevel(saved[name])


def _texts_of_database(db: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for suffix in ("", "-wal", "-shm"):
        f = db.with_name(db.name + suffix)
        if f.exists():
            out[f"bytes of {f.name}"] = f.read_bytes().decode("latin-1")
    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
            for col in cols:
                values = conn.execute(f'SELECT "{col}" FROM "{table}"').fetchall()
                texts = [str(v[0]) for v in values if isinstance(v[0], str | bytes)]
                out[f"column {table}.{col}"] = "\n".join(texts)
    finally:
        conn.close()
    return out


def _texts_of_home(home: Path) -> dict[str, str]:
    out = _texts_of_database(home / DB_NAME)
    for path in home.rglob("*"):
        if not path.is_file() or path.name.startswith(DB_NAME):
            continue
        data = path.read_bytes()
        if path.suffix == ".zst":
            data = zstandard.ZstdDecompressor().decompress(data)
        out[str(path.relative_to(home))] = data.decode("latin-1")
    archive = RawArchive(home / "raw")  # every archived payload as it came, packed ones too
    shas = list(archive.iter())
    assert shas, "nothing archived: the archive was not searched"
    for sha in shas:
        out[f"raw file {sha}"] = archive.get(sha).decode("latin-1")
    return out


def _exception_texts(exc: BaseException) -> str:
    parts = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        parts += [str(cur), repr(cur), repr(getattr(cur, "args", ""))]
        cur = cur.__cause__ or cur.__context__
    return "\n".join(parts)


def _secrets(fake: FakeGarminConnect, strava_fake: FaultyStrava) -> set[str]:
    found = {*fake.issued, PASSWORD, CLIENT_SECRET, *strava_fake.secrets_seen()}
    return {s for s in found if s and len(s) >= 8}


def assert_no_secret(secrets: set[str], haystacks: dict[str, str]) -> int:
    """Every secret absent from every haystack; returns how many (secret, place) pairs passed."""
    checked = 0
    for where, text in haystacks.items():
        for secret in secrets:
            assert secret not in text, f"{secret[:10]}... leaked into {where}"
            checked += 1
    return checked


def test_no_secret_anywhere_after_a_full_loop_with_failures(
    fake: FakeGarminConnect,
    strava: FaultyStrava,  # noqa: F811
    keyring_file: Any,
    tmp_path: Path,
    debug_log: io.StringIO,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short_waits(monkeypatch)
    home = tmp_path / "home"
    outputs: dict[str, Outcome] = {}

    def cli(name: str, *args: str, code: int | None = 0) -> Outcome:
        result = run_cli(capsys, home, *args)
        outputs[name] = result
        if code is not None:
            assert result.code == code, (name, result.out, result.err)
        return result

    # logins: Garmin with a saved password (the real SSO flow against the fake), Strava app+tokens
    garmin_auth.password_login("default", EMAIL, PASSWORD, None, save_password=True)
    _garmin_runs(fake, 6)
    _strava_runs(strava, 8000, 3)
    login(strava, "default", expires_in=60)  # refreshed (rotated) at the first call
    fake.expire_access_tokens()  # the Garmin sync refreshes too
    with open_store(home) as store:
        store.update_athlete_profile("default", {"sources": ["garmin", "strava"]})

    cli("import", "import", "--json", str(SEASON))
    cli("sync garmin", "sync", "garmin", "--json")
    cli("sync strava", "sync", "strava", "--json")
    cli("activities json", "activities", "--json")
    cli("activities csv", "activities", "--csv")
    cli("athlete list", "athlete", "list", "--json")
    cli("plan", "plan", "--json", "--weeks", "1")
    cli("push dry-run", "push", "garmin", "--json", "--dry-run", "--weeks", "1")
    cli("push", "push", "garmin", "--json", "--weeks", "1")
    cli("report json", "report", "--json")
    cli("report csv", "report", "--csv")
    cli("report html", "report", "--html", str(home / "reports" / "report.html"))
    for fmt in ("table", "csv", "json"):
        cli(f"audit {fmt}", "audit", "--format", fmt)
    cli("audit html", "audit", "--format", "html", "--out", str(home / "audit" / "audit.html"))
    cli("connectors", "connectors")
    fake.expire_access_tokens()
    cli("nightly", "nightly", "--weeks", "1")

    # forced failures: their messages, and the exceptions behind them
    fake.fail("/download-service", 503, times=50)
    fake.add_activity(NOW - dt.timedelta(hours=1))
    cli("sync garmin 503", "sync", "garmin", "--json", code=5)
    fake.faults.clear()
    fake.fail("/workout-service/workout", 429, method="POST", times=50)
    cli("push 429", "push", "garmin", "--json", "--weeks", "2", code=None)
    fake.faults.clear()
    strava.fault("503", "/api/v3/athlete/activities")
    cli("sync strava 503", "sync", "strava", "--json", code=5)
    strava.faults.clear()
    fake.revoke_all()  # the saved password logs in again (unattended: the password flows)
    logins = fake.logins
    cli("sync garmin revoked", "sync", "garmin", "--json", code=0)
    assert fake.logins == logins + 1
    fake.revoke_all()
    garmin_auth.forget("default")
    garmin_auth.save_tokens("default", '{"di_token": "x", "di_refresh_token": "y", '
                            '"di_client_id": "GARMIN_CONNECT_MOBILE_ANDROID_DI"}')  # fmt: skip
    cli("push revoked", "push", "garmin", "--json", code=3)
    cli("nightly revoked", "nightly", "--weeks", "1", code=1)
    broken = break_keyring(keyring_file, get=True, set_=True)
    cli("sync strava keyring", "sync", "strava", "--json", code=2)
    cli("sync garmin keyring", "sync", "garmin", "--json", code=2)
    assert broken.calls["get"] >= 2

    exceptions: dict[str, str] = {}
    import keyring

    from evenstride.connectors.garmin.client import GarminClient
    from evenstride.connectors.garmin.errors import GarminError
    from evenstride.connectors.strava import auth as strava_auth
    from evenstride.connectors.strava.errors import StravaError

    keyring.set_keyring(keyring_file)
    client = GarminClient()
    client.load_tokens(keyring_file.get_password("evenstride", "garmin/default/tokens"))
    with pytest.raises(GarminError) as info:
        client.activities_page(0, 5)  # revoked: refused
    exceptions["garmin refused"] = _exception_texts(info.value)
    strava.refresh.clear()  # every Strava refresh token is dead now
    strava.access.clear()
    with pytest.raises(StravaError) as sinfo:
        strava_auth.open_client("default").athlete()
    exceptions["strava refused"] = _exception_texts(sinfo.value)

    secrets = _secrets(fake, strava)
    assert len(fake.issued) >= 8 and len(strava.secrets_seen()) >= 5  # refreshes happened
    haystacks: dict[str, str] = {}
    for name, result in outputs.items():
        haystacks[f"stdout of {name}"] = result.out
        haystacks[f"stderr of {name}"] = result.err
    haystacks["DEBUG logs"] = debug_log.getvalue()
    haystacks.update({f"exception {k}": v for k, v in exceptions.items()})
    haystacks.update(_texts_of_home(home))
    assert "nightly start" in haystacks["logs/nightly.log"]
    assert any(k.startswith("column activities.") for k in haystacks)
    assert "DEBUG" in haystacks["DEBUG logs"] and "urllib3" in haystacks["DEBUG logs"]
    assert (home / "reports" / "report.html").exists() and (home / "audit" / "audit.html").exists()
    checked = assert_no_secret(secrets, haystacks)
    print(f"secret hygiene: {len(secrets)} secrets x {len(haystacks)} places = {checked} checks")
