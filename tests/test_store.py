"""The SQLite store: schema and migrations, activities/runs/sync state, transactions, crash safety.

Real SQLite files in tmp_path throughout; the kill test runs a real writer process.
"""

from __future__ import annotations

import json
import math
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from evenstride.store import (
    DB_NAME,
    LATEST_VERSION,
    NotFoundError,
    SecretRefusedError,
    Store,
    StoreClosedError,
    StoreError,
    StoreLockedError,
    StoreSchemaError,
    open_store,
)
from evenstride.store import schema as current_schema
from evenstride.store.db import make_engine
from evenstride.store.migrations import MIGRATIONS, Migration, migrate

T0 = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)
SHA_A = "a" * 64
SHA_B = "b" * 64


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "home")
    yield s
    s.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _activity(store: Store, source_id: str, *, athlete: str = "default", **kw: Any) -> int:
    args: dict[str, Any] = {
        "source": "garmin",
        "source_id": source_id,
        "sha256": SHA_A,
        "start_time": T0,
        "duration_s": 1800.0,
        "distance_m": 5000.0,
        "sport": "running",
        "sub_sport": "road",
        "device": "Forerunner 965",
        "sensors": [{"name": "HRM-Pro Plus", "type": "heart_rate"}],
        "status": "ok",
        "reason": None,
        "file_name": f"{source_id}_ACTIVITY.fit",
        "extra": None,
    }
    args.update(kw)
    return store.upsert_activity(athlete, **args)


def _run(index: int, start: datetime | None = T0, **kw: Any) -> dict[str, Any]:
    return {
        "session_index": index,
        "start_time": start,
        "sport": "running",
        "sub_sport": "road",
        "sensor": "HRM-Pro Plus",
        "summary": {"balance_median": 50.4, "surface": "road", "n": index},
        **kw,
    }


# --------------------------------------------------------------------------- opening


def test_open_creates_private_home_and_database(tmp_path: Path) -> None:
    home = tmp_path / "nested" / "home"
    with open_store(home) as store:
        assert store.schema_version() == LATEST_VERSION
        _activity(store, "1")  # make SQLite create its -wal / -shm files
        assert _mode(home) == 0o700
        assert _mode(home / DB_NAME) == 0o600
        assert _mode(home / "raw") == 0o700
        for side in home.glob(DB_NAME + "-*"):
            assert _mode(side) == 0o600, side
    with sqlite3.connect(home / DB_NAME) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reopen_keeps_data_and_does_not_remigrate(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        aid = _activity(store, "1")
    with open_store(tmp_path) as store:
        assert store.get_activity(aid)["source_id"] == "1"
        assert store.schema_version() == LATEST_VERSION


def test_closed_store_refuses_work(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreClosedError):
        store.list_activities()


def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="database error") as info:
        open_store(tmp_path)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- migrations


def _schema_shape(engine: sa.Engine) -> dict[str, Any]:
    """What matters of a schema, comparable between a live database and MetaData."""
    insp = sa.inspect(engine)
    shape: dict[str, Any] = {}
    for table in insp.get_table_names():
        shape[table] = {
            "columns": {c["name"]: c["nullable"] for c in insp.get_columns(table)},
            "indexes": {i["name"]: tuple(i["column_names"]) for i in insp.get_indexes(table)},
            "unique": {
                u["name"]: tuple(u["column_names"]) for u in insp.get_unique_constraints(table)
            },
            "fks": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], f["options"].get("ondelete"))
                for f in insp.get_foreign_keys(table)
            ),
        }
    return shape


def _metadata_shape(md: sa.MetaData) -> dict[str, Any]:
    shape: dict[str, Any] = {}
    for table in md.sorted_tables:
        shape[table.name] = {
            "columns": {c.name: c.nullable for c in table.columns},
            "indexes": {i.name: tuple(c.name for c in i.columns) for i in table.indexes},
            "unique": {
                u.name: tuple(c.name for c in u.columns)
                for u in table.constraints
                if isinstance(u, sa.UniqueConstraint)
            },
            "fks": sorted(
                ((fk.parent.name,), fk.column.table.name, fk.ondelete) for fk in table.foreign_keys
            ),
        }
    return shape


def test_migrated_schema_matches_current_schema_module(store: Store) -> None:
    engine = make_engine(store.db_path)
    try:
        assert _schema_shape(engine) == _metadata_shape(current_schema.metadata)
    finally:
        engine.dispose()


def test_v1_database_is_migrated_on_open(tmp_path: Path) -> None:
    assert LATEST_VERSION >= 2
    db = tmp_path / DB_NAME
    engine = make_engine(db)
    assert migrate(engine, target=1) == [1]
    now = T0.isoformat(timespec="microseconds")
    with engine.begin() as conn:  # some data written by the v1 program
        conn.exec_driver_sql(
            "INSERT INTO athletes (name, profile, created_at) VALUES ('default', '{}', ?)", (now,)
        )
        conn.exec_driver_sql(
            "INSERT INTO activities (athlete_id, source, source_id, status, imported_at,"
            " updated_at) VALUES (1, 'local', 'old.fit', 'ok', ?, ?)",
            (now, now),
        )
    assert "ix_runs_start_time" not in {i["name"] for i in sa.inspect(engine).get_indexes("runs")}
    engine.dispose()

    with open_store(tmp_path) as store:
        assert store.schema_version() == LATEST_VERSION
        assert store.find_activity("default", "local", "old.fit") is not None
    with sqlite3.connect(db) as raw:
        versions = [r[0] for r in raw.execute("SELECT version FROM schema_migrations ORDER BY 1")]
        assert versions == list(range(1, LATEST_VERSION + 1))
        indexes = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "ix_runs_start_time" in indexes


def test_database_newer_than_program_is_refused(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    with sqlite3.connect(tmp_path / DB_NAME) as raw:
        raw.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 'x')",
            (LATEST_VERSION + 1,),
        )
    with pytest.raises(StoreSchemaError, match="upgrade evenstride"):
        open_store(tmp_path)


def test_failing_migration_step_is_rolled_back(tmp_path: Path) -> None:
    def broken(conn: sa.Connection) -> None:
        conn.exec_driver_sql("CREATE TABLE half_done (x INTEGER)")
        conn.exec_driver_sql("CREATE TABLE athletes (x INTEGER)")  # already exists: fails

    engine = make_engine(tmp_path / DB_NAME)
    try:
        steps = (*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "broken", broken))
        with pytest.raises(StoreSchemaError, match=r"migration v\d+ \(broken\) failed"):
            migrate(engine, steps=steps)
        tables = sa.inspect(engine).get_table_names()
        assert "half_done" not in tables  # the step's DDL was undone with it
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT max(version) FROM schema_migrations").scalar() == (
                LATEST_VERSION
            )
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- activities


def test_upsert_updates_in_place_on_same_source_id(store: Store) -> None:
    aid = _activity(store, "123", distance_m=5000.0, status="partial", reason="truncated file")
    first = store.get_activity(aid)
    again = _activity(store, "123", distance_m=5012.5, sha256=SHA_B, status="ok")
    assert again == aid
    row = store.get_activity(aid)
    assert (row["distance_m"], row["sha256"], row["status"], row["reason"]) == (
        5012.5,
        SHA_B,
        "ok",
        None,
    )
    assert row["imported_at"] == first["imported_at"]
    assert row["updated_at"] >= first["updated_at"]
    assert len(store.list_activities()) == 1

    # The key is (athlete, source, source_id): any other combination is another activity.
    other_source = _activity(store, "123", source="strava")
    other_athlete = _activity(store, "123", athlete="sam")
    assert len({aid, other_source, other_athlete}) == 3
    assert len(store.list_activities()) == 3


def test_activity_round_trip_types(store: Store) -> None:
    start = datetime(2024, 5, 1, 8, 30, tzinfo=timezone(timedelta(hours=2)))
    extra = {"summary_json": {"avg": 3.2, "bad": math.nan, "laps": [1, 2]}}
    aid = _activity(store, 42, start_time=start, extra=extra)  # int ids are accepted as text
    row = store.get_activity(aid)
    assert row["source_id"] == "42"
    assert row["start_time"] == start and row["start_time"].utcoffset() == timedelta(0)
    assert row["sensors"] == [{"name": "HRM-Pro Plus", "type": "heart_rate"}]
    assert row["extra"] == {"summary_json": {"avg": 3.2, "bad": None, "laps": [1, 2]}}
    assert row["athlete"] == "default"
    assert store.find_activity("default", "garmin", "42")["id"] == aid
    assert store.find_activity("default", "garmin", "43") is None
    assert store.find_activity("nobody", "garmin", "42") is None
    assert store.find_activity_by_sha("default", SHA_A)["id"] == aid
    assert store.find_activity_by_sha("default", SHA_B) is None


def test_get_missing_activity(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no activity with id 999"):
        store.get_activity(999)
    with pytest.raises(KeyError):
        store.get_activity(999)


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"status": "maybe"}, ValueError),
        ({"start_time": datetime(2024, 5, 1, 6, 30)}, ValueError),  # naive
        ({"sha256": "not-a-hash"}, ValueError),
        ({"source": ""}, ValueError),
        ({"distance_m": "far"}, TypeError),
    ],
)
def test_upsert_validates(store: Store, kw: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        _activity(store, "1", **kw)
    assert store.list_activities() == []


def test_status_check_constraint_in_database(store: Store) -> None:
    store.ensure_athlete()
    with (
        sqlite3.connect(store.db_path) as raw,
        pytest.raises(sqlite3.IntegrityError, match="CHECK"),
    ):
        raw.execute(
            "INSERT INTO activities (athlete_id, source, source_id, status, imported_at,"
            " updated_at) VALUES (1, 'local', 'x', 'bogus', 'x', 'x')"
        )


def test_list_activities_filters_and_order(store: Store) -> None:
    ids = {
        "late": _activity(store, "late", start_time=T0 + timedelta(days=2)),
        "nostart": _activity(store, "nostart", start_time=None, status="failed", reason="no data"),
        "early": _activity(store, "early", start_time=T0 - timedelta(days=2), source="strava"),
        "mid": _activity(store, "mid", start_time=T0, status="partial", reason="cut"),
        "sam": _activity(store, "sam", athlete="sam", start_time=T0),
    }

    def names(rows: list[dict[str, Any]]) -> list[str]:
        return [r["source_id"] for r in rows]

    assert names(store.list_activities("default")) == ["early", "mid", "late", "nostart"]
    assert names(store.list_activities()) == ["early", "mid", "sam", "late", "nostart"]
    assert names(store.list_activities("default", since=T0)) == ["mid", "late"]
    assert names(store.list_activities("default", until=T0)) == ["early"]
    assert names(store.list_activities(status="failed")) == ["nostart"]
    assert names(store.list_activities("default", status="partial")) == ["mid"]
    assert names(store.list_activities(source="strava")) == ["early"]
    assert store.list_activities("nobody") == []
    since_other_tz = (T0 + timedelta(days=1)).astimezone(timezone(timedelta(hours=-7)))
    assert names(store.list_activities(since=since_other_tz)) == ["late"]
    assert store.list_activities("sam")[0]["id"] == ids["sam"]
    with pytest.raises(ValueError):
        store.list_activities(status="nope")


# --------------------------------------------------------------------------- runs


def test_replace_runs_and_list_runs(store: Store) -> None:
    aid = _activity(store, "1")
    store.replace_runs(
        aid,
        [
            _run(0, T0, distance_m=3000.0, balance_median=50.8, cadence_median=172.0),
            _run(1, T0 + timedelta(hours=1), distance_m=math.nan),
        ],
    )
    runs = store.list_runs("default")
    assert [r["session_index"] for r in runs] == [0, 1]
    first = runs[0]
    assert first["start_time"] == T0
    assert (first["distance_m"], first["balance_median"], first["cadence_median"]) == (
        3000.0,
        50.8,
        172.0,
    )
    assert first["summary"] == {"balance_median": 50.4, "surface": "road", "n": 0}
    assert first["sensor"] == "HRM-Pro Plus"
    assert (first["activity_id"], first["athlete"], first["source"], first["status"]) == (
        aid,
        "default",
        "garmin",
        "ok",
    )
    assert runs[1]["distance_m"] is None  # NaN is stored as NULL

    store.replace_runs(aid, [_run(0, T0 + timedelta(minutes=5))])  # replaces, not appends
    assert [r["start_time"] for r in store.list_runs()] == [T0 + timedelta(minutes=5)]
    store.replace_runs(aid, [])
    assert store.list_runs() == []


def test_run_columns_default_to_summary_values(store: Store) -> None:
    aid = _activity(store, "1")
    summary = {
        "balance_median": 51.2,
        "d": 1.2,
        "surface": "trail",
        "pace_band": "easy",
        "cadence_median": "n/a",
        "laps": [{"balance_median": 49.0}],
    }
    store.replace_runs(aid, [{"session_index": 0, "summary": summary, "pace_band": "tempo"}])
    (run,) = store.list_runs()
    assert (run["balance_median"], run["d"], run["surface"]) == (51.2, 1.2, "trail")
    assert run["pace_band"] == "tempo"  # an explicit value wins over the summary's
    assert run["cadence_median"] is None  # not a number in the summary: column left empty
    assert run["summary"] == summary


def test_list_runs_filters_and_order(store: Store) -> None:
    a = _activity(store, "a")
    b = _activity(store, "b", status="partial", reason="cut")
    c = _activity(store, "c", athlete="sam")
    store.replace_runs(a, [_run(0, T0 + timedelta(days=1)), _run(1, None)])
    store.replace_runs(b, [_run(0, T0)])
    store.replace_runs(c, [_run(0, T0 - timedelta(days=1))])

    def keys(rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
        return [(r["source_id"], r["session_index"]) for r in rows]

    assert keys(store.list_runs()) == [("c", 0), ("b", 0), ("a", 0), ("a", 1)]
    assert keys(store.list_runs("default", since=T0)) == [("b", 0), ("a", 0)]
    assert keys(store.list_runs(status="partial")) == [("b", 0)]
    assert keys(store.list_runs(activity_id=a)) == [("a", 0), ("a", 1)]
    assert store.list_runs("nobody") == []


def test_replace_runs_validates_and_is_atomic(store: Store) -> None:
    aid = _activity(store, "1")
    store.replace_runs(aid, [_run(0)])
    with pytest.raises(ValueError, match="unknown run field"):
        store.replace_runs(aid, [_run(0, bogus=1.0)])
    with pytest.raises(ValueError, match="duplicate session_index"):
        store.replace_runs(aid, [_run(0), _run(0)])
    with pytest.raises(NotFoundError):
        store.replace_runs(999, [_run(0)])
    assert len(store.list_runs()) == 1  # the failed calls changed nothing


def test_deleting_activity_or_athlete_cascades(store: Store) -> None:
    a = _activity(store, "a")
    b = _activity(store, "b")
    store.replace_runs(a, [_run(0), _run(1)])
    store.replace_runs(b, [_run(0)])
    store.set_sync_state("default", "garmin", "cursor", "b")
    assert store.remove_activity(a) is True
    assert store.remove_activity(a) is False
    assert [r["activity_id"] for r in store.list_runs()] == [b]
    assert store.remove_athlete("default") is True
    assert store.list_activities() == [] and store.list_runs() == []
    assert store.get_sync_state("default", "garmin", "cursor") is None
    assert store.remove_athlete("default") is False
    assert store.integrity_check() == []


# --------------------------------------------------------------------------- athletes, sync state


def test_athletes(store: Store) -> None:
    assert store.list_athletes() == []
    first = store.ensure_athlete()
    assert store.ensure_athlete("default") == first
    sam = store.ensure_athlete("sam")
    assert sam != first
    store.update_athlete_profile("sam", {"dominant_leg": "right", "weekly_km": 40})
    got = store.get_athlete("sam")
    assert got is not None and got["id"] == sam
    assert got["profile"] == {"dominant_leg": "right", "weekly_km": 40}
    assert got["created_at"].tzinfo is not None
    store.update_athlete_profile("sam", {"weekly_km": 50})  # replaces, does not merge
    assert store.get_athlete("sam")["profile"] == {"weekly_km": 50}
    store.update_athlete_profile("new", {})  # creates on first use
    assert [a["name"] for a in store.list_athletes()] == ["default", "new", "sam"]
    assert store.get_athlete("nobody") is None


def test_sync_state_round_trip(store: Store) -> None:
    assert store.get_sync_state("default", "garmin", "last_id") is None
    assert store.get_sync_state("default", "garmin", "last_id", default="0") == "0"
    store.set_sync_state("default", "garmin", "last_id", "100")
    store.set_sync_state("default", "garmin", "last_id", "200")  # overwrite
    store.set_sync_state("default", "strava", "last_id", "s1")
    store.set_sync_state("sam", "garmin", "last_id", "sam1")
    assert store.get_sync_state("default", "garmin", "last_id") == "200"
    assert store.get_sync_state("default", "strava", "last_id") == "s1"
    assert store.get_sync_state("sam", "garmin", "last_id") == "sam1"
    assert store.delete_sync_state("default", "garmin", "last_id") == 1
    assert store.get_sync_state("default", "garmin", "last_id") is None
    assert store.get_sync_state("default", "strava", "last_id") == "s1"
    with pytest.raises(TypeError):
        store.set_sync_state("default", "garmin", "last_id", 5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.set_sync_state("default", "strava", "refresh_token", "abc"),
        lambda s: s.update_athlete_profile("default", {"garmin": {"password": "hunter2"}}),
        lambda s: _activity(s, "1", extra={"auth": [{"access_token": "abc"}]}),
        lambda s: s.replace_runs(_activity(s, "2"), [_run(0, summary={"api_key": "k"})]),
    ],
)
def test_secrets_are_never_stored(store: Store, write: Any) -> None:
    with pytest.raises(SecretRefusedError, match="keyring"):
        write(store)
    raw = store.db_path.read_bytes() + b"".join(
        p.read_bytes() for p in store.home.glob(DB_NAME + "-wal")
    )
    assert b"hunter2" not in raw and b"refresh_token" not in raw


# --------------------------------------------------------------------------- transactions


def test_transaction_commits_together_or_not_at_all(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        aid = _activity(store, "1")
        store.replace_runs(aid, [_run(0)])
        raise RuntimeError("decoder crashed")
    assert store.list_activities() == [] and store.list_runs() == []
    assert store.list_athletes() == []  # even the implicitly created athlete is gone

    with store.transaction() as same:
        assert same is store
        aid = _activity(store, "1")
        store.replace_runs(aid, [_run(0)])
        assert len(store.list_runs()) == 1  # reads inside see the uncommitted writes
    assert len(store.list_runs()) == 1


def test_nested_transaction_joins_outer(store: Store) -> None:
    with store.transaction():
        _activity(store, "kept")
        try:
            with store.transaction():
                _activity(store, "undone")
                raise ValueError("inner failure")
        except ValueError:
            pass
        with store.transaction():
            _activity(store, "inner ok")
        # Nothing is visible to another connection until the outer block commits.
        with sqlite3.connect(store.db_path) as raw:
            assert raw.execute("SELECT count(*) FROM activities").fetchone()[0] == 0
    assert [a["source_id"] for a in store.list_activities()] == ["kept", "inner ok"]


def test_second_writer_gets_clear_locked_error(tmp_path: Path) -> None:
    with open_store(tmp_path) as first, open_store(tmp_path, busy_timeout_s=0.2) as second:
        with first.transaction():
            _activity(first, "1")
            assert second.list_activities() == []  # WAL: readers are not blocked by the writer
            started = time.monotonic()
            with pytest.raises(StoreLockedError, match="locked by another process") as info:
                _activity(second, "2")
            assert time.monotonic() - started >= 0.15  # it waited before giving up
            assert "\n" not in str(info.value)
            assert isinstance(info.value, StoreError)
        assert _activity(second, "2")  # the lock is gone once the first commits


def test_second_writer_waits_for_the_first(tmp_path: Path) -> None:
    with open_store(tmp_path) as first, open_store(tmp_path, busy_timeout_s=10) as second:
        holding = threading.Event()

        def hold_lock() -> None:
            with first.transaction():
                _activity(first, "first")
                holding.set()
                time.sleep(0.3)

        thread = threading.Thread(target=hold_lock)
        thread.start()
        assert holding.wait(5)
        _activity(second, "second")  # blocks until the first commits, then succeeds
        thread.join()
        assert {a["source_id"] for a in second.list_activities()} == {"first", "second"}


def test_store_works_from_several_threads(store: Store) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                with store.transaction():
                    aid = _activity(store, f"{n}-{i}")
                    store.replace_runs(aid, [_run(0), _run(1)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.list_activities()) == 40 and len(store.list_runs()) == 80


# --------------------------------------------------------------------------- crash safety

_WRITE_FOREVER = """
import os, sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from evenstride.store import open_store

store = open_store(Path(sys.argv[1]))
seed = int(sys.argv[2])
t0 = datetime(2024, 1, 1, tzinfo=UTC)
print("ready", flush=True)
i = 0
while True:
    with store.transaction():
        for j in range(3):
            n = (seed + i + j) % 4 + 1
            sha = store.archive.put(os.urandom(3000))  # archived first, as ingest does
            # A fixed pool of source ids: most writes update an activity and replace its runs.
            aid = store.upsert_activity(
                "default", source="crash", source_id=str((i * 3 + j) % 25), sha256=sha,
                start_time=t0 + timedelta(minutes=i), status="ok", extra={"n_runs": n},
            )
            store.replace_runs(aid, [
                {"session_index": k, "start_time": t0, "distance_m": 1000.0 * k,
                 "summary": {"k": k, "pad": "x" * 500}}
                for k in range(n)
            ])
    i += 1
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_writer_leaves_a_consistent_database(tmp_path: Path) -> None:
    home = tmp_path / "home"
    rng = random.Random(20240501)
    seen: set[int] = set()
    for trial in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITE_FOREVER, str(home), str(trial)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.05, 0.4))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()

        with sqlite3.connect(home / DB_NAME) as raw:  # before our code touches the file
            assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        with open_store(home) as store:
            assert store.integrity_check() == []
            runs_by_activity: dict[int, list[int]] = {}
            for run in store.list_runs():
                runs_by_activity.setdefault(run["activity_id"], []).append(run["session_index"])
            for activity in store.list_activities():
                expected = activity["extra"]["n_runs"]
                got = sorted(runs_by_activity.get(activity["id"], []))
                assert got == list(range(expected)), (trial, activity["source_id"], got)
                assert store.archive.get(activity["sha256"])  # archived before it was recorded
                seen.add(activity["id"])
            for sha in store.archive.iter():
                store.archive.get(sha)
    assert seen, "the writer never committed anything; the test proved nothing"


def test_json_columns_are_plain_json_text(store: Store) -> None:
    aid = _activity(store, "1", extra={"b": 1, "a": [1.5, None]})
    store.replace_runs(aid, [_run(0)])
    with sqlite3.connect(store.db_path) as raw:
        extra, sensors, start = raw.execute(
            "SELECT extra, sensors, start_time FROM activities"
        ).fetchone()
        summary = raw.execute("SELECT summary FROM runs").fetchone()[0]
    assert json.loads(extra) == {"a": [1.5, None], "b": 1}
    assert json.loads(sensors)[0]["name"] == "HRM-Pro Plus"
    assert json.loads(summary)["n"] == 0
    assert start == "2024-05-01T06:30:00.000000+00:00"
