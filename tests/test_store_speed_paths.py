"""The import's fast paths give exactly what the plain paths gave.

Covers what the write side of an import skips or merges for speed: the one-walk JSON encoder, the
combined duplicate lookup, the per-transaction cache (athlete ids, activities known to exist or to
have no runs yet, keys known to be absent) and its invalidation, the stream-twin query limited to
stream sources, and the archive's reused (de)compressors and folder creation on demand.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import math
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zstandard

from evenstride.ingest import STREAM_SOURCES, Job, analyse, ingest_file, ingest_many
from evenstride.store import (
    DB_NAME,
    NotFoundError,
    RawArchive,
    SecretRefusedError,
    Store,
    StoreError,
    open_store,
)
from evenstride.store.archive import _LEVEL
from evenstride.store.db import _dumps, _jsonable, _refuse_secrets

T0 = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)
SHA_A = "a" * 64
SHA_B = "b" * 64
SYNTHETIC = Path(__file__).resolve().parents[1] / "fixtures" / "synthetic"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "home")
    yield s
    s.close()


def _activity(store: Store, source_id: str, athlete: str = "default", **kw: Any) -> int:
    args: dict[str, Any] = {"source": "garmin", "sha256": SHA_A, "start_time": T0, "status": "ok"}
    return store.upsert_activity(athlete, source_id=source_id, **{**args, **kw})


def _run(index: int, **summary: Any) -> dict[str, Any]:
    return {"session_index": index, "start_time": T0, "summary": {"n": index, **summary}}


# --------------------------------------------------------------------------- JSON


class _Opaque:
    pass


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [1.5, math.nan, None, True], "c": {"d": math.inf, "e": "é"}},
        {"t": (1, 2.0, (3, -math.inf)), "np": [np.float64(2.5), np.int64(3), np.float32("nan")]},
        {7: "int key", 2.5: "float key", False: "bool key", None: "none key"},
        OrderedDict([("z", date(2024, 5, 1)), ("y", T0), ("x", Path("/a/b"))]),
        {"s": {3, 1, 2}, "f": frozenset({"only"}), "na": float("nan")},
        [{"k": [{"deep": [1.0, {"deeper": math.nan}]}]}],
    ],
)
def test_one_walk_dumps_equals_the_reference_walks(value: Any) -> None:
    _refuse_secrets(value, "x")
    reference = json.dumps(_jsonable(value), ensure_ascii=False, sort_keys=True, allow_nan=False)
    assert _dumps(value, "x") == reference


@pytest.mark.parametrize(
    "value",
    [
        {"summary": {"splits": [{"access_token": "abc"}]}},
        [{"ok": 1}, ({"Api-Key": "k"},)],
        OrderedDict([("a", {"password": "x"})]),
        # a secret is refused even when a value that cannot be stored comes first
        {"a": _Opaque(), "b": {"refresh_token": "r"}},
    ],
)
def test_secrets_anywhere_are_refused(value: Any) -> None:
    with pytest.raises(SecretRefusedError, match="keyring"):
        _dumps(value, "a run summary")


def test_unstorable_value_without_secret_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="_Opaque"):
        _dumps({"a": [_Opaque()]}, "x")


# --------------------------------------------------------------------------- lookups


def test_find_duplicate_is_find_activity_else_find_activity_by_sha(store: Store) -> None:
    first = _activity(store, "1", sha256=SHA_B)
    second = _activity(store, "2", sha256=SHA_B)
    _activity(store, "1", athlete="sam", sha256=SHA_A)
    cases = [
        ("garmin", "2", SHA_A),  # by source id
        ("garmin", "2", SHA_B),  # source id wins over the (lower) sha match
        ("garmin", "9", SHA_B),  # the lowest id with this sha
        ("garmin", "9", SHA_A),  # SHA_A belongs to another athlete: nothing
        ("local", "1", "c" * 64),
    ]
    for source, source_id, sha in cases:
        expected = store.find_activity("default", source, source_id) or (
            store.find_activity_by_sha("default", sha)
        )
        assert store.find_duplicate("default", source, source_id, sha) == expected
    assert store.find_duplicate("default", "garmin", "9", SHA_B)["id"] == first
    assert store.find_duplicate("default", "garmin", "2", SHA_B)["id"] == second
    assert store.find_duplicate("nobody", "garmin", "1", SHA_B) is None


def test_list_activities_accepts_several_sources(store: Store) -> None:
    for source in ("garmin", "strava", "local"):
        _activity(store, "1", source=source)
    assert [a["source"] for a in store.list_activities(source=("strava", "local"))] == [
        "strava",
        "local",
    ]
    assert [a["source"] for a in store.list_activities(source={"strava"})] == ["strava"]
    assert [a["source"] for a in store.list_activities(source="garmin")] == ["garmin"]
    assert store.list_activities(source=[]) == []
    assert len(store.list_activities()) == 3


# --------------------------------------------------------------------------- the transaction cache


def test_activity_undone_by_a_savepoint_is_not_found_again(store: Store) -> None:
    with store.transaction():
        with pytest.raises(RuntimeError), store.transaction():
            aid = _activity(store, "undone")
            raise RuntimeError("inner failure")
        with pytest.raises(NotFoundError):
            store.replace_runs(aid, [_run(0)])
        kept = _activity(store, "kept")
        store.replace_runs(kept, [_run(0)])
    assert [a["source_id"] for a in store.list_activities()] == ["kept"]
    assert len(store.list_runs()) == 1 and store.integrity_check() == []


def test_removed_activity_and_athlete_are_forgotten_within_the_transaction(store: Store) -> None:
    with store.transaction():
        aid = _activity(store, "1")
        assert store.remove_activity(aid)
        with pytest.raises(NotFoundError):
            store.replace_runs(aid, [_run(0)])
        old_athlete = store.ensure_athlete("default")
        assert store.remove_athlete("default")
        again = _activity(store, "2")  # the athlete is created anew, not found in a stale cache
        store.replace_runs(again, [_run(0)])
    assert store.ensure_athlete("default") != old_athlete
    assert [(r["athlete"], r["source_id"]) for r in store.list_runs()] == [("default", "2")]
    assert store.integrity_check() == []


def test_new_athlete_undone_with_its_activity_is_created_again(store: Store) -> None:
    with store.transaction():
        with pytest.raises(RuntimeError), store.transaction():
            _activity(store, "1", athlete="sam")
            raise RuntimeError("inner failure")
        _activity(store, "2", athlete="sam")
    assert [a["source_id"] for a in store.list_activities("sam")] == ["2"]


def test_runs_of_a_new_activity_are_replaced_not_added(store: Store) -> None:
    with store.transaction():
        assert store.find_duplicate("default", "garmin", "1", SHA_A) is None
        aid = _activity(store, "1")
        assert _activity(store, "1", distance_m=5000.0) == aid  # the absent key is now taken
        store.replace_runs(aid, [_run(0), _run(1)])
        store.replace_runs(aid, [_run(0, again=True)])
    runs = store.list_runs()
    assert [(r["activity_id"], r["summary"]) for r in runs] == [(aid, {"n": 0, "again": True})]
    assert store.get_activity(aid)["distance_m"] == 5000.0
    assert len(store.list_activities()) == 1


def test_cache_does_not_outlive_its_transaction(tmp_path: Path) -> None:
    with open_store(tmp_path / "home") as first, open_store(tmp_path / "home") as second:
        with first.transaction():
            _activity(first, "1", athlete="sam")
        second.remove_athlete("sam")
        second.ensure_athlete("other")
        second.ensure_athlete("sam")  # a new id
        with first.transaction():
            assert first.find_duplicate("sam", "garmin", "1", SHA_A) is None
            aid = _activity(first, "1", athlete="sam")
            first.replace_runs(aid, [_run(0)])
        assert [r["athlete"] for r in second.list_runs()] == ["sam"]
        assert first.integrity_check() == []


def test_several_threads_keep_their_own_caches(store: Store) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(5):
                with store.transaction():
                    source_id = f"{n}-{i}"
                    sha = hashlib.sha256(source_id.encode()).hexdigest()
                    assert store.find_duplicate(f"a{n}", "garmin", source_id, sha) is None
                    aid = _activity(store, source_id, athlete=f"a{n}", sha256=sha)
                    store.replace_runs(aid, [_run(0), _run(1)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.list_activities()) == 15 and len(store.list_runs()) == 30


# --------------------------------------------------------------------------- stream twins


def test_fit_import_supersedes_only_stream_twins(store: Store) -> None:
    data = (SYNTHETIC / "steady_left_51_2.fit").read_bytes()
    fields = analyse(data).fields
    assert fields is not None and fields["start_time"] is not None
    start, duration = fields["start_time"], fields["duration_s"]
    stream = STREAM_SOURCES[0]
    near = {"start_time": start + timedelta(seconds=40), "duration_s": duration + 20}
    twin = _activity(store, "s1", source=stream, sha256=None, extra={"k": 1}, **near)
    store.replace_runs(twin, [_run(0)])
    other = _activity(store, "g1", source="garmin", sha256=None, **near)
    far = _activity(store, "s2", source=stream, sha256=None, start_time=start + timedelta(hours=1))

    result = ingest_file(store, data, source="file", file_name="steady_left_51_2.fit")
    assert result.status == "imported"
    assert store.get_activity(twin)["extra"] == {"k": 1, "duplicate_of": result.activity_id}
    assert store.list_runs(activity_id=twin) == []
    assert store.get_activity(other)["extra"] is None
    assert store.get_activity(far)["extra"] is None


# --------------------------------------------------------------------------- archive


def test_reused_compressors_write_plain_level_3_frames_from_several_threads(
    tmp_path: Path,
) -> None:
    archive = RawArchive(tmp_path / "raw")
    blobs = [bytes([n]) * 5000 + n.to_bytes(2, "big") * 3000 for n in range(12)]

    def put(chunk: list[bytes]) -> None:
        for blob in chunk:
            archive.put(blob)

    threads = [threading.Thread(target=put, args=(blobs[i::3],)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for blob in blobs:
        sha = hashlib.sha256(blob).hexdigest()
        assert archive.path(sha).read_bytes() == zstandard.ZstdCompressor(level=_LEVEL).compress(
            blob
        )
        assert archive.get(sha) == blob


def test_put_recreates_a_removed_folder_privately(tmp_path: Path) -> None:
    archive = RawArchive(tmp_path / "raw")
    sha = archive.put(b"first")
    folder = archive.path(sha).parent
    archive.path(sha).unlink()
    folder.rmdir()
    assert archive.put(b"first") == sha
    assert folder.stat().st_mode & 0o777 == 0o700
    assert archive.path(sha).stat().st_mode & 0o777 == 0o600
    assert archive.get(sha) == b"first"


def test_corrupt_legacy_copy_is_replaced_by_a_zstd_one(tmp_path: Path) -> None:
    archive = RawArchive(tmp_path / "raw")
    data = b"an older archive wrote gzip, then the disk flipped a bit"
    sha = hashlib.sha256(data).hexdigest()
    legacy = archive.path(sha).with_suffix(".gz")
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(gzip.compress(data)[:-4])
    assert archive.put(data) == sha
    assert not legacy.exists() and archive.get(sha) == data


def test_copies_archived_at_an_older_level_still_read(tmp_path: Path) -> None:
    """The level changed from 3 to 1 (now -3), and FIT files are now stored as they are (`.fit`):
    `.zst` copies written before stay readable and are kept, with no `.fit` written beside them."""
    archive = RawArchive(tmp_path / "raw")
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "synthetic"
    data = (fixtures / "steady_left_51_2.fit").read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    path = archive.path(sha)
    path.parent.mkdir(parents=True)
    old = zstandard.ZstdCompressor(level=3).compress(data)
    assert old != zstandard.ZstdCompressor(level=_LEVEL).compress(data)
    path.write_bytes(old)
    assert archive.get(sha) == data
    assert archive.put(data) == sha and path.read_bytes() == old  # intact: not rewritten
    assert not path.with_suffix(".fit").exists() and archive.path(sha) == path


# --------------------------------------------------------------------------- JSON without the walk


class _Key(str):
    def __str__(self) -> str:  # json.dumps writes the text itself, `_plain` used str(): walk it
        return "renamed"


class _Colour(StrEnum):
    RED = "red"


class _Level(IntEnum):
    HIGH = 3


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [1.5, None, True, "x"], "c": {"d": -0.0, "e": 'é\n"', "f": 10**30}},
        {"n": {"deep": [1.0, {"deeper": math.nan}]}},  # plain, but a NaN: stored as null
        [{"inf": math.inf}, -math.inf],
        {_Key("k"): 1},
        {"c": _Colour.RED, "l": _Level.HIGH, "f": np.float64(2.5), "g": np.float64("nan")},
        {"t": (1, 2), "s": "plain"},
        [],
        {},
    ],
)
def test_plain_values_are_dumped_exactly_as_the_reference_walk(value: Any) -> None:
    reference = json.dumps(_jsonable(value), ensure_ascii=False, sort_keys=True, allow_nan=False)
    assert _dumps(value, "x") == reference


def test_run_summaries_are_dumped_exactly_as_the_reference_walk() -> None:
    values: list[Any] = []
    for path in sorted(SYNTHETIC.rglob("*.fit")):
        analysis = analyse(path.read_bytes())
        if analysis.fields is not None:
            values.append(list(analysis.fields["sensors"]))
        values += [row["summary"] for row in analysis.rows]
    assert len(values) > 5
    for value in values:
        reference = json.dumps(_jsonable(value), ensure_ascii=False, sort_keys=True)
        assert _dumps(value, "x") == reference


def test_a_secret_in_a_plain_value_is_refused_naming_the_same_key() -> None:
    value = {"ok": 1, "splits": [{"pace": 1.0}, {"Refresh-Token": "r"}], "password": "p"}
    with pytest.raises(SecretRefusedError) as walked:
        _refuse_secrets(value, "a run summary")
    with pytest.raises(SecretRefusedError) as dumped:
        _dumps(value, "a run summary")
    assert str(dumped.value) == str(walked.value)


# --------------------------------------------------------------------------- direct SQL


def _table_rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, without the columns that hold the time of the write."""
    skip = {"imported_at", "updated_at", "created_at", "applied_at"}
    con = sqlite3.connect(db)
    try:
        out = {}
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in sorted(tables):
            cur = con.execute(f"SELECT * FROM {table} ORDER BY rowid")
            keep = [i for i, d in enumerate(cur.description) if d[0] not in skip]
            out[table] = [tuple(row[i] for i in keep) for row in cur]
        return out
    finally:
        con.close()


def _without_times(d: dict[str, Any] | None) -> dict[str, Any] | None:
    return (
        None
        if d is None
        else {k: v for k, v in d.items() if k not in ("imported_at", "updated_at")}
    )


def _import_session(store: Store) -> list[Any]:
    """The write path's cases: stream twins, failures, duplicates, forced updates, two athletes."""
    seen: list[Any] = []
    files = sorted(SYNTHETIC.glob("*.fit"))
    fields = analyse(files[0].read_bytes()).fields
    assert fields is not None
    twin = _activity(
        store, "s1", source=STREAM_SOURCES[0], sha256=None, start_time=fields["start_time"],
        duration_s=fields["duration_s"],
    )  # fmt: skip
    store.replace_runs(twin, [_run(0)])
    jobs = [Job(p.read_bytes(), source="file", source_id=p.name, file_name=p.name) for p in files]
    jobs.append(Job(b"not a FIT file", source="file", source_id="junk", file_name="junk.fit"))
    for athlete in ("default", "sam"):
        seen += [r.to_dict() for r in ingest_many(store, jobs, athlete=athlete, workers=1)]
    seen += [r.to_dict() for r in ingest_many(store, jobs[:3], workers=1)]  # duplicates
    seen += [r.to_dict() for r in ingest_many(store, jobs[:3], workers=1, force=True)]
    with store.transaction():  # reads inside a write transaction take the direct path
        for athlete in ("default", "sam", "nobody"):
            for source in (None, "file", STREAM_SOURCES[0], ("file", "garmin"), ()):
                acts = store.list_activities(athlete, source=source)
                seen.append([_without_times(a) for a in acts])
            seen.append(
                [
                    _without_times(a)
                    for a in store.list_activities(
                        athlete, since=T0 - timedelta(days=3650), until=T0, status="ok"
                    )
                ]
            )
        for job in jobs:
            sha = hashlib.sha256(job.data or b"").hexdigest()
            found = store.find_duplicate("default", "file", job.source_id or sha, sha)
            seen.append(_without_times(found))
            seen.append(_without_times(store.find_duplicate("sam", "x", "y", sha)))
    return seen


def test_direct_sql_stores_and_reads_exactly_what_core_does(tmp_path: Path) -> None:
    with open_store(tmp_path / "direct") as direct, open_store(tmp_path / "core") as core:
        assert direct._direct is not None
        core._direct = None  # every statement through SQLAlchemy Core, as before
        seen_direct = _import_session(direct)
        seen_core = _import_session(core)
        assert seen_direct == seen_core
        assert any(r.get("status") == "failed" for r in seen_direct if isinstance(r, dict))
        assert direct.integrity_check() == []
    assert _table_rows(tmp_path / "direct" / DB_NAME) == _table_rows(tmp_path / "core" / DB_NAME)


def test_reads_in_a_transaction_equal_reads_outside(store: Store) -> None:
    ids = [_activity(store, str(i), start_time=T0 + timedelta(hours=i)) for i in range(3)]
    store.replace_runs(ids[0], [_run(0), _run(1)])
    _activity(store, "s", source="strava", extra={"x": [1, None]}, sensors=[{"name": "hrm"}])
    queries: list[tuple[str, dict[str, Any]]] = [
        ("list", {}),
        ("list", {"athlete": "default", "source": ("strava", "garmin")}),
        ("list", {"athlete": "default", "since": T0 + timedelta(minutes=30), "until": T0 + timedelta(hours=5)}),
        ("list", {"athlete": "default", "source": "strava", "status": "ok"}),
        ("dup", {"athlete": "default", "source": "garmin", "source_id": "2", "sha256": SHA_B}),
        ("dup", {"athlete": "default", "source": "garmin", "source_id": "9", "sha256": SHA_A}),
    ]  # fmt: skip

    def run(kind: str, kw: dict[str, Any]) -> Any:
        if kind == "list":
            return store.list_activities(**kw)
        return store.find_duplicate(**kw)

    outside = [run(k, kw) for k, kw in queries]
    with store.transaction():
        inside = [run(k, kw) for k, kw in queries]
    assert inside == outside and outside[0]


def test_known_absent_stream_source_is_forgotten_once_one_is_written(store: Store) -> None:
    window = {"since": T0 - timedelta(hours=1), "until": T0 + timedelta(hours=1)}
    _activity(store, "g")
    with store.transaction():
        assert store.list_activities("default", source=STREAM_SOURCES, **window) == []
        aid = _activity(store, "s1", source=STREAM_SOURCES[0])
        assert [
            a["id"] for a in store.list_activities("default", source=STREAM_SOURCES, **window)
        ] == [aid]
        assert store.list_activities("sam", source=STREAM_SOURCES) == []
        _activity(store, "s1", athlete="sam", source=STREAM_SOURCES[0])
        assert len(store.list_activities("sam", source=STREAM_SOURCES)) == 1
        with pytest.raises(RuntimeError), store.transaction():
            _activity(store, "s2", athlete="kim", source=STREAM_SOURCES[0])
            raise RuntimeError("undone")
        assert store.list_activities("kim", source=STREAM_SOURCES) == []
        _activity(store, "s3", athlete="kim", source=STREAM_SOURCES[0])
        assert len(store.list_activities("kim", source=STREAM_SOURCES)) == 1
    assert len(store.list_activities(source=STREAM_SOURCES)) == 3


def test_a_database_error_on_the_direct_path_is_one_line_and_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite answers SQLITE_FULL (database or disk is full), as on a full disk."""
    connections: list[sqlite3.Connection] = []
    real_connect = sqlite3.dbapi2.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)
        connections.append(conn)
        return conn

    monkeypatch.setattr(sqlite3.dbapi2, "connect", connect)
    with open_store(tmp_path / "home") as store:
        kept = _activity(store, "kept")
        big = {"summary": {"blob": "x" * 200_000}}
        with pytest.raises(StoreError) as info, store.transaction():
            aid = _activity(store, "new")
            for conn in connections:
                with contextlib.suppress(sqlite3.ProgrammingError):
                    conn.execute("PRAGMA max_page_count = 1")  # the file may not grow
            store.replace_runs(aid, [{"session_index": 0, **big}])
        assert "database or disk is full" in str(info.value) and "\n" not in str(info.value)
        for conn in connections:
            with contextlib.suppress(sqlite3.ProgrammingError):
                conn.execute("PRAGMA max_page_count = 1073741823")
        assert [a["id"] for a in store.list_activities()] == [kept]
        assert store.integrity_check() == []
