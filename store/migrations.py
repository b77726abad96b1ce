"""Versioned schema migrations: an ordered list of steps, each applied in its own transaction.

Each step is frozen once released: it builds exactly the tables/indexes of its version with its own
MetaData (never the live `store.schema`), so an old database upgraded step by step and a fresh one
end up with the same schema. To change the schema: edit `store.schema`, then append a step here
that makes the same change to an existing database (`ALTER TABLE ... ADD COLUMN`, a new index, or
SQLite's create-copy-drop-rename dance for anything ALTER cannot do).

Applied versions are recorded in `schema_migrations`. Every step re-reads the current version
inside its write transaction (BEGIN IMMEDIATE), so two processes opening the same old database at
once cannot both apply a step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from evenstride.store import schema
from evenstride.store.errors import StoreSchemaError


@dataclass(frozen=True)
class Migration:
    """One schema step: `apply` runs inside a transaction that also records `version`."""

    version: int
    name: str
    apply: Callable[[sa.Connection], None]


def _v1_initial(conn: sa.Connection) -> None:
    """Athletes, activities, per-run summaries and sync state, as first released."""
    md = sa.MetaData()
    sa.Table(
        "athletes",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("profile", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.UniqueConstraint("name", name="uq_athletes_name"),
        sqlite_autoincrement=True,
    )
    sa.Table(
        "activities",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "athlete_id",
            sa.Integer,
            sa.ForeignKey("athletes.id", ondelete="CASCADE", name="fk_activities_athlete"),
            nullable=False,
        ),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("source_id", sa.Text, nullable=False),
        sa.Column("sha256", sa.Text),
        sa.Column("start_time", sa.Text),
        sa.Column("duration_s", sa.Float),
        sa.Column("distance_m", sa.Float),
        sa.Column("sport", sa.Text),
        sa.Column("sub_sport", sa.Text),
        sa.Column("device", sa.Text),
        sa.Column("sensors", sa.Text, nullable=False, server_default="[]"),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("file_name", sa.Text),
        sa.Column("extra", sa.Text),
        sa.Column("imported_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.UniqueConstraint("athlete_id", "source", "source_id", name="uq_activities_source"),
        sa.CheckConstraint("status IN ('ok', 'partial', 'failed')", name="ck_activities_status"),
        sa.Index("ix_activities_athlete_start", "athlete_id", "start_time"),
        sa.Index("ix_activities_sha256", "sha256"),
        sqlite_autoincrement=True,
    )
    run_numeric = (
        "duration_s",
        "distance_m",
        "running_minutes",
        "clean_minutes",
        "balance_minutes",
        "balance_median",
        "balance_mean",
        "d",
        "cadence_median",
        "cadence_at_reference",
        "gct_median_ms",
        "vertical_oscillation_mm",
        "vertical_ratio_pct",
        "step_length_mm",
        "speed_median_mps",
    )
    sa.Table(
        "runs",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "activity_id",
            sa.Integer,
            sa.ForeignKey("activities.id", ondelete="CASCADE", name="fk_runs_activity"),
            nullable=False,
        ),
        sa.Column("session_index", sa.Integer, nullable=False),
        sa.Column("start_time", sa.Text),
        sa.Column("sport", sa.Text),
        sa.Column("sub_sport", sa.Text),
        sa.Column("sensor", sa.Text),
        sa.Column("surface", sa.Text),
        sa.Column("pace_band", sa.Text),
        *(sa.Column(name, sa.Float) for name in run_numeric),
        sa.Column("summary", sa.Text, nullable=False, server_default="{}"),
        sa.UniqueConstraint("activity_id", "session_index", name="uq_runs_session"),
        sqlite_autoincrement=True,
    )
    sa.Table(
        "sync_state",
        md,
        sa.Column(
            "athlete_id",
            sa.Integer,
            sa.ForeignKey("athletes.id", ondelete="CASCADE", name="fk_sync_state_athlete"),
            primary_key=True,
        ),
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
    )
    md.create_all(conn, checkfirst=False)


def _v2_runs_by_start(conn: sa.Connection) -> None:
    """Trend queries list runs by date across activities; index them by start time."""
    md = sa.MetaData()
    runs = sa.Table("runs", md, sa.Column("start_time", sa.Text))
    sa.Index("ix_runs_start_time", runs.c.start_time).create(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _v1_initial),
    Migration(2, "index runs by start time", _v2_runs_by_start),
)
LATEST_VERSION = MIGRATIONS[-1].version


def current_version(conn: sa.Connection) -> int:
    """Highest applied version; 0 for an empty database."""
    if not sa.inspect(conn).has_table(schema.schema_migrations.name):
        return 0
    value = conn.execute(sa.select(sa.func.max(schema.schema_migrations.c.version))).scalar()
    return int(value or 0)


def _check_steps(steps: Sequence[Migration]) -> None:
    versions = [step.version for step in steps]
    if versions != list(range(1, len(steps) + 1)):
        raise ValueError(f"migration versions must be 1, 2, 3... in order, got {versions}")


def migrate(
    engine: sa.Engine,
    *,
    target: int | None = None,
    steps: Sequence[Migration] = MIGRATIONS,
) -> list[int]:
    """Bring the database up to `target` (default: the latest); return the versions applied.

    The engine must open write transactions with BEGIN IMMEDIATE (see `store.db.make_engine`) so
    that the version check and the step happen under the same write lock.
    """
    _check_steps(steps)
    latest = steps[-1].version if steps else 0
    target = latest if target is None else target
    if not 0 <= target <= latest:
        raise ValueError(f"target version {target} is not between 0 and {latest}")

    with engine.begin() as conn:
        schema.schema_migrations.create(conn, checkfirst=True)
        found = current_version(conn)
    if found > latest:
        raise StoreSchemaError(
            f"the database has schema v{found} but this evenstride only knows up to "
            f"v{latest}; upgrade evenstride"
        )

    applied: list[int] = []
    for step in steps:
        if step.version > target:
            break
        with engine.begin() as conn:
            if current_version(conn) >= step.version:
                continue  # already there (or another process just applied it)
            try:
                step.apply(conn)
            except sa.exc.SQLAlchemyError as exc:
                first_line = str(getattr(exc, "orig", exc)).splitlines()[0]
                raise StoreSchemaError(
                    f"schema migration v{step.version} ({step.name}) failed: {first_line}"
                ) from exc
            conn.execute(
                schema.schema_migrations.insert().values(
                    version=step.version,
                    name=step.name,
                    applied_at=datetime.now(UTC).isoformat(timespec="microseconds"),
                )
            )
        applied.append(step.version)
    return applied
