"""Content-addressed, compressed archive of raw files, kept untouched so every number can be redone.

Layout: `<root>/ab/<sha256>.gz`, where `ab` is the first two hex digits of the sha256 of the
ORIGINAL bytes and the file is a gzip of exactly those bytes. Writes go to a temporary file in the
same folder, are fsynced, then renamed into place, so a process killed mid-write never leaves a
partial file under a final name. Folders are 0700 and files 0600: runs reveal where people live.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import re
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

from evenstride.store.errors import ArchiveCorruptError, StoreError

_SHA256 = re.compile(r"[0-9a-f]{64}")
_FINAL_NAME = re.compile(r"([0-9a-f]{64})\.gz")
_TMP_PREFIX = ".tmp-"


def _fsync_dir(path: Path) -> None:
    """Make a rename/creation in `path` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def make_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) as 0700; leave the mode of existing folders alone."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process won the race
            d.mkdir(mode=0o700)
            os.chmod(d, 0o700)  # mkdir's mode is filtered by the umask
            _fsync_dir(d.parent)


class RawArchive:
    """The raw-file archive under one folder (normally `<home>/raw`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RawArchive({str(self.root)!r})"

    @staticmethod
    def _check(sha256: str) -> str:
        # Validating the name also keeps callers from reaching outside the archive folder.
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256.lower()):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return sha256.lower()

    def path(self, sha256: str) -> Path:
        """Where the gzip of the file with this sha256 lives (whether or not it exists)."""
        sha256 = self._check(sha256)
        return self.root / sha256[:2] / f"{sha256}.gz"

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    __contains__ = has

    def put(self, data: bytes | bytearray | memoryview) -> str:
        """Archive `data` unless an intact copy is already there; return its sha256.

        Idempotent. An existing copy is verified first; a corrupt one is replaced by the good bytes
        we now hold.
        """
        data = bytes(data)
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.path(sha256)
        if path.is_file():
            try:
                self.get(sha256)
                return sha256
            except ArchiveCorruptError:
                pass  # heal it below
        self._write_atomic(path, gzip.compress(data, compresslevel=6, mtime=0))
        return sha256

    def get(self, sha256: str) -> bytes:
        """The original bytes; KeyError if absent, ArchiveCorruptError if they no longer match."""
        sha256 = self._check(sha256)
        path = self.path(sha256)
        try:
            compressed = path.read_bytes()
        except FileNotFoundError:
            raise KeyError(sha256) from None
        except OSError as exc:
            raise StoreError(f"cannot read archived raw file {path}: {exc.strerror}") from exc
        try:
            data = gzip.decompress(compressed)
        except (OSError, EOFError, zlib.error) as exc:
            raise ArchiveCorruptError(
                f"archived raw file {path} is corrupt (does not decompress: {exc})"
            ) from exc
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ArchiveCorruptError(
                f"archived raw file {path} is corrupt (content no longer matches its sha256)"
            )
        return data

    def iter(self) -> Iterator[str]:
        """Every archived sha256, sorted; temporary files of interrupted writes are skipped."""
        if not self.root.is_dir():
            return
        for sub in sorted(self.root.iterdir()):
            if not (sub.is_dir() and len(sub.name) == 2):
                continue
            for f in sorted(sub.iterdir()):
                m = _FINAL_NAME.fullmatch(f.name)
                if m and m.group(1).startswith(sub.name):
                    yield m.group(1)

    def __iter__(self) -> Iterator[str]:
        return self.iter()

    def remove_stale_tmp(self, max_age_s: float = 3600.0) -> int:
        """Delete temporary files left by writers killed mid-put; return how many were removed.

        Only files older than `max_age_s` go, so a put running in another process is not harmed.
        """
        if not self.root.is_dir():
            return 0
        cutoff = time.time() - max_age_s
        removed = 0
        for tmp in self.root.glob(f"??/{_TMP_PREFIX}*"):
            try:
                if tmp.stat().st_mtime <= cutoff:
                    tmp.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def _write_atomic(self, path: Path, payload: bytes) -> None:
        try:
            make_private_dir(path.parent)
            fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".gz", dir=path.parent)
        except OSError as exc:
            raise StoreError(f"cannot write to the archive {self.root}: {exc.strerror}") from exc
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as f:  # mkstemp creates the file 0600
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if isinstance(exc, OSError):
                raise StoreError(f"cannot write archived raw file {path}: {exc.strerror}") from exc
            raise
        _fsync_dir(path.parent)
