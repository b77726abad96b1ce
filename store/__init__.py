"""Embedded store: SQLite database behind one small module, plus the raw-file archive.

    from evenstride.store import open_store
    with open_store(home) as store:
        sha = store.archive.put(raw_bytes)          # archived untouched before anything else
        with store.transaction():                   # commits together or not at all
            aid = store.upsert_activity("default", source="local", source_id=name, sha256=sha, ...)
            store.replace_runs(aid, runs)

All SQL lives in `store.db` (SQLAlchemy Core); `store.schema` describes the current tables and
`store.migrations` creates and upgrades them in versioned steps.
"""

from evenstride.store.archive import RawArchive
from evenstride.store.db import DB_NAME, Store, open_store
from evenstride.store.errors import (
    ArchiveCorruptError,
    NotFoundError,
    SecretRefusedError,
    StoreClosedError,
    StoreError,
    StoreLockedError,
    StoreSchemaError,
)
from evenstride.store.migrations import LATEST_VERSION
from evenstride.store.schema import RUN_NUMERIC_COLUMNS, RUN_TEXT_COLUMNS, STATUSES

__all__ = [
    "DB_NAME",
    "LATEST_VERSION",
    "RUN_NUMERIC_COLUMNS",
    "RUN_TEXT_COLUMNS",
    "STATUSES",
    "ArchiveCorruptError",
    "NotFoundError",
    "RawArchive",
    "SecretRefusedError",
    "Store",
    "StoreClosedError",
    "StoreError",
    "StoreLockedError",
    "StoreSchemaError",
    "open_store",
]
