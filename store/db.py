"""All SQL of evenstride, behind the `Store` class (SQLAlchemy Core, no ORM).

Nothing outside this package builds queries, so a server database (PostgreSQL, for teams) only
needs another `make_engine` here. SQLite specifics are confined to `make_engine` (pragmas, BEGIN
IMMEDIATE), `Store.integrity_check` and `_Direct`, which runs the import path's statements on the
SQLite cursor inside write transactions (other dialects run them through Core); the queries
themselves are portable Core.

Values crossing this boundary are plain Python: tz-aware datetimes (stored as ISO-8601 UTC text
that sorts correctly), dicts/lists (stored as JSON text) and floats (NaN stored as NULL).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from evenstride.store import migrations
from evenstride.store.archive import RawArchive, make_private_dir
from evenstride.store.errors import (
    NotFoundError,
    SecretRefusedError,
    StoreClosedError,
    StoreError,
    StoreLockedError,
)
from evenstride.store.schema import (
    RUN_NUMERIC_COLUMNS,
    RUN_TEXT_COLUMNS,
    STATUSES,
    activities,
    athletes,
    runs,
    sync_state,
)

DB_NAME = "evenstride.sqlite3"
ARCHIVE_DIR = "raw"
DEFAULT_BUSY_TIMEOUT_S = 30.0
BUSY_TIMEOUT_ENV = "EVENSTRIDE_DB_BUSY_TIMEOUT_S"  # seconds to wait for another writer's lock
_BEGIN_OPTION = "evenstride_begin"  # execution option: "IMMEDIATE" (writes) or "DEFERRED" (reads)


# --------------------------------------------------------------------------- engine


def make_engine(db_path: Path, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> sa.Engine:
    """SQLite engine with WAL, foreign keys, a busy timeout and BEGIN IMMEDIATE write transactions.

    pysqlite's own transaction handling begins too late (at the first INSERT), which lets two
    writers deadlock on lock upgrade; we switch it off and emit BEGIN ourselves, so a second writer
    waits for the busy timeout at the start of its transaction instead.
    """
    engine = sa.create_engine(
        sa.URL.create("sqlite+pysqlite", database=str(db_path)),
        connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
    )
    busy_ms = max(0, int(busy_timeout_s * 1000))

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute("PRAGMA journal_mode = WAL")
            # FULL: a committed import survives power loss too, not just a killed process.
            cur.execute("PRAGMA synchronous = FULL")
        finally:
            cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _is_locked(orig: BaseException | None) -> bool:
    name = getattr(orig, "sqlite_errorname", "") or ""
    text = str(orig)
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "is locked" in text


@contextlib.contextmanager
def _translated(db_path: Path, busy_timeout_s: float) -> Iterator[None]:
    """Turn driver exceptions into StoreError subclasses with a one-line message."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        # SQLite rolls the whole transaction back on some errors (SQLITE_FULL, SQLITE_IOERR), so
        # the ROLLBACK TO SAVEPOINT that follows fails ("no such savepoint") and would hide the
        # real cause: report the earliest database error of the chain.
        first: sa.exc.DBAPIError = exc
        link = exc.__context__
        while link is not None:
            if isinstance(link, sa.exc.DBAPIError):
                first = link
            link = link.__context__
        orig = first.orig
        if _is_locked(orig):
            raise StoreLockedError(
                f"the database {db_path} is locked by another process (waited "
                f"{busy_timeout_s:g} s); try again when it has finished"
            ) from exc
        first_line = (str(orig).splitlines() or [type(orig).__name__])[0]
        raise StoreError(f"database error on {db_path}: {first_line}") from exc


# --------------------------------------------------------------------------- value helpers

_SECRET_NAMES = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "oauthtoken",
        "bearer",
        "apikey",
        "authorization",
        "cookie",
        "cookies",
        "sessioncookie",
    }
)


_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@functools.lru_cache(maxsize=4096)  # the same few hundred summary keys come with every run
def _is_secret_name(name: str) -> bool:
    norm = _NOT_ALNUM.sub("", name.lower())
    return norm in _SECRET_NAMES or norm.endswith(("password", "secret", "accesstoken"))


def _secret_refused(key: str, where: str) -> SecretRefusedError:
    return SecretRefusedError(
        f"refusing to store {key!r} in {where}: credentials belong in the OS keyring"
    )


def _refuse_secrets(value: Any, where: str) -> None:
    """Refuse credential-looking keys anywhere in a JSON value: tokens belong in the keyring."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and _is_secret_name(key):
                raise _secret_refused(key, where)
            _refuse_secrets(item, where)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_secrets(item, where)


def _jsonable(value: Any) -> Any:
    """Plain JSON types: NaN/inf become null, numpy scalars and datetimes are converted."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if type(value).__name__ in ("NaTType", "NAType"):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return _jsonable(value.item())
    raise TypeError(f"cannot store a {type(value).__name__} as JSON: {value!r}")


_SCALARS = frozenset({str, int, bool, type(None)})  # stored as they are


def _plain(value: Any, where: str) -> Any:
    """`_refuse_secrets` and `_jsonable` in one walk, fast for the plain dicts and lists we store.

    Anything but exact str/int/bool/float/None/dict/list/tuple goes to the two reference walks,
    so odd types (numpy scalars, Mapping subclasses, sets...) are handled exactly as they define.
    Scalars inside dicts and lists are done inline: a run summary has hundreds of them.
    """
    cls = type(value)
    if cls in _SCALARS:
        return value
    if cls is float:
        return value if math.isfinite(value) else None
    if cls is dict:
        out = {}
        for key, item in value.items():
            if isinstance(key, str) and _is_secret_name(key):
                raise _secret_refused(key, where)
            kind = type(item)
            if kind in _SCALARS:
                out[str(key)] = item
            elif kind is float:
                out[str(key)] = item if math.isfinite(item) else None
            else:
                out[str(key)] = _plain(item, where)
        return out
    if cls is list or cls is tuple:
        items = []
        for item in value:
            kind = type(item)
            if kind in _SCALARS:
                items.append(item)
            elif kind is float:
                items.append(item if math.isfinite(item) else None)
            else:
                items.append(_plain(item, where))
        return items
    _refuse_secrets(value, where)
    return _jsonable(value)


_AS_IS = frozenset({str, int, float, bool, type(None)})  # json.dumps writes them as _plain would
_SAFE_KEYS: set[str] = set()  # dict keys found not to be secret names (the summaries' few hundred)
_SAFE_KEYS_MAX = 4096
_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True, allow_nan=False).encode


def _is_plain(value: Any) -> bool:
    """Only exact dicts with str keys, lists and str/int/float/bool/None, and no secret key?

    Then json.dumps of the value itself is what `_plain` + json.dumps would store (a NaN or an
    infinity makes it fail, and `_dumps` takes the walk): it only checks types and keys, never
    copies. Every run summary is such a value. A secret key answers False, so the walk reports
    it exactly as before.
    """
    cls = type(value)
    if cls is dict:
        for key in value:
            if type(key) is not str:
                return False
        if not _SAFE_KEYS.issuperset(value):
            for key in value:
                if _is_secret_name(key):
                    return False
                if len(_SAFE_KEYS) < _SAFE_KEYS_MAX:
                    _SAFE_KEYS.add(key)
        items = value.values()
    elif cls is list:
        items = value
    else:
        return cls in _AS_IS
    for item in items:
        kind = type(item)
        if kind not in _AS_IS and not ((kind is dict or kind is list) and _is_plain(item)):
            return False
    return True


def _dumps(value: Any, where: str) -> str:
    """JSON text of `value` (sorted keys, NaN as null); SecretRefusedError for credential keys."""
    if _is_plain(value):
        try:
            return _encode(value)
        except ValueError:  # a NaN or an infinity somewhere: the walk turns it into null
            pass
    try:
        plain = _plain(value, where)
    except TypeError:
        _refuse_secrets(value, where)  # a secret anywhere is refused before any type complaint
        raise
    return _encode(plain)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _iso(value: datetime | None, field: str) -> str | None:
    """ISO-8601 UTC text of a tz-aware datetime (pandas Timestamps accepted)."""
    if value is None or type(value).__name__ == "NaTType":
        return None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        raise TypeError(f"{field} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field} must be timezone-aware (got naive {value.isoformat()})")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _num(value: Any, field: str) -> float | None:
    if value is None or type(value).__name__ in ("NaTType", "NAType"):
        return None
    if isinstance(value, bool):
        raise TypeError(f"{field} must be a number, got a bool")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{field} must be a number, got {value!r}") from None
    return number if math.isfinite(number) else None


def _text(value: Any, field: str, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise ValueError(f"{field} is required")
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # e.g. a Garmin activity id
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a string, got {type(value).__name__}")
    if required and not value:
        raise ValueError(f"{field} must not be empty")
    return value


def _status(value: str) -> str:
    if value not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {value!r}")
    return value


def _sha(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _SHA256.fullmatch(value.lower()):
        raise ValueError(f"sha256 must be 64 hex digits, got {value!r}")
    return value.lower()


_RUN_FIELDS = frozenset(
    {
        "session_index",
        "start_time",
        "sport",
        "sub_sport",
        "sensor",
        "summary",
        *RUN_TEXT_COLUMNS,
        *RUN_NUMERIC_COLUMNS,
    }
)


def _run_row(activity_id: int, run: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one run dict into a row; query columns missing from it are copied from summary."""
    unknown = set(run) - _RUN_FIELDS
    if unknown:
        raise ValueError(
            f"unknown run field(s) {sorted(unknown)}: put them in 'summary' "
            f"or add a column (store.schema + a migration)"
        )
    if "session_index" not in run:
        raise ValueError("every run needs a session_index")
    summary = run.get("summary") or {}
    if not isinstance(summary, Mapping):
        raise TypeError(f"run summary must be a dict, got {type(summary).__name__}")
    row: dict[str, Any] = {
        "activity_id": activity_id,
        "session_index": int(run["session_index"]),
        "start_time": _iso(run.get("start_time"), "run start_time"),
        "sport": _text(run.get("sport"), "run sport"),
        "sub_sport": _text(run.get("sub_sport"), "run sub_sport"),
        "sensor": _text(run.get("sensor"), "run sensor"),
        "summary": _dumps(summary, "a run summary"),
    }
    for name in RUN_TEXT_COLUMNS:
        if name in run:
            row[name] = _text(run[name], f"run {name}")
        else:
            found = summary.get(name)
            row[name] = found if isinstance(found, str) else None
    for name in RUN_NUMERIC_COLUMNS:
        if name in run:
            row[name] = _num(run[name], f"run {name}")
        else:  # lenient: a summary value of another type just leaves the column empty
            try:
                row[name] = _num(summary.get(name), name)
            except TypeError:
                row[name] = None
    return row


def _activity_dict(row: sa.Row | Mapping[str, Any]) -> dict[str, Any]:
    d = dict(row._mapping if isinstance(row, sa.Row) else row)  # a Row, or _Core/_Direct's rows
    d["start_time"] = _parse(d["start_time"])
    d["imported_at"] = _parse(d["imported_at"])
    d["updated_at"] = _parse(d["updated_at"])
    d["sensors"] = _loads(d["sensors"])
    d["extra"] = _loads(d["extra"])
    return d


def _run_dict(row: sa.Row) -> dict[str, Any]:
    d = dict(row._mapping)
    d["start_time"] = _parse(d["start_time"])
    d["summary"] = _loads(d["summary"])
    return d


def _athlete_dict(row: sa.Row) -> dict[str, Any]:
    d = dict(row._mapping)
    d["profile"] = _loads(d["profile"])
    d["created_at"] = _parse(d["created_at"])
    return d


_ACTIVITY_FILTERS = ("athlete", "since", "until", "status", "source")
_ACTIVITY_SELECT = sa.select(activities, athletes.c.name.label("athlete")).join_from(
    activities, athletes
)
_RUN_SELECT = (
    sa.select(
        runs,
        athletes.c.name.label("athlete"),
        activities.c.source,
        activities.c.source_id,
        activities.c.status,
        activities.c.sha256,
        activities.c.device,
    )
    .join_from(runs, activities)
    .join(athletes)
)

# The statements of the import path, built once: SQLAlchemy then reuses their compiled form,
# where building one per call cost more than SQLite takes to run it.
_bp = sa.bindparam
_ATHLETE_ID = sa.select(athletes.c.id).where(athletes.c.name == _bp("name"))
_INSERT_ATHLETE = athletes.insert()
_ACTIVITY_ID = sa.select(activities.c.id).where(
    activities.c.athlete_id == _bp("athlete_id"),
    activities.c.source == _bp("source"),
    activities.c.source_id == _bp("source_id"),
)
_ACTIVITY_EXISTS = sa.select(activities.c.id).where(activities.c.id == _bp("activity_id"))
_INSERT_ACTIVITY = activities.insert()
_UPDATE_ACTIVITY = activities.update().where(activities.c.id == _bp("activity_id"))
_DELETE_RUNS = runs.delete().where(runs.c.activity_id == _bp("activity_id"))
_INSERT_RUNS = runs.insert()
_GET_ACTIVITY = _ACTIVITY_SELECT.where(activities.c.id == _bp("activity_id"))
_FIND_BY_SOURCE = _ACTIVITY_SELECT.where(
    athletes.c.name == _bp("athlete"),
    activities.c.source == _bp("source"),
    activities.c.source_id == _bp("source_id"),
)
_FIND_BY_SHA = _ACTIVITY_SELECT.where(
    athletes.c.name == _bp("athlete"), activities.c.sha256 == _bp("sha256")
).order_by(activities.c.id)


def _find_duplicate_query() -> sa.Select:
    """_FIND_BY_SOURCE, else the first of _FIND_BY_SHA, as one lookup by primary key.

    Each branch is a scalar subquery on its own index (an OR of the two conditions would make
    SQLite scan all of the athlete's activities).
    """
    other = activities.alias("other")
    athlete_id = (
        sa.select(athletes.c.id)
        .where(athletes.c.name == _bp("athlete"))
        .correlate(None)
        .scalar_subquery()
    )
    by_source = sa.select(other.c.id).where(
        other.c.athlete_id == athlete_id,
        other.c.source == _bp("source"),
        other.c.source_id == _bp("source_id"),
    )
    by_sha = sa.select(sa.func.min(other.c.id)).where(
        other.c.athlete_id == athlete_id, other.c.sha256 == _bp("sha256")
    )
    return _ACTIVITY_SELECT.where(
        activities.c.id == sa.func.coalesce(by_source.scalar_subquery(), by_sha.scalar_subquery())
    )


_FIND_DUPLICATE = _find_duplicate_query()


@functools.cache
def _activities_query(
    athlete: bool, since: bool, until: bool, status: bool, source: bool, n_sources: int | None
) -> sa.Select:
    """The `list_activities` statement for one combination of filters, built once.

    Several sources get one parameter each (source_0, ...): an expanding IN would be rewritten
    on every execution.
    """
    query = _ACTIVITY_SELECT
    if athlete:
        query = query.where(athletes.c.name == _bp("athlete"))
    if since:
        query = query.where(activities.c.start_time >= _bp("since"))
    if until:
        query = query.where(activities.c.start_time < _bp("until"))
    if status:
        query = query.where(activities.c.status == _bp("status"))
    if source:
        query = query.where(activities.c.source == _bp("source"))
    if n_sources == 0:
        query = query.where(sa.false())
    elif n_sources is not None:
        names = [_bp(f"source_{i}") for i in range(n_sources)]
        query = query.where(activities.c.source.in_(names))
    return query.order_by(activities.c.start_time.asc().nulls_last(), activities.c.id)


# An athlete has no activity from this source: true when checked, kept true by `_write_activity`.
_SOURCE_EXISTS = (
    sa.select(activities.c.id)
    .join_from(activities, athletes)
    .where(athletes.c.name == _bp("athlete"), activities.c.source == _bp("source"))
    .limit(1)
)


class _TxCache:
    """What one write transaction has already established, so later writes in it skip lookups.

    Sound because the transaction holds the write lock (BEGIN IMMEDIATE): no other connection can
    change these rows meanwhile. Cleared when anything inside fails (a savepoint, or SQLite itself,
    may have rolled writes back) and by deletions; it dies with its transaction.
    """

    __slots__ = ("absent_keys", "absent_sources", "activity_ids", "athlete_ids", "runless_ids")

    def __init__(self) -> None:
        self.athlete_ids: dict[str, int] = {}
        self.activity_ids: set[int] = set()  # activities that exist
        self.runless_ids: set[int] = set()  # inserted by this transaction, no runs written yet
        # (athlete, source, source_id) that find_duplicate saw missing and nobody inserted since
        self.absent_keys: set[tuple[Any, Any, str]] = set()
        # (athlete, source) without any activity: a FIT import's look for stream twins needs no
        # query per file when the athlete has no Strava runs
        self.absent_sources: set[tuple[str, str]] = set()

    def clear(self) -> None:
        self.athlete_ids.clear()
        self.activity_ids.clear()
        self.runless_ids.clear()
        self.absent_keys.clear()
        self.absent_sources.clear()


class _Compiled:
    """One statement compiled for the dialect and one set of parameter names."""

    __slots__ = ("columns", "constants", "names", "processors", "sql")

    def __init__(self, stmt: sa.Executable, keys: tuple[str, ...], dialect: sa.Dialect) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
        self.sql: str = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        # the bind conversions Core would apply (e.g. to_float for Float columns), by position
        self.processors = tuple(
            (i, proc)
            for i, name in enumerate(self.names)
            if (proc := compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
        )
        # binds that carry their own value (e.g. a LIMIT), as Core's construct_params adds them
        self.constants = {
            name: compiled.binds[name].effective_value
            for name in self.names
            if not compiled.binds[name].required
        }
        self.columns: tuple[str, ...] | None = None  # result column names, from the first run

    def args(self, params: Mapping[str, Any]) -> tuple[Any, ...] | list[Any]:
        if self.constants:
            params = {**self.constants, **params}
        if not self.processors:
            return tuple([params[name] for name in self.names])
        args = [params[name] for name in self.names]
        for i, proc in self.processors:
            args[i] = proc(args[i])
        return args


class _Core:
    """Statements through SQLAlchemy Core: reads outside a write transaction, other dialects."""

    @staticmethod
    def first(
        conn: sa.Connection, stmt: sa.Executable, params: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        row = conn.execute(stmt, params).first()
        return None if row is None else row._mapping

    @staticmethod
    def all(
        conn: sa.Connection, stmt: sa.Executable, params: Mapping[str, Any]
    ) -> list[Mapping[str, Any]]:
        return [row._mapping for row in conn.execute(stmt, params)]

    @staticmethod
    def write(conn: sa.Connection, stmt: sa.Executable, params: Mapping[str, Any]) -> None:
        conn.execute(stmt, params)

    @staticmethod
    def write_many(
        conn: sa.Connection, stmt: sa.Executable, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        conn.execute(stmt, rows)

    @staticmethod
    def insert(conn: sa.Connection, stmt: sa.Executable, row: Mapping[str, Any]) -> int:
        """Insert one row; its new primary key."""
        return int(conn.execute(stmt, row).inserted_primary_key[0])

    @staticmethod
    def plain(conn: sa.Connection, sql: str) -> None:
        conn.exec_driver_sql(sql)


_CORE = _Core()


class _Direct:
    """The same calls on the DBAPI cursor of the thread's write transaction (SQLite).

    SQLAlchemy's execute costs ~40 us a statement (execution context, result set-up) where SQLite
    itself needs ~5, and a bulk import runs about five per file. The SQL is still the Core
    statement compiled by SQLAlchemy for the engine's dialect (once per set of parameter names),
    with the same bind conversions, rows come back as the same name -> value mappings, and driver
    errors are wrapped as SQLAlchemy's DBAPIError, so `_translated` reports them as before.
    """

    # Compiled forms shared by every store of the process (one CLI run may open several, a
    # benchmark one per pass), per dialect class, server version and parameter style.
    _shared: dict[tuple[Any, ...], dict[tuple[sa.Executable, tuple[str, ...]], _Compiled]] = {}

    def __init__(self, dialect: sa.Dialect) -> None:
        self._dialect = dialect
        self._error: type[Exception] = dialect.loaded_dbapi.Error
        key = (type(dialect), dialect.server_version_info, dialect.paramstyle)
        self._compiled = self._shared.setdefault(key, {})

    @staticmethod
    def usable(dialect: sa.Dialect) -> bool:
        return dialect.name == "sqlite" and dialect.positional

    def _get(self, stmt: sa.Executable, params: Mapping[str, Any]) -> _Compiled:
        keys = tuple(params)
        compiled = self._compiled.get((stmt, keys))
        if compiled is None:
            compiled = self._compiled[(stmt, keys)] = _Compiled(stmt, keys, self._dialect)
        return compiled

    def _run(self, conn: sa.Connection, sql: str, args: Any = (), *, many: bool = False) -> Any:
        """Execute on the transaction's DBAPI connection; the DBAPI cursor."""
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if many:
                cursor.executemany(sql, args)
            else:
                cursor.execute(sql, args)
        except self._error as exc:
            cursor.close()
            raise sa.exc.DBAPIError.instance(
                sql, args, exc, self._error, dialect=self._dialect
            ) from exc
        return cursor

    def _rows(
        self, conn: sa.Connection, stmt: sa.Executable, params: Mapping[str, Any], n: int | None
    ) -> list[dict[str, Any]]:
        compiled = self._get(stmt, params)
        cursor = self._run(conn, compiled.sql, compiled.args(params))
        try:
            rows = cursor.fetchall() if n is None else cursor.fetchmany(n)
            if compiled.columns is None:
                compiled.columns = tuple(d[0] for d in cursor.description)
        finally:
            cursor.close()
        return [dict(zip(compiled.columns, row, strict=True)) for row in rows]

    def first(
        self, conn: sa.Connection, stmt: sa.Executable, params: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        rows = self._rows(conn, stmt, params, 1)
        return rows[0] if rows else None

    def all(
        self, conn: sa.Connection, stmt: sa.Executable, params: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        return self._rows(conn, stmt, params, None)

    def write(self, conn: sa.Connection, stmt: sa.Executable, params: Mapping[str, Any]) -> None:
        compiled = self._get(stmt, params)
        self._run(conn, compiled.sql, compiled.args(params)).close()

    def write_many(
        self, conn: sa.Connection, stmt: sa.Executable, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        compiled = self._get(stmt, rows[0])  # every row has the same keys (`_run_row`)
        self._run(conn, compiled.sql, [compiled.args(r) for r in rows], many=True).close()

    def insert(self, conn: sa.Connection, stmt: sa.Executable, row: Mapping[str, Any]) -> int:
        compiled = self._get(stmt, row)
        cursor = self._run(conn, compiled.sql, compiled.args(row))
        try:
            return int(cursor.lastrowid)
        finally:
            cursor.close()

    def plain(self, conn: sa.Connection, sql: str) -> None:
        self._run(conn, sql).close()


# --------------------------------------------------------------------------- the store


class Store:
    """The database plus the raw archive of one home folder. Use `open_store` to get one.

    Every write method runs in a transaction of its own, or joins the caller's
    `with store.transaction():` so that several writes commit (or vanish) together.
    Thread-safe in the simple sense: each thread gets its own connection and transactions.
    """

    def __init__(self, home: Path, engine: sa.Engine, *, busy_timeout_s: float) -> None:
        self.home = home
        self.db_path = home / DB_NAME
        self.archive = RawArchive(home / ARCHIVE_DIR)
        self.busy_timeout_s = busy_timeout_s
        self._engine = engine
        self._local = threading.local()
        self._closed = False
        self._direct = _Direct(engine.dialect) if _Direct.usable(engine.dialect) else None

    def __repr__(self) -> str:
        return f"Store({str(self.home)!r})"

    # ---- lifecycle

    def close(self) -> None:
        """Close every pooled connection (checkpoints the WAL); idempotent."""
        if not self._closed:
            self._closed = True
            self._engine.dispose()
            self.archive.close()  # its writer thread (bulk imports), idle outside a bulk block

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- transactions

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """One write transaction (BEGIN IMMEDIATE): everything inside commits or none of it does.

        Nested calls join the outer transaction through a SAVEPOINT, so an exception escaping an
        inner block undoes only that block's writes (and, if not caught, the whole transaction).
        """
        with self._tx():
            yield self

    @contextlib.contextmanager
    def _tx(self, *, atomic: bool = True) -> Iterator[sa.Connection]:
        """A new write transaction, or the thread's open one joined.

        Joined, the block runs in a SAVEPOINT, so its failure undoes only its own writes. Blocks
        whose writes are a single statement pass `atomic=False` and skip it: SQLite already
        undoes a failed statement, and bulk imports save two round trips per call.
        """
        if self._closed:
            raise StoreClosedError(f"the store {self.home} is closed")
        outer: sa.Connection | None = getattr(self._local, "conn", None)
        with _translated(self.db_path, self.busy_timeout_s):
            if outer is not None:
                try:
                    if atomic:
                        with self._savepoint(outer):
                            yield outer
                    else:
                        yield outer
                except BaseException:
                    self._local.cache.clear()
                    raise
                return
            with self._engine.connect() as conn, conn.begin():
                self._local.conn = conn
                self._local.cache = _TxCache()
                try:
                    yield conn
                finally:
                    self._local.conn = None
                    self._local.cache = None

    @contextlib.contextmanager
    def _savepoint(self, conn: sa.Connection) -> Iterator[None]:
        """A SAVEPOINT sent as plain SQL: SQLAlchemy's `begin_nested` compiles its SAVEPOINT
        anew every time (the construct is not cacheable), which cost more than the writes.

        Nested savepoints may share one name: ROLLBACK TO and RELEASE act on the most recent
        savepoint of that name (SQLite and PostgreSQL alike), i.e. this block's own.
        """
        sql = self._sql(conn)
        sql.plain(conn, "SAVEPOINT evenstride")
        try:
            yield
        except BaseException:
            sql.plain(conn, "ROLLBACK TO SAVEPOINT evenstride")
            sql.plain(conn, "RELEASE SAVEPOINT evenstride")
            raise
        sql.plain(conn, "RELEASE SAVEPOINT evenstride")

    def _sql(self, conn: sa.Connection) -> _Core | _Direct:
        """How to run the import path's statements on `conn`: directly when it is this thread's
        write transaction (SQLite), else through Core."""
        if self._direct is not None and conn is getattr(self._local, "conn", None):
            return self._direct
        return _CORE

    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        """A read snapshot (deferred BEGIN: does not block writers), or the caller's transaction."""
        if self._closed:
            raise StoreClosedError(f"the store {self.home} is closed")
        outer: sa.Connection | None = getattr(self._local, "conn", None)
        with _translated(self.db_path, self.busy_timeout_s):
            if outer is not None:
                try:
                    yield outer
                except BaseException:
                    self._local.cache.clear()  # e.g. SQLite rolled the transaction back
                    raise
                return
            with self._engine.connect() as conn:
                yield conn.execution_options(**{_BEGIN_OPTION: "DEFERRED"})

    # ---- schema

    def schema_version(self) -> int:
        with self._read() as conn:
            return migrations.current_version(conn)

    def integrity_check(self) -> list[str]:
        """Problems found by SQLite's integrity and foreign-key checks; empty when all is well."""
        with self._read() as conn:
            problems = [
                r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check") if r[0] != "ok"
            ]
            problems += [
                f"foreign key: {r[0]} row {r[1]} -> {r[2]}"
                for r in conn.exec_driver_sql("PRAGMA foreign_key_check")
            ]
        return problems

    # ---- athletes

    def _athlete_id(self, conn: sa.Connection, name: str, *, create: bool) -> int | None:
        """The athlete's id (remembered for the rest of the write transaction)."""
        name = _text(name, "athlete", required=True)
        known = self._local.cache.athlete_ids
        found = known.get(name)
        if found is not None:
            return found
        sql = self._sql(conn)
        row = sql.first(conn, _ATHLETE_ID, {"name": name})
        if row is not None:
            found = int(row["id"])
        elif not create:
            return None
        else:
            found = sql.insert(
                conn, _INSERT_ATHLETE, {"name": name, "profile": "{}", "created_at": _now()}
            )
        known[name] = found
        return found

    def ensure_athlete(self, name: str = "default") -> int:
        """The athlete's id, creating the athlete on first use."""
        with self._tx(atomic=False) as conn:  # at most one INSERT
            return self._athlete_id(conn, name, create=True)

    def get_athlete(self, name: str) -> dict[str, Any] | None:
        with self._read() as conn:
            row = conn.execute(sa.select(athletes).where(athletes.c.name == name)).first()
        return None if row is None else _athlete_dict(row)

    def list_athletes(self) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute(sa.select(athletes).order_by(athletes.c.name)).all()
        return [_athlete_dict(r) for r in rows]

    def update_athlete_profile(self, name: str, profile: Mapping[str, Any]) -> None:
        """Replace (not merge) the athlete's profile; creates the athlete if needed."""
        if not isinstance(profile, Mapping):
            raise TypeError(f"profile must be a dict, got {type(profile).__name__}")
        text = _dumps(profile, "an athlete profile")
        with self._tx() as conn:
            athlete_id = self._athlete_id(conn, name, create=True)
            conn.execute(athletes.update().where(athletes.c.id == athlete_id).values(profile=text))

    def remove_athlete(self, name: str) -> bool:
        """Delete the athlete with their activities, runs and sync state (archive files stay)."""
        with self._tx() as conn:
            result = conn.execute(athletes.delete().where(athletes.c.name == name))
            self._local.cache.clear()
        return result.rowcount > 0

    # ---- activities

    def find_activity(self, athlete: str, source: str, source_id: str) -> dict[str, Any] | None:
        params = {
            "athlete": athlete,
            "source": source,
            "source_id": _text(source_id, "source_id", required=True),
        }
        with self._read() as conn:
            row = conn.execute(_FIND_BY_SOURCE, params).first()
        return None if row is None else _activity_dict(row)

    def find_activity_by_sha(self, athlete: str, sha256: str) -> dict[str, Any] | None:
        """The first activity (lowest id) of this athlete made from this raw file, if any."""
        with self._read() as conn:
            row = conn.execute(_FIND_BY_SHA, {"athlete": athlete, "sha256": _sha(sha256)}).first()
        return None if row is None else _activity_dict(row)

    def find_duplicate(
        self, athlete: str, source: str, source_id: str, sha256: str
    ) -> dict[str, Any] | None:
        """`find_activity`, else `find_activity_by_sha`, in one query: an import's duplicate check."""
        params = {
            "athlete": athlete,
            "source": source,
            "source_id": _text(source_id, "source_id", required=True),
            "sha256": _sha(sha256),
        }
        with self._read() as conn:
            row = self._sql(conn).first(conn, _FIND_DUPLICATE, params)
            cache: _TxCache | None = getattr(self._local, "cache", None)
            if row is None and cache is not None:  # the upsert that follows can skip its lookup
                cache.absent_keys.add((athlete, source, params["source_id"]))
        return None if row is None else _activity_dict(row)

    def upsert_activity(
        self,
        athlete: str,
        *,
        source: str,
        source_id: str,
        sha256: str | None,
        start_time: datetime | None = None,
        duration_s: float | None = None,
        distance_m: float | None = None,
        sport: str | None = None,
        sub_sport: str | None = None,
        device: str | None = None,
        sensors: Sequence[Mapping[str, Any]] = (),
        status: str = "ok",
        reason: str | None = None,
        file_name: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> int:
        """Insert the activity, or update it in place if (athlete, source, source_id) exists.

        Returns the activity id, which stays the same across updates. Runs are left alone:
        call `replace_runs` in the same transaction when they change.
        """
        if extra is not None and not isinstance(extra, Mapping):
            raise TypeError(f"extra must be a dict or None, got {type(extra).__name__}")
        now = _now()
        values = {
            "source": _text(source, "source", required=True),
            "source_id": _text(source_id, "source_id", required=True),
            "sha256": _sha(sha256),
            "start_time": _iso(start_time, "start_time"),
            "duration_s": _num(duration_s, "duration_s"),
            "distance_m": _num(distance_m, "distance_m"),
            "sport": _text(sport, "sport"),
            "sub_sport": _text(sub_sport, "sub_sport"),
            "device": _text(device, "device"),
            "sensors": _dumps(list(sensors or ()), "activity sensors"),
            "status": _status(status),
            "reason": _text(reason, "reason"),
            "file_name": _text(file_name, "file_name"),
            "extra": None if extra is None else _dumps(extra, "activity extra"),
            "updated_at": now,
        }
        with self._tx(atomic=False) as conn:  # one INSERT or UPDATE for a known athlete ...
            athlete_id = self._athlete_id(conn, athlete, create=False)
            if athlete_id is not None:
                return self._write_activity(conn, athlete, athlete_id, values)
            with self._tx() as conn:  # ... a new athlete is kept only with its first activity
                athlete_id = self._athlete_id(conn, athlete, create=True)
                return self._write_activity(conn, athlete, athlete_id, values)

    def _write_activity(
        self, conn: sa.Connection, athlete: str, athlete_id: int, values: dict[str, Any]
    ) -> int:
        """Insert or update the activity row (one write statement); return its id."""
        cache = self._local.cache
        sql = self._sql(conn)
        key = (athlete, values["source"], values["source_id"])
        existing = None
        if key not in cache.absent_keys:
            params = {"athlete_id": athlete_id, "source": key[1], "source_id": key[2]}
            existing = sql.first(conn, _ACTIVITY_ID, params)
        cache.absent_sources.discard((athlete, key[1]))
        if existing is not None:
            activity_id = int(existing["id"])
            sql.write(conn, _UPDATE_ACTIVITY, {"activity_id": activity_id, **values})
        else:
            row = {"athlete_id": athlete_id, "imported_at": values["updated_at"], **values}
            activity_id = sql.insert(conn, _INSERT_ACTIVITY, row)
            cache.absent_keys.discard(key)
            cache.runless_ids.add(activity_id)
        cache.activity_ids.add(activity_id)
        return activity_id

    def get_activity(self, activity_id: int) -> dict[str, Any]:
        """The activity; NotFoundError (a KeyError) when there is none with this id."""
        with self._read() as conn:
            row = conn.execute(_GET_ACTIVITY, {"activity_id": activity_id}).first()
        if row is None:
            raise NotFoundError(f"no activity with id {activity_id}")
        return _activity_dict(row)

    def remove_activity(self, activity_id: int) -> bool:
        """Delete one activity and its runs (its raw file stays archived)."""
        with self._tx() as conn:
            result = conn.execute(activities.delete().where(activities.c.id == activity_id))
            self._local.cache.clear()
        return result.rowcount > 0

    def list_activities(
        self,
        athlete: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | None = None,
        source: str | Collection[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Activities ordered by start time (unknown start last); `since` inclusive, `until` not.

        `source` is one source or several (e.g. ingest.STREAM_SOURCES).
        """
        params: dict[str, Any] = {}
        if athlete is not None:
            params["athlete"] = athlete
        if since is not None:
            params["since"] = _iso(since, "since")
        if until is not None:
            params["until"] = _iso(until, "until")
        if status is not None:
            params["status"] = _status(status)
        n_sources = None
        if isinstance(source, str):
            params["source"] = source
        elif source is not None:
            sources = list(source)
            params.update((f"source_{i}", name) for i, name in enumerate(sources))
            n_sources = len(sources)
        query = _activities_query(*(name in params for name in _ACTIVITY_FILTERS), n_sources)
        with self._read() as conn:
            sql = self._sql(conn)
            cache: _TxCache | None = getattr(self._local, "cache", None)
            if (
                cache is not None
                and athlete is not None
                and source is not None
                and self._none_from(
                    sql, conn, cache, athlete, [source] if isinstance(source, str) else sources
                )
            ):
                return []
            rows = sql.all(conn, query, params)
        return [_activity_dict(r) for r in rows]

    @staticmethod
    def _none_from(
        sql: _Core | _Direct, conn: sa.Connection, cache: _TxCache, athlete: str, sources: list[str]
    ) -> bool:
        """True when the athlete has no activity from any of `sources`, remembered while the
        write transaction lasts: a FIT import looks for stream twins once per file."""
        for source in sources:
            if (athlete, source) in cache.absent_sources:
                continue
            if sql.first(conn, _SOURCE_EXISTS, {"athlete": athlete, "source": source}):
                return False
            cache.absent_sources.add((athlete, source))
        return True

    # ---- runs

    def replace_runs(self, activity_id: int, runs_: Sequence[Mapping[str, Any]]) -> None:
        """Replace all per-run summaries of one activity, atomically (none left half-written)."""
        rows = [_run_row(activity_id, run) for run in runs_]
        indexes = [row["session_index"] for row in rows]
        if len(set(indexes)) != len(indexes):
            raise ValueError(f"duplicate session_index in runs: {indexes}")
        # An activity inserted by this transaction has no runs to delete yet, and one write
        # statement needs no savepoint: a bulk import's usual run is a single INSERT here.
        cache: _TxCache | None = getattr(self._local, "cache", None)
        runless = cache is not None and activity_id in cache.runless_ids
        with self._tx(atomic=len(rows) + (not runless) > 1) as conn:
            cache = self._local.cache
            sql = self._sql(conn)
            params = {"activity_id": activity_id}
            if activity_id not in cache.activity_ids:
                if sql.first(conn, _ACTIVITY_EXISTS, params) is None:
                    raise NotFoundError(f"no activity with id {activity_id}")
                cache.activity_ids.add(activity_id)
            if not runless:
                sql.write(conn, _DELETE_RUNS, params)
            if rows:
                sql.write_many(conn, _INSERT_RUNS, rows)
            cache.runless_ids.discard(activity_id)

    def list_runs(
        self,
        athlete: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | None = None,
        activity_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Per-run summaries with their activity's athlete, source, source_id, status, sha256 and
        device; ordered by start time (unknown last)."""
        query = _RUN_SELECT
        if athlete is not None:
            query = query.where(athletes.c.name == athlete)
        if since is not None:
            query = query.where(runs.c.start_time >= _iso(since, "since"))
        if until is not None:
            query = query.where(runs.c.start_time < _iso(until, "until"))
        if status is not None:
            query = query.where(activities.c.status == _status(status))
        if activity_id is not None:
            query = query.where(runs.c.activity_id == activity_id)
        query = query.order_by(
            runs.c.start_time.asc().nulls_last(), runs.c.activity_id, runs.c.session_index
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [_run_dict(r) for r in rows]

    # ---- sync state (cursors, last-sync times; never credentials)

    def get_sync_state(
        self, athlete: str, source: str, key: str, default: str | None = None
    ) -> str | None:
        query = (
            sa.select(sync_state.c.value)
            .join_from(sync_state, athletes)
            .where(
                athletes.c.name == athlete, sync_state.c.source == source, sync_state.c.key == key
            )
        )
        with self._read() as conn:
            value = conn.execute(query).scalar()
        return default if value is None else value

    def set_sync_state(self, athlete: str, source: str, key: str, value: str) -> None:
        """Remember a small string per (athlete, source, key), e.g. the last synced activity."""
        key = _text(key, "sync state key", required=True)
        source = _text(source, "source", required=True)
        if not isinstance(value, str):
            raise TypeError(f"sync state values are strings, got {type(value).__name__}")
        if _is_secret_name(key):
            raise SecretRefusedError(
                f"refusing to store sync state {key!r}: credentials belong in the OS keyring"
            )
        with self._tx() as conn:
            athlete_id = self._athlete_id(conn, athlete, create=True)
            where = (
                sync_state.c.athlete_id == athlete_id,
                sync_state.c.source == source,
                sync_state.c.key == key,
            )
            now = _now()
            updated = conn.execute(
                sync_state.update().where(*where).values(value=value, updated_at=now)
            )
            if updated.rowcount == 0:
                conn.execute(
                    sync_state.insert().values(
                        athlete_id=athlete_id, source=source, key=key, value=value, updated_at=now
                    )
                )

    def delete_sync_state(self, athlete: str, source: str, key: str | None = None) -> int:
        """Forget one key, or every key of a source (e.g. to force a full re-sync)."""
        with self._tx() as conn:
            athlete_id = self._athlete_id(conn, athlete, create=False)
            if athlete_id is None:
                return 0
            query = sync_state.delete().where(
                sync_state.c.athlete_id == athlete_id, sync_state.c.source == source
            )
            if key is not None:
                query = query.where(sync_state.c.key == key)
            return conn.execute(query).rowcount


# --------------------------------------------------------------------------- opening


def _private_db_file(db_path: Path) -> None:
    """Create the database file 0600 before SQLite does (its WAL/SHM files inherit the mode)."""
    try:
        fd = os.open(db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if db_path.stat().st_mode & 0o077:
            os.chmod(db_path, 0o600)
        return
    os.close(fd)
    os.chmod(db_path, 0o600)


def busy_timeout_from_env() -> float:
    """`EVENSTRIDE_DB_BUSY_TIMEOUT_S` (seconds), else DEFAULT_BUSY_TIMEOUT_S."""
    raw = os.environ.get(BUSY_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_BUSY_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise StoreError(f"{BUSY_TIMEOUT_ENV} must be a number of seconds >= 0, got {raw!r}")
    return value


def open_store(home: Path | str, *, busy_timeout_s: float | None = None) -> Store:
    """Open (creating and migrating as needed) the store in `home`.

    `home` is created 0700 if missing; the database is `home/evenstride.sqlite3` (0600) and raw
    files go to `home/raw/`. A second process waits up to `busy_timeout_s` (default:
    EVENSTRIDE_DB_BUSY_TIMEOUT_S, else 30 s) for a write lock before StoreLockedError.
    """
    if busy_timeout_s is None:
        busy_timeout_s = busy_timeout_from_env()
    home = Path(home).expanduser()
    db_path = home / DB_NAME
    try:
        make_private_dir(home)
        make_private_dir(home / ARCHIVE_DIR)
        _private_db_file(db_path)
    except OSError as exc:
        raise StoreError(f"cannot create the evenstride home {home}: {exc.strerror}") from exc
    engine = make_engine(db_path, busy_timeout_s)
    try:
        with _translated(db_path, busy_timeout_s):
            migrations.migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    store = Store(home, engine, busy_timeout_s=busy_timeout_s)
    store.archive.remove_stale_tmp()
    return store
