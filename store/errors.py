"""Store errors: one small hierarchy so the CLI can print a one-line reason and exit cleanly."""

from __future__ import annotations


class StoreError(Exception):
    """Anything that went wrong in the database or the raw-file archive (one-line message)."""


class StoreLockedError(StoreError):
    """Another process kept the database locked for longer than the busy timeout."""


class StoreSchemaError(StoreError):
    """The database schema cannot be used: newer than this program, or a migration failed."""


class StoreClosedError(StoreError):
    """The store was used after close()."""


class NotFoundError(StoreError, KeyError):
    """A row that the caller named by id does not exist (also a KeyError for dict-like use)."""

    def __str__(self) -> str:  # KeyError would repr() the message; keep it a plain sentence
        return str(self.args[0]) if self.args else ""


class ArchiveCorruptError(StoreError):
    """An archived raw file no longer decompresses or no longer matches its sha256."""


class SecretRefusedError(StoreError, ValueError):
    """Something that looks like a credential was about to be written to the database.

    Tokens and passwords live in the OS keyring; the database and its backups must never hold them.
    """
