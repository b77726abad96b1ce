"""Fault matrix: `sync garmin`, `sync strava`, `push garmin` and `nightly` under injected faults.

Every cell is one (operation, fault, step), a pytest id ``<operation>|<fault>@<step>``; count them
with ``pytest tests/test_fault_matrix.py --collect-only -q``. The commands run in-process through
the console entry point ``evenstride.cli.main.main`` (exactly what the ``evenstride`` script
runs), with the root logger's handlers removed so stderr is what a terminal would show.

Faults are injected below our code only:

* network: the stateful fake servers (tests/fake_garmin.py; tests/fake_strava.py plus drop/delay
  faults added by `FaultyStrava` here): HTTP 503, HTTP 429 (+Retry-After), the connection closed
  without an answer ("reset"), an answer slower than the client timeout ("timeout"); ``after=N``
  lets the first N matching requests through, so the fault lands half-way;
* payload: a download cut short ("truncated-zip"), a zip whose data fails its CRC ("corrupt-zip");
* OS: a full disk (`FullDisk`: every write under --home raises ``OSError(ENOSPC)`` at the
  Python/OS boundary -- ``io.open``/``os.fdopen`` file writes, ``os.write``, ``os.fsync`` -- and
  SQLite cannot grow the database file, so it answers SQLITE_FULL "database or disk is full",
  the error it gives on a full disk); "db-full" is the SQLite half alone. No tmpfs is used, so
  the tests need no privileges. A database locked by ANOTHER PROCESS (a real sqlite3 connection
  in a subprocess holding ``BEGIN EXCLUSIVE``) with ``EVENSTRIDE_DB_BUSY_TIMEOUT_S=0.3``;
* keyring: a real ``keyring.backend.KeyringBackend`` whose get/set raise ``KeyringError``,
  installed with ``keyring.set_keyring``.

Each cell asserts (1) the documented exit code (cli/exitcodes.py), (2) the message: no
traceback on stderr, every stderr line one of ours (``error:``/``evenstride:``/``failed:``/
``warning:``/``note:``), exactly one line naming the cause, (3) nothing lost: what was stored is
an unbroken oldest-first prefix of the runs, at least everything fetched before the fault, every
stored run's raw file is in the archive and verifies, no temporary files are left, the local push
records only claim workouts Garmin has, and (4) nothing duplicated: after the fault is cleared a
re-run exits 0, every run is stored exactly once, runs stored before the fault are not
downloaded again, and the Garmin calendar holds exactly one evenstride workout per planned day,
each scheduled once, with no orphan.

Matrix (exit code expected; R = reset, T = timeout; 81 cells: sync garmin 19, sync strava 18,
push garmin 24, nightly 20)::

    operation    step             503  429  R  T  | other faults at that step
    sync garmin  listing           5    4   5  5  |
                 download          5    4   5  5  | truncated-zip 1, corrupt-zip 1,
                                                  |   disk-full 6, db-full 6, db-locked 6
                 token refresh     5    4   5  -  | keyring set raises 2 (then login 3)
                 start            -    -   -  -  | db-locked 6, keyring get raises 2
    sync strava  listing           5    4   5  5  |
                 streams           5    4   5  5  | disk-full 6, db-full 6, db-locked 6
                 token refresh     5    4   5  5  | keyring set raises 2
                 start            -    -   -  -  | db-locked 6, keyring get raises 2
    push garmin  token refresh     5    4   5  -  |
                 workout list      5    4   5  5  |
                 calendar          5    4   5  -  |
                 upload            5    4   5  5  |
                 schedule          5    4   5  5  |
                 delete            5    4   5  -  |
                 start            -    -   -  -  | disk-full 6, db-locked 6, keyring raises 2
    nightly      (one athlete of two fails: exit 1; the other completes)
                 garmin listing 503 . download 429/R/T . refresh 429 . upload 503/R .
                 schedule 429 . workout list T . truncated-zip . corrupt-zip
                 strava listing 503 . streams 429/R . refresh 429
                 disk-full 1 . db-full 1 . db-locked mid-run 1 . db-locked at start 6 .
                 keyring raises 1

Not in the matrix: a timeout at Garmin's token refresh (garminconnect posts the refresh with its
own fixed 30 s timeout, outside ours), at Garmin's calendar read (same path as the workout list)
and at a delete (the late answer still deletes: the push's re-read then finds nothing left to do
and exits 0 or 5 depending on timing, so the cell would not be deterministic).
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as dt
import errno
import io
import json
import logging
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import keyring
import keyring.errors
import pytest
from click.testing import CliRunner
from fake_garmin import (
    FakeGarminConnect,
    Fault,
    fake_fixture,  # noqa: F401 - the `fake` fixture (fake Garmin)
    keyring_file_fixture,  # noqa: F401 - the `keyring_file` fixture
    next_fault,
)
from fake_strava import ATHLETE_ID, FakeStrava, login
from keyring.backend import KeyringBackend

from evenstride.connectors.garmin import auth as garmin_auth
from evenstride.planner import MARKER
from evenstride.store import DB_NAME, open_store

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="/proc/self/fd, fork, flock")

SEASON = Path(__file__).resolve().parents[1] / "fixtures" / "synthetic" / "season"
PUSH_TODAY = "2024-04-15"
TIMEOUT_S = 0.2  # the clients' timeout in these tests
DELAY_S = 0.6  # a "timeout" fault answers after this (Strava: carried out late, as Strava
# does; Garmin: dropped undone, so a late write cannot race the push's recovery on a slow machine)
BUSY_S = 0.3  # EVENSTRIDE_DB_BUSY_TIMEOUT_S
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
OUR_PREFIXES = ("error:", "evenstride:", "failed: activity", "warning:", "note:")


# --------------------------------------------------------------------------- running the CLI


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def run_cli(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> Outcome:
    """`evenstride --home HOME ARGS...` through the console entry point, in this process.

    The root logger's handlers (pytest's capture) are removed for the call, so anything a
    library logs reaches stderr exactly as in a terminal (through logging.lastResort).
    """
    from evenstride.cli.main import main

    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []
    argv = sys.argv
    sys.argv = ["evenstride", "--home", str(home), *args]
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        sys.argv = argv
        root.handlers = saved
    out, err = capsys.readouterr()
    return Outcome(code, out, err)


def assert_message(result: Outcome, keyword: str, *, prefix: tuple[str, ...] = OUR_PREFIXES) -> str:
    """No traceback, only our own one-line messages, exactly one of them naming `keyword`."""
    assert "Traceback" not in result.err, result.err
    lines = result.err_lines()
    strangers = [line for line in lines if not line.startswith(OUR_PREFIXES)]
    assert not strangers, f"stderr lines that are not ours: {strangers}"
    naming = [line for line in lines if line.startswith(prefix) and keyword.lower() in line.lower()]
    assert len(naming) == 1, f"expected one line naming {keyword!r}:\n{result.err}"
    return naming[0]


# --------------------------------------------------------------------------- injected faults


def garmin_fault(
    fake: FakeGarminConnect,
    kind: str,
    prefix: str,
    *,
    method: str | None = None,
    after: int = 0,
    times: int = 200,
) -> None:
    """A persistent network fault on the fake Garmin (outlives every bounded retry)."""
    if kind == "503":
        fake.fail(prefix, 503, times=times, method=method, after=after)
    elif kind == "429":
        fake.fail(prefix, 429, times=times, method=method, after=after,
                  headers={"Retry-After": "600"})  # fmt: skip
    elif kind == "reset":
        fake.drop(prefix, times=times, method=method, after=after)
    elif kind == "timeout":
        fake.faults.append(
            Fault(method, prefix, times, action="stall", seconds=DELAY_S, after=after)
        )
    else:  # pragma: no cover
        raise ValueError(kind)


class FaultyStrava(FakeStrava):
    """tests/fake_strava.py's FakeStrava plus scripted network faults per path prefix.

    Same vocabulary as the fake Garmin: an HTTP status (429 carries Strava's rate headers), a
    dropped connection, or a delay; ``after=N`` lets N matching requests through first.
    `on_request(method, path)` sees every request before faults apply.
    """

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.fault_lock = threading.Lock()
        self.on_request: Callable[[str, str], None] | None = None
        super().__init__()

    def fault(self, kind: str, prefix: str, *, after: int = 0, times: int = 200) -> None:
        if kind == "503":
            self.faults.append(Fault(None, prefix, times, status=503, after=after))
        elif kind == "429":
            self.faults.append(Fault(None, prefix, times, status=429, after=after))
        elif kind == "reset":
            self.faults.append(Fault(None, prefix, times, action="drop", after=after))
        elif kind == "timeout":
            self.faults.append(
                Fault(None, prefix, times, action="sleep", seconds=DELAY_S, after=after)
            )
        else:  # pragma: no cover
            raise ValueError(kind)

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.fault_lock:
            return next_fault(self.faults, method, path)

    def streamed_ids(self) -> list[int]:
        """Activity ids whose streams were asked for, in order."""
        return [
            int(r["path"].split("/")[-2])
            for r in self.requests
            if r["method"] == "GET" and r["path"].endswith("/streams")
        ]

    def _handler(self) -> type:
        base = super()._handler()
        fake = self

        class Handler(base):  # type: ignore[misc, valid-type]
            def _faulted(self, method: str) -> bool:
                path = urlsplit(self.path).path
                if fake.on_request is not None:
                    fake.on_request(method, path)
                f = fake.take_fault(method, path)
                if f is None:
                    return False
                if f.action == "sleep":
                    time.sleep(f.seconds)
                    return False
                self.close_connection = True
                if f.action == "drop":
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return True
                body = {"message": "fake failure", "errors": []}
                if f.status == 429:
                    body = {"message": "Rate Limit Exceeded", "errors": []}
                self._send(f.status, body, {**fake._rate_headers(), "Connection": "close"})
                return True

            def do_GET(self) -> None:  # noqa: N802
                if not self._faulted("GET"):
                    super().do_GET()

            def do_POST(self) -> None:  # noqa: N802
                if not self._faulted("POST"):
                    super().do_POST()

        return Handler


class FullDisk:
    """The file system holding `root` is full once `arm()` is called (until `clear()`).

    Simulates the OS, not our code: file writes under `root` raise OSError(ENOSPC) at the
    io.open / os.fdopen / os.write / os.fsync boundary (creating a file still works, as on a
    real full disk), and SQLite connections to databases under `root` may not grow the file
    (``PRAGMA max_page_count`` pinned to the current size), so SQLite answers SQLITE_FULL
    ("database or disk is full") exactly as on a full disk. `files=False` leaves file writes
    alone (the database alone is full).
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, root: Path, *, files: bool = True) -> None:
        self.root = str(Path(root).resolve())
        self.files = files
        self.armed = False
        self.hits = 0
        self.connections: list[Any] = []
        real_open, real_fdopen = io.open, os.fdopen
        real_write, real_fsync = os.write, os.fsync
        real_connect = sqlite3.dbapi2.connect
        disk = self

        class FullFile:
            def __init__(self, f: Any, name: str) -> None:
                self._f, self.name = f, name

            def write(self, data: Any) -> int:
                if len(data):
                    disk.hits += 1
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.name)
                return 0

            def writelines(self, lines: Any) -> None:
                for line in lines:
                    self.write(line)

            def __getattr__(self, name: str) -> Any:
                return getattr(self._f, name)

            def __enter__(self) -> FullFile:
                return self

            def __exit__(self, *exc: object) -> None:
                self._f.close()

            def __iter__(self) -> Iterator[Any]:
                return iter(self._f)

        def full(path: Any) -> bool:
            return (
                disk.armed and disk.files and str(Path(path).resolve()).startswith(disk.root + "/")
            )

        def fd_path(fd: int) -> str:
            try:
                return os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                return ""

        def writing(mode: str) -> bool:
            return any(c in mode for c in "wax+")

        def open_(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            f = real_open(file, mode, *args, **kwargs)
            if isinstance(file, str | bytes | os.PathLike) and writing(mode) and full(file):
                return FullFile(f, str(file))
            return f

        def fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            f = real_fdopen(fd, mode, *args, **kwargs)
            path = fd_path(fd)
            return FullFile(f, path) if writing(mode) and path and full(path) else f

        def write(fd: int, data: Any) -> int:
            path = fd_path(fd)
            if path and full(path) and len(data):
                disk.hits += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, data)

        def fsync(fd: int) -> None:
            path = fd_path(fd)
            if path and full(path):
                disk.hits += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real_fsync(fd)

        def connect(database: Any, *args: Any, **kwargs: Any) -> Any:
            conn = real_connect(database, *args, **kwargs)
            if str(Path(str(database)).resolve()).startswith(disk.root + "/"):
                disk.connections.append(conn)
                if disk.armed:
                    disk._pin(conn)
            return conn

        monkeypatch.setattr(io, "open", open_)
        monkeypatch.setattr(builtins, "open", open_)
        monkeypatch.setattr(os, "fdopen", fdopen)
        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(sqlite3.dbapi2, "connect", connect)

    @staticmethod
    def _pin(conn: Any) -> None:
        with contextlib.suppress(sqlite3.ProgrammingError):  # closed meanwhile
            conn.execute("PRAGMA max_page_count = 1")  # clamps to the current size

    def arm(self) -> None:
        self.armed = True
        for conn in self.connections:
            self._pin(conn)

    def clear(self) -> None:
        self.armed = False
        for conn in self.connections:
            with contextlib.suppress(sqlite3.ProgrammingError):
                conn.execute("PRAGMA max_page_count = 1073741823")
        self.connections.clear()


HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


class DbLock:
    """Another process holding the database's write lock (a real sqlite3 BEGIN EXCLUSIVE)."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.proc: subprocess.Popen[str] | None = None

    def hold(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(self.db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.write("\n")
                self.proc.stdin.close()
            self.proc.wait(10)
            self.proc = None


class BrokenKeyring(KeyringBackend):
    """A real keyring backend whose reads and/or writes raise KeyringError (a locked keyring,
    a Secret Service that stopped answering); everything else goes to `inner`."""

    priority = 1  # type: ignore[assignment]

    def __init__(self, inner: KeyringBackend, *, get: bool = True, set_: bool = True) -> None:
        super().__init__()
        self.inner, self.break_get, self.break_set = inner, get, set_
        self.calls = Counter[str]()

    def get_password(self, service: str, username: str) -> str | None:
        self.calls["get"] += 1
        if self.break_get:
            raise keyring.errors.KeyringError("the keyring is locked")
        return self.inner.get_password(service, username)

    def set_password(self, service: str, username: str, password: str) -> None:
        self.calls["set"] += 1
        if self.break_set:
            raise keyring.errors.KeyringError("the keyring is locked")
        self.inner.set_password(service, username, password)

    def delete_password(self, service: str, username: str) -> None:
        self.inner.delete_password(service, username)


def break_keyring(inner: KeyringBackend, *, get: bool, set_: bool) -> BrokenKeyring:
    broken = BrokenKeyring(inner, get=get, set_=set_)
    keyring.set_keyring(broken)
    return broken


# --------------------------------------------------------------------------- shared fixtures


def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny timeouts and retries (called in the test body: the `fake` fixture sets its own)."""
    monkeypatch.setenv("EVENSTRIDE_GARMIN_RETRIES", "1")
    monkeypatch.setenv("EVENSTRIDE_GARMIN_BACKOFF_S", "0.001")
    monkeypatch.setenv("EVENSTRIDE_GARMIN_TIMEOUT_S", str(TIMEOUT_S))
    monkeypatch.setenv("EVENSTRIDE_DB_BUSY_TIMEOUT_S", str(BUSY_S))
    monkeypatch.delenv("EVENSTRIDE_HOME", raising=False)


@pytest.fixture
def strava(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyStrava]:
    with FaultyStrava() as server:
        monkeypatch.setenv("EVENSTRIDE_STRAVA_API_URL", server.api_url)
        monkeypatch.setenv("EVENSTRIDE_STRAVA_OAUTH_URL", server.url)
        monkeypatch.setenv("EVENSTRIDE_STRAVA_RETRIES", "1")
        monkeypatch.setenv("EVENSTRIDE_STRAVA_BACKOFF_S", "0.001")
        monkeypatch.setenv("EVENSTRIDE_STRAVA_TIMEOUT_S", str(TIMEOUT_S))
        for name in ("STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET"):
            monkeypatch.delenv(name, raising=False)
        yield server
        assert not server.spec_violations, server.spec_violations


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def lock(home: Path) -> Iterator[DbLock]:
    held = DbLock(home / DB_NAME)
    yield held
    held.release()


# --------------------------------------------------------------------------- store checks


def stored(home: Path, athlete: str, source: str) -> list[dict[str, Any]]:
    with open_store(home) as store:
        return store.list_activities(athlete, source=source)


def assert_archived(home: Path) -> None:
    """Every stored activity with a raw file has it archived intact; no temp files left."""
    with open_store(home) as store:
        for a in store.list_activities():
            if a["sha256"]:
                assert store.archive.get(a["sha256"])  # decompresses and matches its sha256
            else:
                assert a["status"] == "failed" and a["reason"], a
        assert store.integrity_check() == []
    assert not list((home / "raw").glob("*/.tmp-*")), "a half-written archive file was left"


def assert_prefix(ids: list[str], in_order: list[str], at_least: int) -> None:
    """What a stopped sync stored is the oldest-first prefix of the runs, and no less than
    everything it had fetched before the fault."""
    assert len(ids) == len(set(ids)), f"stored twice: {ids}"
    assert set(ids) == set(in_order[: len(ids)]), (ids, in_order)
    assert len(ids) >= at_least, (ids, at_least)


# --------------------------------------------------------------------------- sync garmin


@dataclass(frozen=True)
class Cell:
    op: str
    fault: str
    step: str
    code: int
    keyword: str  # what the one stderr line names
    stored_before: int = 0  # runs stored before the fault hits (at least)
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.op}|{self.fault}@{self.step}"


NET_WORDS = {"503": "503", "429": "429", "reset": "unavailable", "timeout": "timeout"}
NET_CODES = {"503": 5, "429": 4, "reset": 5, "timeout": 5}


def _net(op: str, step: str, kinds: str, before: int) -> list[Cell]:
    return [Cell(op, k, step, NET_CODES[k], NET_WORDS[k], before) for k in kinds.split()]


SYNC_GARMIN = [
    *_net("sync-garmin", "listing", "503 429 reset timeout", 0),
    *_net("sync-garmin", "download", "503 429 reset timeout", 2),
    *_net("sync-garmin", "token-refresh", "503 429 reset", 2),
    Cell("sync-garmin", "truncated-zip", "download", 1, "corrupt download", 4),
    Cell("sync-garmin", "corrupt-zip", "download", 1, "corrupt download", 4),
    Cell("sync-garmin", "disk-full", "download", 6, "No space left on device", 2),
    Cell("sync-garmin", "db-full", "download", 6, "database or disk is full", 2),
    Cell("sync-garmin", "db-locked", "download", 6, "locked by another process", 2),
    Cell("sync-garmin", "db-locked", "start", 6, "locked by another process", 0),
    Cell("sync-garmin", "keyring-get-raises", "start", 2, "keyring", 0),
    Cell("sync-garmin", "keyring-set-raises", "token-refresh", 2, "keyring", 5),
]
GARMIN_RUNS = 6  # activities on the fake: 5 runs and a ride


def _garmin_runs(fake: FakeGarminConnect, n: int = GARMIN_RUNS) -> list[str]:
    fake.add_runs(n, start=NOW - dt.timedelta(days=20))
    by_start = sorted(fake.activities.values(), key=lambda e: (e["startTimeGMT"], e["activityId"]))
    running = fake.running_ids()
    return [str(e["activityId"]) for e in by_start if e["activityId"] in running]


def _at_download(fake: FakeGarminConnect, n: int, action: Callable[[], None]) -> None:
    """Run `action` when the n-th download is served (before its answer leaves): the n-1
    runs before it are stored by then."""

    def hook(aid: int) -> None:
        if len(fake.downloads) == n:
            action()

    fake.on_download = hook


def _bad_zip(body: bytes, kind: str) -> bytes:
    if kind == "truncated-zip":
        return body[: len(body) // 2]
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        info = zf.infolist()[0]
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data = bytearray(body)
    for i in range(start, start + info.compress_size):
        data[i] ^= 0x5A  # the deflate stream (or its CRC) no longer checks out
    return bytes(data)


@pytest.mark.parametrize("cell", SYNC_GARMIN, ids=str)
def test_sync_garmin(
    cell: Cell,
    fake: FakeGarminConnect,
    keyring_file: Any,
    home: Path,
    lock: DbLock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short_waits(monkeypatch)
    runs = _garmin_runs(fake)
    garmin_auth.save_tokens("default", fake.tokens_json())
    disk: FullDisk | None = None
    repair: Callable[[], None] = lambda: None  # noqa: E731
    good: dict[int, bytes] = {}
    rerun_args: tuple[str, ...] = ()
    prefixes = {"listing": "/activitylist-service", "download": "/download-service"}
    if cell.fault in NET_CODES and cell.step in prefixes:
        after = 2 if cell.step == "download" else 0
        garmin_fault(fake, cell.fault, prefixes[cell.step], after=after)
    elif cell.fault in NET_CODES:  # token refresh, half-way: tokens expire after two runs

        def expire() -> None:
            fake.expire_access_tokens()
            garmin_fault(fake, cell.fault, "/di-oauth2-service")

        _at_download(fake, 3, expire)
    elif cell.fault in ("truncated-zip", "corrupt-zip"):
        victim = int(runs[2])
        good[victim] = fake.files[victim]
        fake.files[victim] = _bad_zip(good[victim], cell.fault)
        rerun_args = ("--retry-failed",)
    elif cell.fault in ("disk-full", "db-full"):
        disk = FullDisk(monkeypatch, home, files=cell.fault == "disk-full")
        _at_download(fake, 3, disk.arm)
    elif cell.fault == "db-locked":
        open_store(home).close()
        if cell.step == "start":
            lock.hold()
        else:
            _at_download(fake, 3, lock.hold)
    elif cell.fault == "keyring-get-raises":
        break_keyring(keyring_file, get=True, set_=True)
    elif cell.fault == "keyring-set-raises":
        fake.expire_access_tokens()  # the sync refreshes them and cannot save the new pair
        break_keyring(keyring_file, get=False, set_=True)

        def repair() -> None:  # the old refresh token is dead: `login garmin` once more
            assert run_cli(capsys, home, "sync", "garmin").code == 3
            garmin_auth.save_tokens("default", fake.tokens_json())

    result = run_cli(capsys, home, "sync", "garmin")
    lock.release()  # (the checks below open the store themselves)

    assert result.code == cell.code, (result.out, result.err)
    if cell.code == 1:
        line = assert_message(result, cell.keyword, prefix=("failed: activity",))
        assert line.startswith(f"failed: activity {runs[2]}: ")
    else:
        assert_message(result, cell.keyword, prefix=("error:", "evenstride:"))
    got = stored(home, "default", "garmin")
    ids = [a["source_id"] for a in got]
    if cell.code == 1:  # the damaged run is kept as failed, with its reason; the rest stored
        assert sorted(ids) == sorted(runs)
        failed = [a for a in got if a["status"] == "failed"]
        assert [a["source_id"] for a in failed] == [runs[2]] and "corrupt" in failed[0]["reason"]
    else:
        assert_prefix(ids, runs, cell.stored_before)
    assert_archived(home)
    if cell.step == "download" and cell.fault in NET_CODES:
        assert len(fake.requests_to("/download-service")) <= 2 + (
            1 if cell.fault == "429" else 2
        ), "retried a 429, or retried without bound"

    # clear the fault, re-run: everything exactly once, nothing fetched twice
    if cell.fault == "timeout":
        time.sleep(DELAY_S)  # let the slow answers finish before the state is compared
    fake.faults.clear()
    fake.on_download = None
    fake.files.update(good)
    lock.release()
    if disk is not None:
        disk.clear()
    keyring.set_keyring(keyring_file)
    repair()
    done_before = {a["source_id"] for a in got if a["status"] != "failed"}
    fake.downloads.clear()
    again = run_cli(capsys, home, "sync", "garmin", *rerun_args)
    assert again.code == 0, (again.out, again.err)
    after = stored(home, "default", "garmin")
    assert Counter(a["source_id"] for a in after) == Counter(runs)
    assert all(a["status"] == "ok" for a in after)
    assert not done_before & {str(i) for i in fake.downloads}, "a stored run was fetched again"
    assert_archived(home)


# --------------------------------------------------------------------------- sync strava


SYNC_STRAVA = [
    *_net("sync-strava", "listing", "503 429 reset timeout", 0),
    *_net("sync-strava", "streams", "503 429 reset timeout", 2),
    *_net("sync-strava", "token-refresh", "503 429 reset timeout", 0),
    Cell("sync-strava", "disk-full", "streams", 6, "No space left on device", 2),
    Cell("sync-strava", "db-full", "streams", 6, "database or disk is full", 2),
    Cell("sync-strava", "db-locked", "streams", 6, "locked by another process", 2),
    Cell("sync-strava", "db-locked", "start", 6, "locked by another process", 0),
    Cell("sync-strava", "keyring-get-raises", "start", 2, "keyring", 0),
    Cell("sync-strava", "keyring-set-raises", "token-refresh", 2, "keyring", 0),
]
STRAVA_WORDS = {"503": "503", "429": "429", "reset": "ConnectionError", "timeout": "Timeout"}


def _strava_runs(fake: FaultyStrava, first_id: int = 5000, n: int = 5) -> list[str]:
    ids = []
    for i in range(n):
        fake.add_run(first_id + i, NOW - dt.timedelta(days=10 - i, hours=3), seconds=600,
                     distance=1800.0)  # fmt: skip
        ids.append(str(first_id + i))
    fake.add_run(first_id + 99, NOW - dt.timedelta(days=7), sport_type="Ride", seconds=600)
    return ids


def _on_nth_streams(fake: FaultyStrava, n: int, action: Callable[[], None]) -> None:
    seen = {"n": 0}

    def hook(method: str, path: str) -> None:
        if path.endswith("/streams"):
            seen["n"] += 1
            if seen["n"] == n:
                action()

    fake.on_request = hook


@pytest.mark.parametrize("cell", SYNC_STRAVA, ids=str)
def test_sync_strava(
    cell: Cell,
    strava: FaultyStrava,
    keyring_file: Any,
    home: Path,
    lock: DbLock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short_waits(monkeypatch)
    runs = _strava_runs(strava)
    refresh_first = cell.step == "token-refresh"
    login(strava, expires_in=60 if refresh_first else None)  # 60 s: refreshed before any call
    disk: FullDisk | None = None
    repair: Callable[[], None] = lambda: None  # noqa: E731
    prefixes = {
        "listing": "/api/v3/athlete/activities",
        "streams": "/api/v3/activities/",
        "token-refresh": "/oauth/token",
    }
    keyword = cell.keyword
    if cell.fault in NET_CODES:
        strava.fault(cell.fault, prefixes[cell.step], after=2 if cell.step == "streams" else 0)
        keyword = STRAVA_WORDS[cell.fault]
        if cell.fault == "timeout" and refresh_first:

            def repair() -> None:
                # The slow answer was carried out: Strava rotated the refresh token, and the
                # new pair never reached us. Documented outcome: exit 3, log in again.
                relogin = run_cli(capsys, home, "sync", "strava")
                assert relogin.code == 3 and "login strava" in relogin.err, relogin.err
                login(strava)

    elif cell.fault in ("disk-full", "db-full"):
        disk = FullDisk(monkeypatch, home, files=cell.fault == "disk-full")
        _on_nth_streams(strava, 3, disk.arm)
    elif cell.fault == "db-locked":
        open_store(home).close()
        if cell.step == "start":
            lock.hold()
        else:
            _on_nth_streams(strava, 3, lock.hold)
    elif cell.fault == "keyring-get-raises":
        break_keyring(keyring_file, get=True, set_=True)
    elif cell.fault == "keyring-set-raises":
        break_keyring(keyring_file, get=False, set_=True)

        def repair() -> None:  # the rotated refresh token was never saved: log in again
            login(strava)

    result = run_cli(capsys, home, "sync", "strava")
    lock.release()

    assert result.code == cell.code, (result.out, result.err)
    assert_message(result, keyword, prefix=("evenstride:",))
    ids = [a["source_id"] for a in stored(home, "default", "strava")]
    assert_prefix(ids, runs, cell.stored_before)
    assert_archived(home)

    if cell.fault == "timeout":
        time.sleep(DELAY_S)
    strava.faults.clear()
    strava.on_request = None
    lock.release()
    if disk is not None:
        disk.clear()
    keyring.set_keyring(keyring_file)
    repair()
    streamed_before = len(strava.streamed_ids())
    again = run_cli(capsys, home, "sync", "strava")
    assert again.code == 0, (again.out, again.err)
    after = stored(home, "default", "strava")
    assert Counter(a["source_id"] for a in after) == Counter(runs)
    refetched = set(ids) & {str(i) for i in strava.streamed_ids()[streamed_before:]}
    assert not refetched, f"stored runs fetched again: {refetched}"
    assert_archived(home)


# --------------------------------------------------------------------------- push garmin


PUSH = [
    *_net("push-garmin", "token-refresh", "503 429 reset", 0),
    *_net("push-garmin", "workout-list", "503 429 reset timeout", 0),
    *_net("push-garmin", "calendar", "503 429 reset", 0),
    *_net("push-garmin", "upload", "503 429 reset timeout", 0),
    *_net("push-garmin", "schedule", "503 429 reset timeout", 0),
    *_net("push-garmin", "delete", "503 429 reset", 0),
    Cell("push-garmin", "disk-full", "start", 6, "No space left on device"),
    Cell("push-garmin", "db-locked", "start", 6, "locked by another process"),
    Cell("push-garmin", "keyring-get-raises", "start", 2, "keyring"),
]
PUSH_STEPS = {  # step -> (path prefix, method, requests let through first)
    "token-refresh": ("/di-oauth2-service", "POST", 0),
    "workout-list": ("/workout-service/workouts", "GET", 0),
    "calendar": ("/calendar-service/", "GET", 1),
    "upload": ("/workout-service/workout", "POST", 2),
    "schedule": ("/workout-service/schedule/", "POST", 2),
    "delete": ("/workout-service/workout/", "DELETE", 1),
}


@pytest.fixture(scope="module")
def season_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic season (22 runs) imported once; each push cell works on a copy."""
    from evenstride.cli.main import cli

    home = tmp_path_factory.mktemp("season") / "home"
    result = CliRunner().invoke(cli, ["--home", str(home), "import", str(SEASON)])
    assert result.exit_code == 0, result.output
    return home


def ours(fake: FakeGarminConnect) -> dict[int, dict[str, Any]]:
    return {wid: w for wid, w in fake.workouts.items() if MARKER in w.get("workoutName", "")}


def plan_dates(home: Path, athlete: str = "default") -> list[str]:
    plan = json.loads((home / "plans" / athlete / "latest.json").read_text())
    return sorted(s["date"] for s in plan["sessions"])


def assert_calendar_clean(fake: FakeGarminConnect, dates: list[str]) -> None:
    """Exactly one evenstride workout per planned date, each scheduled once, no orphans."""
    cal = [c for c in fake.calendar() if MARKER in (c["name"] or "")]
    assert sorted(c["date"] for c in cal) == sorted(dates), "a day is missing or doubled"
    scheduled = [c["workout_id"] for c in cal]
    assert len(scheduled) == len(set(scheduled)), "a workout is on the calendar twice"
    assert set(scheduled) == set(ours(fake)), "an evenstride workout is not on the calendar"


def assert_records_true(home: Path, fake: FakeGarminConnect, athlete: str = "default") -> None:
    """The store's push records never claim a workout Garmin does not have on that day."""
    cal = {(c["date"], c["workout_id"]) for c in fake.calendar()}
    with open_store(home) as store:
        for day in plan_dates(home, athlete):
            value = store.get_sync_state(athlete, "garmin", f"push:{day}")
            if value is not None:
                assert (day, json.loads(value)["workout_id"]) in cal, (day, value)


def _override(home: Path, side: str) -> None:
    with open_store(home) as store:
        profile = dict(store.get_athlete("default")["profile"])
        profile["overrides"] = {"focus_side": side}
        store.update_athlete_profile("default", profile)


@pytest.mark.parametrize("cell", PUSH, ids=str)
def test_push_garmin(
    cell: Cell,
    season_home: Path,
    fake: FakeGarminConnect,
    keyring_file: Any,
    home: Path,
    lock: DbLock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short_waits(monkeypatch)
    shutil.copytree(season_home, home)
    garmin_auth.save_tokens("default", fake.tokens_json())
    push = ("push", "garmin", "--today", PUSH_TODAY, "--weeks", "2")  # 4 sessions
    disk: FullDisk | None = None
    if cell.step == "delete":  # a pushed plan that the coach's override now replaces
        assert run_cli(capsys, home, *push).code == 0
        _override(home, "right")
    if cell.fault in NET_CODES:
        prefix, method, after = PUSH_STEPS[cell.step]
        if cell.step == "token-refresh":
            fake.expire_access_tokens()
        garmin_fault(fake, cell.fault, prefix, method=method, after=after)
    elif cell.fault == "disk-full":
        disk = FullDisk(monkeypatch, home)
        disk.arm()
    elif cell.fault == "db-locked":
        lock.hold()
    elif cell.fault == "keyring-get-raises":
        break_keyring(keyring_file, get=True, set_=True)
    writes_before = len(fake.data_writes())

    result = run_cli(capsys, home, *push)
    lock.release()

    assert result.code == cell.code, (result.out, result.err)
    assert_message(result, cell.keyword, prefix=("error:", "evenstride:"))
    if cell.step in ("start", "token-refresh", "workout-list", "calendar"):
        assert len(fake.data_writes()) == writes_before, "wrote to Garmin before failing"
    if cell.fault == "429":  # when to come back (Retry-After: 600, else the default advice)
        assert ("retry after" if cell.step != "token-refresh" else "retry in") in result.err
    if cell.step not in ("start", "delete"):  # (a replaced day's record is stale until done)
        assert_records_true(home, fake)

    if cell.fault == "timeout":
        time.sleep(DELAY_S)
    fake.faults.clear()
    lock.release()
    if disk is not None:
        disk.clear()
    keyring.set_keyring(keyring_file)
    again = run_cli(capsys, home, *push)
    assert again.code == 0, (again.out, again.err)
    dates = plan_dates(home)
    assert len(dates) == 4
    assert_calendar_clean(fake, dates)
    assert_records_true(home, fake)
    assert len(ours(fake)) == 4


# --------------------------------------------------------------------------- nightly


NIGHTLY = [
    Cell("nightly", "503", "garmin-listing", 1, "503", extra={"victim": "ana"}),
    Cell("nightly", "429", "garmin-download", 1, "429", 2, {"victim": "ana"}),
    Cell("nightly", "reset", "garmin-download", 1, "unavailable", 2, {"victim": "ana"}),
    Cell("nightly", "timeout", "garmin-download", 1, "timeout", 2, {"victim": "ana"}),
    Cell("nightly", "429", "garmin-token-refresh", 1, "429", 2, {"victim": "ana"}),
    Cell("nightly", "503", "garmin-upload", 1, "503", 4, {"victim": "ana"}),
    Cell("nightly", "reset", "garmin-upload", 1, "unavailable", 4, {"victim": "ana"}),
    Cell("nightly", "429", "garmin-schedule", 1, "429", 4, {"victim": "ana"}),
    Cell("nightly", "timeout", "garmin-workout-list", 1, "timeout", 4, {"victim": "ana"}),
    Cell(
        "nightly", "truncated-zip", "garmin-download", 1, "corrupt download", 4, {"victim": "ana"}
    ),  # fmt: skip
    Cell(
        "nightly", "corrupt-zip", "garmin-download", 1, "corrupt download", 4, {"victim": "ana"}
    ),  # fmt: skip
    Cell("nightly", "503", "strava-listing", 1, "503", extra={"victim": "ben"}),
    Cell("nightly", "429", "strava-streams", 1, "429", 2, {"victim": "ben"}),
    Cell("nightly", "reset", "strava-streams", 1, "ConnectionError", 2, {"victim": "ben"}),
    Cell("nightly", "429", "strava-token-refresh", 1, "429", extra={"victim": "ben"}),
    Cell(
        "nightly",
        "disk-full",
        "garmin-download",
        1,
        "No space left on device",
        2,
        {"victim": "both"},
    ),  # fmt: skip
    Cell(
        "nightly",
        "db-full",
        "garmin-download",
        1,
        "database or disk is full",
        2,
        {"victim": "both"},
    ),  # fmt: skip
    Cell(
        "nightly",
        "db-locked",
        "garmin-download",
        1,
        "locked by another process",
        2,
        {"victim": "both"},
    ),  # fmt: skip
    Cell("nightly", "db-locked", "start", 6, "locked by another process", extra={"victim": "-"}),
    Cell("nightly", "keyring-raises", "start", 1, "keyring", extra={"victim": "both"}),
]


@pytest.mark.parametrize("cell", NIGHTLY, ids=str)
def test_nightly(
    cell: Cell,
    fake: FakeGarminConnect,
    strava: FaultyStrava,
    keyring_file: Any,
    home: Path,
    lock: DbLock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ana syncs from Garmin and gets her plan pushed there; ben syncs from Strava only."""
    short_waits(monkeypatch)
    ana_runs = _garmin_runs(fake, 5)
    ben_runs = _strava_runs(strava, 7000, 3)
    garmin_auth.save_tokens("ana", fake.tokens_json())
    login(strava, "ben", expires_in=60 if cell.step == "strava-token-refresh" else None)
    with open_store(home) as store:
        store.update_athlete_profile("ana", {"sources": ["garmin"]})
        store.update_athlete_profile("ben", {"sources": ["strava"]})
    disk: FullDisk | None = None
    good: dict[int, bytes] = {}
    victim = cell.extra["victim"]
    source, _, step = cell.step.partition("-")
    if cell.fault in NET_CODES and source == "garmin":
        if step == "token-refresh":

            def expire() -> None:
                fake.expire_access_tokens()
                garmin_fault(fake, cell.fault, "/di-oauth2-service")

            _at_download(fake, 3, expire)
        elif step in ("listing", "download"):
            prefix = "/activitylist-service" if step == "listing" else "/download-service"
            garmin_fault(fake, cell.fault, prefix, after=2 if step == "download" else 0)
        else:  # the push: ana's plan has 2 sessions (--weeks 1)
            prefix, method, _ = PUSH_STEPS[step]
            garmin_fault(fake, cell.fault, prefix, method=method, after=0)
    elif cell.fault in NET_CODES:
        prefixes = {"listing": "/api/v3/athlete/activities", "streams": "/api/v3/activities/",
                    "token-refresh": "/oauth/token"}  # fmt: skip
        strava.fault(cell.fault, prefixes[step], after=2 if step == "streams" else 0)
    elif cell.fault in ("truncated-zip", "corrupt-zip"):
        victim_id = int(ana_runs[2])
        good[victim_id] = fake.files[victim_id]
        fake.files[victim_id] = _bad_zip(good[victim_id], cell.fault)
    elif cell.fault in ("disk-full", "db-full"):
        disk = FullDisk(monkeypatch, home, files=cell.fault == "disk-full")
        _at_download(fake, 3, disk.arm)
    elif cell.fault == "db-locked":
        if step == "":
            lock.hold()
        else:
            _at_download(fake, 3, lock.hold)
    elif cell.fault == "keyring-raises":
        break_keyring(keyring_file, get=True, set_=True)

    result = run_cli(capsys, home, "nightly", "--weeks", "1")
    lock.release()

    assert result.code == cell.code, (result.out, result.err)
    if cell.code == 6:
        assert_message(result, cell.keyword, prefix=("evenstride:",))
        assert result.out == ""
    else:
        failed = ["ana", "ben"] if victim == "both" else [victim]
        assert_message(result, f"athletes failed: {', '.join(failed)}", prefix=("evenstride:",))
        lines = dict(line.split(": ", 1) for line in result.out.splitlines())
        assert list(lines) == ["ana", "ben"], result.out
        for name, line in lines.items():
            assert ("FAILED" in line) == (name in failed), line
        log_text = (home / "logs" / "nightly.log").read_text()
        for name in failed:
            if "zip" in cell.fault:  # the line counts them; the log has each reason
                assert "1 activities failed" in lines[name], lines[name]
                assert f"{ana_runs[2]}" in log_text and cell.keyword in log_text
            else:
                assert cell.keyword.lower() in lines[name].lower(), lines[name]
    ids = [a["source_id"] for a in stored(home, "ana", "garmin")] if result.code != 6 else []
    if cell.fault in ("truncated-zip", "corrupt-zip"):
        assert sorted(ids) == sorted(ana_runs)
    elif source == "garmin" and step in ("listing", "download", "token-refresh"):
        assert_prefix(ids, ana_runs, cell.stored_before)
    elif result.code != 6 and victim != "both":
        assert sorted(ids) == sorted(ana_runs)
    elif result.code != 6:
        assert_prefix(ids, ana_runs, 0 if cell.fault == "keyring-raises" else 2)
    if source == "strava" or victim == "both":
        ben_ids = [a["source_id"] for a in stored(home, "ben", "strava")]
        assert_prefix(ben_ids, ben_runs, 0 if victim == "both" else cell.stored_before)
    if (home / DB_NAME).exists():
        assert_archived(home)
    if result.code != 6 and (home / "plans" / "ana" / "latest.json").exists():
        assert_records_true(home, fake, "ana")

    if cell.fault == "timeout":
        time.sleep(DELAY_S)
    fake.faults.clear()
    fake.on_download = None
    fake.files.update(good)
    strava.faults.clear()
    lock.release()
    if disk is not None:
        disk.clear()
    keyring.set_keyring(keyring_file)
    again = run_cli(capsys, home, "nightly", "--weeks", "1")
    assert again.code == 0, (again.out, again.err)
    assert "FAILED" not in again.out and again.err == ""
    ana = stored(home, "ana", "garmin")
    assert Counter(a["source_id"] for a in ana) == Counter(ana_runs)
    if good:  # the nightly job does not retry a damaged download; `--retry-failed` does
        assert [a["status"] for a in ana].count("failed") == 1
        fake.downloads.clear()
        fixed = run_cli(capsys, home, "sync", "garmin", "--athlete", "ana", "--retry-failed")
        assert fixed.code == 0 and fake.downloads == [int(ana_runs[2])]
        ana = stored(home, "ana", "garmin")
        assert Counter(a["source_id"] for a in ana) == Counter(ana_runs)
    assert all(a["status"] == "ok" for a in ana)
    assert Counter(a["source_id"] for a in stored(home, "ben", "strava")) == Counter(ben_runs)
    assert_archived(home)
    assert_calendar_clean(
        fake, [d for d in plan_dates(home, "ana") if d >= dt.date.today().isoformat()]
    )
    assert_records_true(home, fake, "ana")
    assert ATHLETE_ID  # ben is the fake Strava's athlete
