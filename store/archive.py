"""Content-addressed archive of raw files, kept untouched so every number can be redone.

Layout: a single put writes `<root>/ab/<sha256>.<suffix>`, where `ab` is the first two hex digits
of the sha256 of the ORIGINAL bytes; a bulk block writes its files into one pack instead
(`<root>/packs/`, see store/packs.py: creating a file is the dearest thing the archive does).
A FIT file is stored as it is (`.fit`): FIT is already a compact binary format, so zstd bought
little for its CPU (on the 50 sample running files, 6.4 MB, level -3 took 12.8 ms for a ratio of
only 1.41, a quarter of the time the FIT reader needs for them, while an import keeps both CPUs
busy; switching it off gained about 4.5 points of throughput in a paired benchmark). Anything
else (Strava streams, Garmin JSON: 5x and more) is a Zstandard frame of exactly those bytes
(`.zst`; zstd compresses far faster than gzip -6 at a similar ratio, more so at the `_LEVEL`
used). Copies written earlier stay valid and are read by their suffix: `.zst` frames of FIT
files (kept, never migrated) and older `.gz` ones; every read, loose or packed, is checked
against the sha256. A loose copy is looked for first (it is what heals a damaged packed one).
Single writes go to a temporary file in the same folder, are fsynced, then renamed into place, so
a process killed mid-write never leaves a partial file under a final name; a pack only becomes
visible to other processes through its index, written the same way. Folders are 0700 and files
0600: runs reveal where people live.

Bulk imports (`deferred_sync`, one per batch of files, inside the database transaction that
references them) skip the per-file fsync and make the whole batch durable before the transaction
commits: its pack and the pack's index, with one flush of the archive's file system (syncfs, not
a machine-wide sync). In a batch, `put` only hashes the bytes and looks for a copy in the caller's
thread, returns the sha256 at once, and hands verifying/compressing/writing to the archive's one
writer thread: zstd (for what is compressed) and the file system calls release the GIL, so that
work overlaps the caller's decoding and SQLite writes instead of adding to them. Any lookup of a
sha256 whose write is in flight waits for it; the batch's exit waits for every write, writes the
index and raises StoreError for the first that failed (the transaction then rolls back), so
nothing committed ever points at a raw file that is not written and synced. A batch that keeps a
copy another thread's open batch wrote indexes that copy itself, since it may commit first.
`deferred_sync(background=False)` writes in `put` instead, with the same guarantees, for a
caller whose second CPU is already busy (ingest's forked analysis helper). A block that has put
its files and goes on with other work may `start_sync`: the writer thread then flushes them while
the block works, and the exit's own flush finds little left to wait for.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import gzip
import hashlib
import itertools
import os
import re
import sys
import tempfile
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from pathlib import Path

import zstandard

from evenstride.store.errors import ArchiveCorruptError, StoreError
from evenstride.store.packs import (
    INDEX_SUFFIX,
    PACK_SUFFIX,
    PACKS,
    PackedCopy,
    PackIndex,
    PackWriter,
    new_name,
)

Copy = Path | PackedCopy  # an archived copy: a loose file, or a payload in a pack

_SHA256 = re.compile(r"[0-9a-f]{64}")
_FINAL_NAME = re.compile(r"([0-9a-f]{64})\.(?:fit|zst|gz)")
_FIT = ".fit"  # a FIT file, stored as it is
_ZST = ".zst"  # anything else, a zstd frame
_GZ = ".gz"  # written by older versions, still read
_SUFFIXES = (_FIT, _ZST, _GZ)  # the order copies are looked for in
# zstd level -3 (a "fast" level), for what is not a FIT file (`_is_fit`): 14-20 ms for the 6.4 MB
# of sample FIT files when they were still compressed, against 32 ms at level 1 and 47 ms at
# level 3, for a ratio of 1.41 against 1.66. Any level decompresses.
_LEVEL = -3
_TMP_PREFIX = ".tmp-"
# Raw bytes a batch may have queued for the writer before `put` waits for it: bounds the memory
# held by a long bulk block whose caller produces files faster than they are written.
_MAX_QUEUED_BYTES = 128 * 1024 * 1024


def _is_fit(data: bytes) -> bool:
    """Whether `data` is a FIT file (stored as it is: see the module docstring for why).

    The test is the FIT header: its size byte (12 or 14), then ".FIT" at bytes 8-11.
    """
    return len(data) >= 12 and data[0] in (12, 14) and data[8:12] == b".FIT"


def _load_syncfs() -> Callable[[int], int] | None:
    """libc's syncfs(2) (Linux >= 2.6.39, glibc >= 2.14), or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None  # pragma: no cover
    try:
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):  # pragma: no cover - e.g. a libc without it
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_syncfs = _load_syncfs()


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


_TMP_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)  # fmt: skip
_tmp_numbers = itertools.count()  # next() is atomic: threads never share a name


def _new_tmp_file(folder: str | Path) -> tuple[int, str]:
    """A new 0600 temporary file in `folder`: mkstemp's flags with a pid + counter name instead
    of its random one (113 against 80 us a file here: names from a counter never clash)."""
    while True:
        name = os.path.join(folder, f"{_TMP_PREFIX}{os.getpid()}-{next(_tmp_numbers)}")
        try:
            return os.open(name, _TMP_FLAGS, 0o600), name
        except FileExistsError:  # left by an earlier process that had the same pid: next one
            continue


def _wait_thread_gone(tid: int, timeout_s: float = 1.0) -> None:
    """Wait until the joined thread `tid` has left the OS (Linux; elsewhere nothing to see)."""
    task = f"/proc/self/task/{tid}"
    deadline = time.monotonic() + timeout_s
    while tid and os.path.exists(task) and time.monotonic() < deadline:
        time.sleep(0.0001)


def make_private_dir(path: Path, *, sync: bool = True) -> None:
    """Create `path` (and missing parents) as 0700; leave the mode of existing folders alone.

    `sync=False` leaves making the new folder entries durable to the caller (bulk mode).
    """
    path = Path(path)
    try:  # mostly only `path` itself is missing (a new shard folder): no lookups first
        _private_mkdir(path, sync=sync)
        return
    except FileExistsError:
        return
    except FileNotFoundError:  # a parent is missing too: create the chain from the top
        pass
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process won the race
            _private_mkdir(d, sync=sync)


def _private_mkdir(path: Path, *, sync: bool) -> None:
    os.mkdir(path, 0o700)
    os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
    if sync:
        _fsync_dir(path.parent)


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


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")  # gone already: nothing to remove


def _file_of(copy: Copy) -> Path:
    """The file a copy is in (what a sync must flush)."""
    return copy.pack if isinstance(copy, PackedCopy) else copy


class _Batch:
    """One thread's open bulk block: the writes it handed to the writer thread, in put order."""

    __slots__ = ("background", "flush", "pack", "queued", "queued_bytes", "writes")

    def __init__(self, background: bool, pack: PackWriter) -> None:
        self.background = background  # writes go to the writer thread (else: done in `put`)
        self.pack = pack  # where its new payloads go
        # sha256 -> its write; the result is the copy written (None: an intact copy was there)
        self.writes: dict[str, Future[Copy | None]] = {}
        self.queued: deque[tuple[Future[Copy | None], int]] = deque()  # not known to be done
        self.queued_bytes = 0
        self.flush: Future[None] | None = None  # `start_sync`'s early flush, when asked for


class RawArchive:
    """The raw-file archive under one folder (normally `<home>/raw`).

    Usable from several threads. Bulk blocks (`deferred_sync`) belong to the thread that opened
    them, like the database transaction they sit in; `close` stops the writer thread.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._root = os.fspath(self.root)  # for the file names of `put`, built without pathlib
        # per thread: its (de)compressor (they are not thread-safe) and its open bulk block
        self._local = threading.local()
        self._lock = threading.Lock()  # guards _writer and _pending
        self._writer: ThreadPoolExecutor | None = None  # created on the first bulk put
        self._writer_pid = 0  # a forked child must not reuse its parent's (absent) thread
        self._writer_tid = 0  # the writer's OS thread id, set by the thread itself
        self._pending: dict[str, Future[Copy | None]] = {}  # sha256 -> write in flight
        self._unsynced: set[str] = set()  # written by a bulk block that has not synced yet
        self._packs = PackIndex(self.root / PACKS)  # the payloads bulk blocks wrote in packs

    def _compressor(self) -> zstandard.ZstdCompressor:
        """Reused per thread instead of one per file; the output bytes are the same."""
        cctx = getattr(self._local, "cctx", None)
        if cctx is None:
            cctx = self._local.cctx = zstandard.ZstdCompressor(level=_LEVEL)
        return cctx

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        """Reused per thread, like the compressor (every put of a known file verifies it)."""
        dctx = getattr(self._local, "dctx", None)
        if dctx is None:
            dctx = self._local.dctx = zstandard.ZstdDecompressor()
        return dctx

    def __repr__(self) -> str:
        return f"RawArchive({str(self.root)!r})"

    def close(self) -> None:
        """Stop the writer thread, if one was started (idempotent; a later bulk put restarts it).

        Returns once the thread is gone from the OS too: a join returns a moment before, and
        ingest forks its analysis helper right after closing (a fork must copy one thread).
        """
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.shutdown(wait=True)
            _wait_thread_gone(self._writer_tid)

    @staticmethod
    def _check(sha256: str) -> str:
        # Validating the name also keeps callers from reaching outside the archive folder.
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256.lower()):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return sha256.lower()

    def path(self, sha256: str) -> Path:
        """Where the archived copy of the file with this sha256 lives.

        The existing copy (`.fit`, `.zst` or a legacy `.gz`, or the pack file that holds it; a
        write of it in flight is waited for). Without one, the `.zst` name: where a single `put`
        writes bytes that are not a FIT file (a FIT file would go to `<sha256>.fit` instead), so
        the name of a missing copy is a guess.
        """
        sha256 = self._check(sha256)
        self._wait_pending(sha256)
        return self._path(sha256)

    def _path(self, sha256: str) -> Path:
        """The file holding the copy of a checked sha256, else its `.zst` name (see `path`)."""
        copy = self._on_disk(sha256)
        if isinstance(copy, PackedCopy):
            return copy.pack
        return copy or Path(self._name(sha256, _ZST))

    def _name(self, sha256: str, suffix: str) -> str:
        return f"{self._root}{os.sep}{sha256[:2]}{os.sep}{sha256}{suffix}"

    def _wait_pending(self, sha256: str) -> bool:
        """Wait for a background write of this sha256 still in flight; True if there was one."""
        future = self._pending.get(sha256)
        if future is None:
            return False
        wait_for([future])  # its failure is reported by the batch that queued it
        return True

    def _existing(self, sha256: str, *, sure: bool = False) -> Copy | None:
        """The archived copy of a checked sha256, if any, once a write of it in flight is done.

        `sure`: a read, which must not miss another process's pack just indexed (a put that
        misses one only stores the bytes again).
        """
        self._wait_pending(sha256)
        return self._on_disk(sha256, sure=sure)

    def _on_disk(self, sha256: str, *, sure: bool = False) -> Copy | None:
        """The first copy found as `.fit`, `.zst`, then `.gz` (new FIT files first), else in a
        pack (a loose copy, e.g. one that replaced a damaged packed one, comes first)."""
        base = self._name(sha256, "")  # every put asks: plain os.path calls, Path only when found
        for suffix in _SUFFIXES:
            name = base + suffix
            if os.path.isfile(name):
                return Path(name)
        return self._packs.get(sha256, sure=sure)

    def has(self, sha256: str) -> bool:
        return self._existing(self._check(sha256), sure=True) is not None

    __contains__ = has

    # ---- bulk mode

    @contextlib.contextmanager
    def deferred_sync(self, *, background: bool = True) -> Iterator[None]:
        """Bulk mode: writes go to the writer thread unsynced; on exit all are awaited and synced.

        `background=False` writes each file in `put` instead (still unsynced, failures still
        reported by the exit), for a caller whose other core is already busy (ingest's forked
        analysis helper): a third runnable thread would only take turns with the other two.

        Use it INSIDE the database transaction that references the files: the exit raises
        StoreError (naming the file) if any write failed, so the transaction rolls back, and
        otherwise returns only once every file is on disk. If the block itself raises, writes not
        yet started are cancelled, the others awaited, and the block's exception propagates.
        Nested use joins the outer batch; each thread has its own.
        """
        if getattr(self._local, "batch", None) is not None:
            yield
            return
        batch = self._local.batch = _Batch(
            background,
            PackWriter(self.root / PACKS, functools.partial(make_private_dir, sync=False)),
        )
        try:
            yield
        except BaseException:
            self._local.batch = None
            for future in batch.writes.values():
                future.cancel()  # not started yet: never runs, so never leaves a file
            self._settle(batch)  # what was written is kept (and synced, as before)
            raise
        self._local.batch = None
        failed = self._settle(batch)
        if failed is not None:
            sha256, exc = failed
            if isinstance(exc, StoreError):  # _write_atomic's message names the file
                raise exc
            raise StoreError(f"cannot write archived raw file {self._path(sha256)}: {exc}") from exc

    def start_sync(self) -> None:
        """Start making the open bulk block's files durable now, in the writer thread.

        For a block that has put its files and goes on with other work (an import batch, while
        it analyses and stores them): the disk writes then overlap that work, and the block's
        exit, which still syncs, finds little left to wait for. A failure of this early flush is
        reported by the exit like a failed write. Once per block; no-op outside one.
        """
        batch: _Batch | None = getattr(self._local, "batch", None)
        if batch is None or batch.flush is not None or not batch.writes:
            return
        writes = list(batch.writes.values())  # this thread's snapshot: `put` may add more
        with self._lock:
            batch.flush = self._writer_thread().submit(self._flush_written, writes)

    def _flush_written(self, writes: list[Future[Copy | None]]) -> None:
        """syncfs for the files of `writes` that were written (runs in the writer thread)."""
        wait_for(writes)  # done already when queued before this flush (FIFO)
        paths = [
            _file_of(copy)
            for future in writes
            if not future.cancelled()
            and future.exception() is None
            and (copy := future.result()) is not None
        ]
        if paths:
            self._sync(paths)

    def _settle(self, batch: _Batch) -> tuple[str, BaseException] | None:
        """Wait for all the batch's writes, sync the files written; the first failure, if any.

        Also syncs when the batch kept a copy that another thread's bulk block wrote and has not
        synced yet: this batch's transaction may commit first.
        """
        wait_for(batch.writes.values())
        batch.pack.close()
        written: list[Path] = []
        synced: list[str] = []
        indexed = list(batch.pack.entries)  # this batch's payloads, and others' it keeps
        failed: tuple[str, BaseException] | None = None
        for sha256, future in batch.writes.items():
            if future.cancelled():
                continue
            exc = future.exception()
            if exc is not None:
                failed = failed or (sha256, exc)
                continue
            copy = future.result()
            if copy is None and sha256 in self._unsynced:  # kept another block's unsynced copy
                copy = self._on_disk(sha256)
                if isinstance(copy, PackedCopy):
                    indexed.append((sha256, copy))  # its index may not be written yet
            if copy is not None:
                written.append(_file_of(copy))
                synced.append(sha256)
        flush_error = batch.flush.exception() if batch.flush is not None else None  # waits for it
        if failed is None and flush_error is not None:  # the writes went through, the flush not
            failed = (next(iter(batch.writes)), flush_error)
        if indexed:
            try:
                written.append(self._write_index(indexed, batch.pack.path))
            except StoreError as exc:  # its payloads stay unsynced: a later block indexes them
                failed = failed or (indexed[0][0], exc)
                unindexed = {sha for sha, _ in indexed}
                synced = [sha for sha in synced if sha not in unindexed]
        if written:
            self._sync(list(dict.fromkeys(written)))
            self._unsynced.difference_update(synced)
        return failed

    def _write_index(self, entries: list[tuple[str, PackedCopy]], pack: Path | None) -> Path:
        """The index of a batch's packed payloads, written atomically (synced with the batch);
        named after the batch's own pack when it wrote one (see `remove_stale_tmp`)."""
        name = pack.stem + INDEX_SUFFIX if pack is not None else new_name(INDEX_SUFFIX)
        path = self.root / PACKS / name
        self._write_atomic(
            path, "".join(copy.line(sha) for sha, copy in entries).encode(), sync=False
        )
        return path

    def _queue(self, batch: _Batch, sha256: str, data: bytes, found: Copy | None) -> None:
        """Hand verifying/writing `data` to the writer thread, on behalf of `batch`."""
        with self._lock:
            future = self._writer_thread().submit(
                self._store, sha256, data, found, sync=False, pack=batch.pack
            )
            self._pending[sha256] = future
        future.add_done_callback(functools.partial(self._forget, sha256))
        batch.writes[sha256] = future
        batch.queued.append((future, len(data)))
        batch.queued_bytes += len(data)
        while batch.queued and (
            batch.queued[0][0].done() or batch.queued_bytes > _MAX_QUEUED_BYTES
        ):
            oldest, size = batch.queued.popleft()
            batch.queued_bytes -= size
            wait_for([oldest])

    def _writer_thread(self) -> ThreadPoolExecutor:
        """The one writer thread, started when first needed (call with the lock held)."""
        if self._writer is None or self._writer_pid != os.getpid():
            self._writer = ThreadPoolExecutor(
                1, thread_name_prefix="evenstride-archive", initializer=self._note_writer
            )
            self._writer_pid = os.getpid()
        return self._writer

    def _note_writer(self) -> None:
        self._writer_tid = threading.get_native_id()

    def _write_now(
        self, sha256: str, data: bytes, found: Copy | None, pack: PackWriter
    ) -> Future[Copy | None]:
        """`_store` unsynced in this thread, its outcome kept like a writer thread's would be."""
        future: Future[Copy | None] = Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(self._store(sha256, data, found, sync=False, pack=pack))
        except Exception as exc:  # noqa: BLE001 - reported by the batch's exit, as in background
            future.set_exception(exc)
        return future

    def _forget(self, sha256: str, future: Future[Copy | None]) -> None:
        with self._lock:
            if self._pending.get(sha256) is future:
                del self._pending[sha256]

    @staticmethod
    def _sync(paths: list[Path]) -> None:
        """Make the batch's files and their folder entries durable, with one flush per file system.

        syncfs(2) flushes only the file system that holds the archive: sync(2) would also wait for
        every other mounted one (a USB disk, a network share) on the machine a nightly job runs
        on. Linux reports write-back errors through syncfs, which raise StoreError here.
        """
        if _syncfs is None:  # pragma: no cover - not Linux
            RawArchive._sync_each(paths)
            return
        flushed: set[int] = set()
        for folder in dict.fromkeys(p.parent for p in paths):
            try:
                device = os.stat(folder).st_dev
                if device in flushed:
                    continue
                fd = os.open(folder, os.O_RDONLY)
                try:
                    if _syncfs(fd) != 0:
                        code = ctypes.get_errno() or errno.EIO
                        raise OSError(code, os.strerror(code))
                finally:
                    os.close(fd)
            except OSError as exc:
                raise StoreError(
                    f"cannot sync archived raw files in {folder}: {exc.strerror}"
                ) from exc
            flushed.add(device)

    @staticmethod
    def _sync_each(paths: list[Path]) -> None:  # pragma: no cover - platforms without syncfs
        sync = getattr(os, "sync", None)
        if sync is not None:
            sync()  # one flush of everything written: far cheaper than one fsync per file
            return
        for path in paths:
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        for folder in {p.parent for p in paths}:
            _fsync_dir(folder)

    # ---- put / get

    def put(self, data: bytes | bytearray | memoryview) -> str:
        """Archive `data` unless an intact copy is already there; return its sha256.

        Idempotent. An existing copy is verified first; a corrupt one is replaced by the good bytes
        we now hold. In a bulk block the verifying and writing happen in the writer thread (the
        block's exit reports a failure); otherwise the file is on disk and synced on return.
        """
        data = bytes(data)
        sha256 = hashlib.sha256(data).hexdigest()
        batch: _Batch | None = getattr(self._local, "batch", None)
        if batch is not None:
            if sha256 not in batch.writes:  # the same bytes twice in a batch: written once
                found = self._existing(sha256)
                if batch.background:
                    self._queue(batch, sha256, data, found)
                else:
                    batch.writes[sha256] = self._write_now(sha256, data, found, batch.pack)
            return sha256
        waited = self._wait_pending(sha256)  # another thread's bulk write of the same bytes
        found = self._on_disk(sha256)
        unsynced = found is not None and (waited or sha256 in self._unsynced)
        if unsynced and isinstance(found, PackedCopy):
            found = None  # in a pack whose index may not be written yet: a loose copy instead
        written = self._store(sha256, data, found, sync=True)
        if written is None and isinstance(found, Path) and unsynced:
            self._sync_file(found)  # kept a copy a bulk block wrote but has not synced yet
        return sha256

    def _store(
        self,
        sha256: str,
        data: bytes,
        found: Copy | None,
        *,
        sync: bool,
        pack: PackWriter | None = None,
    ) -> Copy | None:
        """Keep `found` if intact, else write `data`; the copy written (None: kept the copy).

        A FIT file is stored as it is (`.fit`), anything else as a zstd frame (`.zst`): into
        `pack` when given (a bulk block), else as a loose file.
        """
        if found is not None:
            try:
                self._verified(found, sha256)
                return None
            except ArchiveCorruptError:
                pass  # heal it below
        suffix = _FIT if _is_fit(data) else _ZST
        payload = data if suffix == _FIT else self._compressor().compress(data)
        copy: Copy
        if pack is not None:
            copy = pack.append(sha256, payload, suffix)
            self._packs.add(sha256, copy)
        else:
            copy = Path(self._name(sha256, suffix))
            self._write_atomic(copy, payload, sync=sync)
        if not sync:
            self._unsynced.add(sha256)  # until its batch has synced
        if isinstance(found, Path) and found != copy:  # the corrupt copy is not the new one
            with contextlib.suppress(OSError):
                found.unlink()
        return copy

    def _sync_file(self, path: Path) -> None:
        """fsync one existing file and its folder (a copy a bulk block wrote without)."""
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StoreError(f"cannot sync archived raw file {path}: {exc.strerror}") from exc
        _fsync_dir(path.parent)

    def get(self, sha256: str) -> bytes:
        """The original bytes; KeyError if absent, ArchiveCorruptError if they no longer match."""
        sha256 = self._check(sha256)
        path = self._existing(sha256, sure=True)
        if path is None:
            raise KeyError(sha256)
        return self._verified(path, sha256)

    def _verified(self, path: Copy, sha256: str) -> bytes:
        """The original bytes of the archived copy at `path`, checked against its sha256."""
        try:
            stored = path.read_bytes()
        except FileNotFoundError:
            raise KeyError(sha256) from None
        except OSError as exc:
            raise StoreError(f"cannot read archived raw file {path}: {exc.strerror}") from exc
        try:
            suffix = path.suffix
            if suffix == _FIT:
                data = stored
            elif suffix == _GZ:
                data = gzip.decompress(stored)
            else:
                data = self._decompressor().decompress(stored)
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
        """Every archived sha256, sorted, once even if it has two copies (a `.fit` beside an older
        `.gz`); temporary files of interrupted writes are skipped."""
        if not self.root.is_dir():
            return
        found = self._packs.shas()
        for sub in self.root.iterdir():
            if not (sub.is_dir() and len(sub.name) == 2):
                continue
            for f in sub.iterdir():
                m = _FINAL_NAME.fullmatch(f.name)
                if m and m.group(1).startswith(sub.name):
                    found.add(m.group(1))
        yield from sorted(found)

    def __iter__(self) -> Iterator[str]:
        return self.iter()

    def remove_stale_tmp(self, max_age_s: float = 3600.0) -> int:
        """Delete temporary files left by writers killed mid-put, and packs whose block was
        killed before writing its index; return how many were removed.

        Only files older than `max_age_s` go, so a put running in another process is not harmed.
        A pack without an index of its own name is only removed when no index names it either
        (another block may have kept a copy from it), which needs every index read: rare, as
        only a killed block leaves such a pack.
        """
        if not self.root.is_dir():
            return 0
        cutoff = time.time() - max_age_s
        packs = self.root / PACKS
        old = [
            *self.root.glob(f"??/{_TMP_PREFIX}*"),
            *packs.glob(f"{_TMP_PREFIX}*"),
            *(p for p in packs.glob(f"*{PACK_SUFFIX}") if not p.with_suffix(INDEX_SUFFIX).exists()),
        ]
        old = [p for p in old if _mtime(p) <= cutoff]
        if any(p.suffix == PACK_SUFFIX for p in old):
            named = self._packs.packs_named()
            old = [p for p in old if p.suffix != PACK_SUFFIX or p.name not in named]
        removed = 0
        for path in old:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
        return removed

    def _write_atomic(self, path: Path, payload: bytes, *, sync: bool) -> None:
        """Temp file + rename; `sync=False` (bulk) leaves the fsyncs to the batch's one sync."""
        folder = os.path.dirname(path)
        try:
            try:  # the folder mostly exists: try first, rather than check every time
                fd, tmp = _new_tmp_file(folder)
            except FileNotFoundError:
                make_private_dir(Path(folder), sync=sync)
                fd, tmp = _new_tmp_file(folder)
        except OSError as exc:
            raise StoreError(f"cannot write archived raw file {path}: {exc.strerror}") from exc
        try:
            try:  # created 0600
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view) :]
                if sync:
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
        if sync:
            _fsync_dir(path.parent)
