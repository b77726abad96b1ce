"""Content-addressed, compressed archive of raw files, kept untouched so every number can be redone.

Layout: `<root>/ab/<sha256>.zst`, where `ab` is the first two hex digits of the sha256 of the
ORIGINAL bytes and the file is a Zstandard frame of exactly those bytes (zstd compresses far
faster than gzip -6 at a similar ratio, more so at the `_LEVEL` used, so archiving never dominates
an import; older `.gz` copies are still read). Writes go to a temporary file in the same folder,
are fsynced, then renamed into place, so a process killed mid-write never leaves a partial file
under a final name.
Bulk imports may defer the fsync (`deferred_sync`) and make the whole batch durable at once before
the database commits it. Folders are 0700 and files 0600: runs reveal where people live.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import re
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import zstandard

from evenstride.store.errors import ArchiveCorruptError, StoreError

_SHA256 = re.compile(r"[0-9a-f]{64}")
_FINAL_NAME = re.compile(r"([0-9a-f]{64})\.(?:zst|gz)")
_SUFFIX = ".zst"
# zstd level 1: on the sample FIT files twice as fast as level 3 (37 vs 68 ms for 7.2 MB, more
# than decoding them takes) for a 5 % larger archive (ratio 1.66 vs 1.74). Any level decompresses.
_LEVEL = 1
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


def make_private_dir(path: Path, *, sync: bool = True) -> None:
    """Create `path` (and missing parents) as 0700; leave the mode of existing folders alone.

    `sync=False` leaves making the new folder entries durable to the caller (bulk mode).
    """
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process won the race
            d.mkdir(mode=0o700)
            os.chmod(d, 0o700)  # mkdir's mode is filtered by the umask
            if sync:
                _fsync_dir(d.parent)


def write_private_file(path: Path, data: bytes | str) -> Path:
    """Write a file atomically (temp file + rename), 0600, creating missing folders 0700.

    For reports, audits and plans under --home: a reader never sees half a file, and an
    athlete's data stays private to the user.
    """
    path = Path(path).expanduser()
    make_private_dir(path.parent)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:  # mkstemp creates the file 0600
            fh.write(payload)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


class RawArchive:
    """The raw-file archive under one folder (normally `<home>/raw`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._deferred: list[Path] | None = None  # files written but not yet fsynced (bulk mode)
        self._zstd = threading.local()  # this thread's (de)compressor: they are not thread-safe

    def _compressor(self) -> zstandard.ZstdCompressor:
        """Reused per thread instead of one per file; the output bytes are the same."""
        cctx = getattr(self._zstd, "cctx", None)
        if cctx is None:
            cctx = self._zstd.cctx = zstandard.ZstdCompressor(level=_LEVEL)
        return cctx

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        """Reused per thread, like the compressor (every put of a known file verifies it)."""
        dctx = getattr(self._zstd, "dctx", None)
        if dctx is None:
            dctx = self._zstd.dctx = zstandard.ZstdDecompressor()
        return dctx

    def __repr__(self) -> str:
        return f"RawArchive({str(self.root)!r})"

    @staticmethod
    def _check(sha256: str) -> str:
        # Validating the name also keeps callers from reaching outside the archive folder.
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256.lower()):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return sha256.lower()

    def path(self, sha256: str) -> Path:
        """Where the compressed copy of the file with this sha256 lives (existing or not)."""
        return self._path(self._check(sha256))

    def _path(self, sha256: str) -> Path:
        return self.root.joinpath(sha256[:2], f"{sha256}{_SUFFIX}")

    def _existing(self, sha256: str) -> Path | None:
        """The archived copy of a checked sha256 (the .zst, else a legacy .gz), if any."""
        path = self._path(sha256)
        if path.is_file():
            return path
        legacy = path.with_suffix(".gz")
        return legacy if legacy.is_file() else None

    def has(self, sha256: str) -> bool:
        return self._existing(self._check(sha256)) is not None

    @contextlib.contextmanager
    def deferred_sync(self) -> Iterator[None]:
        """Bulk mode: skip the per-file fsync inside, make everything durable once on exit.

        Use it INSIDE the database transaction that references the files, so the commit happens
        only after the files are on disk. Nested use joins the outer batch.
        """
        if self._deferred is not None:
            yield
            return
        self._deferred = []
        try:
            yield
        finally:
            pending, self._deferred = self._deferred, None
            if pending:
                self._sync(pending)

    @staticmethod
    def _sync(paths: list[Path]) -> None:
        sync = getattr(os, "sync", None)
        if sync is not None:
            sync()  # one flush of everything written: far cheaper than one fsync per file
            return
        for path in paths:  # pragma: no cover - platforms without os.sync
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        for folder in {p.parent for p in paths}:  # pragma: no cover
            _fsync_dir(folder)

    __contains__ = has

    def put(self, data: bytes | bytearray | memoryview) -> str:
        """Archive `data` unless an intact copy is already there; return its sha256.

        Idempotent. An existing copy is verified first; a corrupt one is replaced by the good bytes
        we now hold.
        """
        data = bytes(data)
        sha256 = hashlib.sha256(data).hexdigest()
        found = self._existing(sha256)
        if found is not None:
            try:
                self._verified(found, sha256)
                return sha256
            except ArchiveCorruptError:
                pass  # heal it below
        path = self._path(sha256)
        self._write_atomic(path, self._compressor().compress(data))
        legacy = path.with_suffix(".gz")
        if found is not None and legacy.exists():  # a corrupt old copy was healed by the new one
            with contextlib.suppress(OSError):
                legacy.unlink()
        return sha256

    def get(self, sha256: str) -> bytes:
        """The original bytes; KeyError if absent, ArchiveCorruptError if they no longer match."""
        sha256 = self._check(sha256)
        path = self._existing(sha256)
        if path is None:
            raise KeyError(sha256)
        return self._verified(path, sha256)

    def _verified(self, path: Path, sha256: str) -> bytes:
        """The original bytes of the archived copy at `path`, checked against its sha256."""
        try:
            compressed = path.read_bytes()
        except FileNotFoundError:
            raise KeyError(sha256) from None
        except OSError as exc:
            raise StoreError(f"cannot read archived raw file {path}: {exc.strerror}") from exc
        try:
            if path.suffix == ".gz":
                data = gzip.decompress(compressed)
            else:
                data = self._decompressor().decompress(compressed)
        except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
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
        folder = path.parent
        try:
            try:  # the folder mostly exists: try first, rather than check every time
                fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=_SUFFIX, dir=folder)
            except FileNotFoundError:
                make_private_dir(folder, sync=self._deferred is None)
                fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=_SUFFIX, dir=folder)
        except OSError as exc:
            raise StoreError(f"cannot write to the archive {self.root}: {exc.strerror}") from exc
        try:
            try:  # mkstemp creates the file 0600
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view) :]
                if self._deferred is None:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise StoreError(f"cannot write archived raw file {path}: {exc.strerror}") from exc
            raise
        if self._deferred is None:
            _fsync_dir(path.parent)
        else:
            self._deferred.append(path)
