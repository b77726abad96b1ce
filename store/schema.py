"""The CURRENT database schema as SQLAlchemy Core tables, used by the queries in `store.db`.

This is not how tables get created: `store.migrations` builds them step by step so that a fresh
database and an upgraded old one end up identical (a test compares them with these definitions).
When you change something here, add a migration step that makes the same change.

Conventions: timestamps are ISO-8601 UTC strings (fixed width, so they sort as text); JSON values
are TEXT; no column ever holds a secret (tokens live in the OS keyring).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

STATUSES = ("ok", "partial", "failed")

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("applied_at", sa.Text, nullable=False),
)

athletes = sa.Table(
    "athletes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("profile", sa.Text, nullable=False, server_default="{}"),  # JSON object
    sa.Column("created_at", sa.Text, nullable=False),
    sa.UniqueConstraint("name", name="uq_athletes_name"),
    sqlite_autoincrement=True,
)

activities = sa.Table(
    "activities",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "athlete_id",
        sa.Integer,
        sa.ForeignKey("athletes.id", ondelete="CASCADE", name="fk_activities_athlete"),
        nullable=False,
    ),
    sa.Column("source", sa.Text, nullable=False),  # garmin | strava | local | ...
    sa.Column("source_id", sa.Text, nullable=False),
    sa.Column("sha256", sa.Text),  # of the raw file in the archive; NULL if none was obtained
    sa.Column("start_time", sa.Text),
    sa.Column("duration_s", sa.Float),
    sa.Column("distance_m", sa.Float),
    sa.Column("sport", sa.Text),
    sa.Column("sub_sport", sa.Text),
    sa.Column("device", sa.Text),
    sa.Column("sensors", sa.Text, nullable=False, server_default="[]"),  # JSON list of objects
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("file_name", sa.Text),
    sa.Column("extra", sa.Text),  # JSON object or NULL
    sa.Column("imported_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.UniqueConstraint("athlete_id", "source", "source_id", name="uq_activities_source"),
    sa.CheckConstraint("status IN ('ok', 'partial', 'failed')", name="ck_activities_status"),
    sa.Index("ix_activities_athlete_start", "athlete_id", "start_time"),
    sa.Index("ix_activities_sha256", "sha256"),
    sqlite_autoincrement=True,
)

# Per-run columns copied out of the summary for querying, named as in metrics.summary.RunSummary
# (balance_* = GCT balance, % left foot; d = balance_median - 50). The whole summary is in
# `summary` (JSON); these columns just let SQL filter and sort without parsing it.
RUN_TEXT_COLUMNS = ("surface", "pace_band")
RUN_NUMERIC_COLUMNS = (
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

runs = sa.Table(
    "runs",
    metadata,
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
    sa.Column("sensor", sa.Text),  # where the running dynamics came from (HRM-Pro, watch, pod...)
    *(sa.Column(name, sa.Text) for name in RUN_TEXT_COLUMNS),
    *(sa.Column(name, sa.Float) for name in RUN_NUMERIC_COLUMNS),
    sa.Column("summary", sa.Text, nullable=False, server_default="{}"),  # JSON object
    sa.UniqueConstraint("activity_id", "session_index", name="uq_runs_session"),
    sa.Index("ix_runs_start_time", "start_time"),  # added in schema v2
    sqlite_autoincrement=True,
)

sync_state = sa.Table(
    "sync_state",
    metadata,
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
