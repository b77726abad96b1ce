"""Bulk archive writes in the background writer thread: same files, same guarantees.

In a bulk block (`deferred_sync`) `put` returns the sha256 at once and a writer thread writes
(compressing what is not a FIT file). These tests check what must not change: a failed write surfaces as StoreError at the
end of the block and the surrounding transaction rolls back; the same bytes are written once;
a file is readable right after its put; at the block's exit every file is written and synced
before the commit; a block that raises leaves no temporary file and no write running after it;
a process killed mid-batch never leaves a committed row whose raw file is missing.
Faults are injected at the OS boundary (os.write / os.replace / libc's syncfs), never in our code.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import zstandard

from evenstride.ingest import Job, bulk, ingest_many
from evenstride.store import RawArchive, Store, StoreError, open_store
from evenstride.store import archive as archive_module
from evenstride.store.packs import PackedCopy

SYNTHETIC = Path(__file__).resolve().parents[1] / "fixtures" / "synthetic"
linux_only = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="maps file descriptors to paths via /proc"
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "home")
    yield s
    s.close()


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def _blobs(n: int, tag: bytes = b"run") -> list[bytes]:
    """`n` blobs whose sha256 start with distinct hex digit pairs (distinct shard folders)."""
    out: list[bytes] = []
    shards: set[str] = set()
    i = 0
    while len(out) < n:
        blob = tag + b"-%d-" % i + bytes(range(256)) * 20
        shard = hashlib.sha256(blob).hexdigest()[:2]
        if shard not in shards:
            shards.add(shard)
            out.append(blob)
        i += 1
    return out


def _sha(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def _is_payload_of(data: object, blobs: list[bytes]) -> bytes | None:
    """The blob a pack write stores: its zstd frame (they are not FIT files), written whole."""
    written = bytes(memoryview(data))  # type: ignore[arg-type]
    frame = zstandard.ZstdCompressor(level=archive_module._LEVEL).compress
    return next((b for b in blobs if frame(b) == written), None)


def _fail_pack_writes_of(
    monkeypatch: pytest.MonkeyPatch, blobs: list[bytes], err: int = errno.ENOSPC
) -> list[str]:
    """Writing these blobs into a pack raises OSError(err) (the OS, faked)."""
    real_pwrite = os.pwrite
    hits: list[str] = []

    def pwrite(fd: int, data: object, offset: int) -> int:
        if _is_payload_of(data, blobs) is not None:
            hits.append(_fd_path(fd))
            raise OSError(err, os.strerror(err))
        return real_pwrite(fd, data, offset)  # type: ignore[arg-type]

    monkeypatch.setattr(archive_module.os, "pwrite", pwrite)
    return hits


def _on_pack_writes(monkeypatch: pytest.MonkeyPatch, before: Callable[[object], None]) -> None:
    """Call `before(data)` ahead of every write into a pack file (a slow disk, a log)."""
    real_pwrite = os.pwrite

    def pwrite(fd: int, data: object, offset: int) -> int:
        if _fd_path(fd).endswith(".pack"):
            before(data)
        return real_pwrite(fd, data, offset)  # type: ignore[arg-type]

    monkeypatch.setattr(archive_module.os, "pwrite", pwrite)


def _packed(store: Store, blob: bytes) -> PackedCopy:
    copy = store.archive._on_disk(_sha(blob))
    assert isinstance(copy, PackedCopy), copy
    return copy


def _add_activity(store: Store, sha: str, name: str) -> int:
    return store.upsert_activity("default", source="test", source_id=name, sha256=sha)


def _tmp_files(root: Path) -> list[Path]:
    return list(root.glob("*/.tmp-*"))


# --------------------------------------------------------------------------- failures


@linux_only
@pytest.mark.parametrize("background", [True, False], ids=["writer-thread", "in-put"])
def test_failed_write_raises_at_block_end_and_rolls_back(
    store: Store, monkeypatch: pytest.MonkeyPatch, background: bool
) -> None:
    """Also with background=False (writes in `put`, beside ingest's forked helper)."""
    good, bad1, bad2 = _blobs(3)
    hits = _fail_pack_writes_of(monkeypatch, [bad1, bad2])
    with pytest.raises(StoreError) as info, bulk(store, background=background):
        for i, blob in enumerate((good, bad1, bad2)):
            sha = store.archive.put(blob)  # a failed write is reported by the block's exit
            assert sha == _sha(blob)
            _add_activity(store, sha, f"file-{i}")
    message = str(info.value)
    # the first failure in put order, naming the batch's pack, with the OS's reason, on one line
    assert message.startswith(f"cannot write archive pack {store.archive.root / 'packs'}/")
    assert "No space left on device" in message and "\n" not in message
    assert len(hits) == 2  # both failing writes were attempted: the exit waited for all
    assert store.list_activities() == []  # the transaction rolled back
    assert not store.archive.has(_sha(bad1)) and not store.archive.has(_sha(bad2))
    assert _tmp_files(store.archive.root) == []
    monkeypatch.undo()  # the disk is fine again: the same batch now goes through
    with bulk(store):
        for i, blob in enumerate((good, bad1, bad2)):
            _add_activity(store, store.archive.put(blob), f"file-{i}")
    assert len(store.list_activities()) == 3
    assert [store.archive.get(_sha(b)) for b in (good, bad1, bad2)] == [good, bad1, bad2]


@linux_only
def test_failed_rename_raises_too(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    real_replace = os.replace

    def replace(src: object, dst: object, **kw: object) -> None:  # the batch's pack index
        if str(dst).endswith(".idx"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_replace(src, dst, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(archive_module.os, "replace", replace)
    (blob,) = _blobs(1)
    with pytest.raises(StoreError, match="Input/output error"), bulk(store):
        _add_activity(store, store.archive.put(blob), "x")
    assert store.list_activities() == [] and _tmp_files(store.archive.root) == []
    assert not RawArchive(store.archive.root).has(_sha(blob))  # no index names its pack


@linux_only
@pytest.mark.parametrize("workers", [1, None], ids=["one-process", "forked-helper"])
def test_ingest_many_with_a_full_disk_stores_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int | None
) -> None:
    files = sorted(SYNTHETIC.glob("*.fit"))
    assert files
    jobs = [Job(p.read_bytes(), source="file", source_id=p.name, file_name=p.name) for p in files]
    root = str((tmp_path / "home" / "raw").resolve())
    real_write, real_pwrite = os.write, os.pwrite

    def full(fd: int) -> None:  # every archive file write: disk full
        if _fd_path(fd).startswith(root + "/"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def write(fd: int, data: object) -> int:
        full(fd)
        return real_write(fd, data)  # type: ignore[arg-type]

    def pwrite(fd: int, data: object, offset: int) -> int:
        full(fd)
        return real_pwrite(fd, data, offset)  # type: ignore[arg-type]

    with open_store(tmp_path / "home") as store:
        monkeypatch.setattr(archive_module.os, "write", write)
        monkeypatch.setattr(archive_module.os, "pwrite", pwrite)
        with pytest.raises(StoreError, match="cannot write archive pack .*No space left"):
            ingest_many(store, jobs, workers=workers)
        monkeypatch.undo()
        assert store.list_activities() == [] and store.list_runs() == []
        assert list(store.archive.iter()) == [] and _tmp_files(store.archive.root) == []
        results = ingest_many(store, jobs, workers=workers)  # space again: the import goes through
        assert {r.status for r in results} <= {"imported", "partial"}
        for act in store.list_activities():
            assert store.archive.get(act["sha256"])


# --------------------------------------------------------------------------- normal operation


@linux_only
def test_same_bytes_in_one_batch_are_written_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = _blobs(2)
    go, released = threading.Event(), threading.Event()
    written: list[bytes] = []

    def before(data: object) -> None:  # a slow disk: the first file waits for `go`
        blob = _is_payload_of(data, [a, b])
        assert blob is not None
        written.append(blob)
        if blob is a:
            go.wait(10)
            released.set()

    _on_pack_writes(monkeypatch, before)
    with bulk(store):
        shas = [store.archive.put(x) for x in (a, bytearray(a), b, memoryview(a), b)]
        # the repeats returned while the first write of `a` was still held up: no waiting
        assert not released.is_set()
        go.set()
    assert shas == [_sha(a), _sha(a), _sha(b), _sha(a), _sha(b)]
    assert written == [a, b] and _packed(store, a).pack == _packed(store, b).pack
    with bulk(store):  # a later batch verifies the copy and keeps it
        store.archive.put(a)
    assert written == [a, b]


def test_get_and_has_right_after_a_bulk_put(store: Store) -> None:
    blobs = _blobs(6)
    with store.archive.deferred_sync():
        for blob in blobs:
            sha = store.archive.put(blob)
            assert store.archive.has(sha) and sha in store.archive
            assert store.archive.get(sha) == blob  # waits for its write if still in flight
    assert sorted(store.archive.iter()) == sorted(_sha(b) for b in blobs)


@linux_only
def test_every_file_is_written_and_synced_before_the_commit(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    go = threading.Event()
    real_replace, real_syncfs = os.replace, archive_module._syncfs

    def before(data: object) -> None:  # a slow disk: writes wait for `go`
        go.wait(10)
        events.append("file")

    def replace(src: object, dst: object, **kw: object) -> None:
        real_replace(src, dst, **kw)  # type: ignore[arg-type]
        events.append(Path(str(dst)).suffix)

    def syncfs(fd: int) -> int:
        events.append("sync")
        return real_syncfs(fd)

    _on_pack_writes(monkeypatch, before)
    monkeypatch.setattr(archive_module.os, "replace", replace)
    monkeypatch.setattr(archive_module, "_syncfs", syncfs)
    sa.event.listen(store._engine, "commit", lambda conn: events.append("commit"))
    blobs = _blobs(12)
    timer = threading.Timer(0.1, go.set)
    with bulk(store):
        for i, blob in enumerate(blobs):
            _add_activity(store, store.archive.put(blob), f"f{i}")
        timer.start()  # the disk catches up only after the block has begun to exit
    timer.join()
    assert events == ["file"] * 12 + [".idx", "sync", "commit"]
    for act in store.list_activities():
        copy = store.archive._on_disk(act["sha256"])
        assert isinstance(copy, PackedCopy) and copy.pack.stat().st_mode & 0o777 == 0o600
        assert zstandard.ZstdDecompressor().decompress(copy.read_bytes()) in blobs


@linux_only
def test_a_failed_flush_rolls_the_batch_back(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """syncfs reports a write-back error (EIO): nothing is committed that points at the files."""
    flushed: list[int] = []

    def syncfs(fd: int) -> int:
        flushed.append(fd)
        ctypes.set_errno(errno.EIO)
        return -1

    monkeypatch.setattr(archive_module, "_syncfs", syncfs)
    blobs = _blobs(3)
    with pytest.raises(StoreError, match="Input/output error") as info, bulk(store):
        for i, blob in enumerate(blobs):
            _add_activity(store, store.archive.put(blob), f"f{i}")
    assert str(store.archive.root) in str(info.value) and len(flushed) == 1
    assert store.list_activities() == []  # the transaction rolled back
    monkeypatch.undo()
    with bulk(store):
        for i, blob in enumerate(blobs):
            _add_activity(store, store.archive.put(blob), f"f{i}")
    assert len(store.list_activities()) == 3


@linux_only
@pytest.mark.parametrize("background", [True, False], ids=["writer-thread", "in-put"])
def test_an_early_flush_runs_while_the_block_works_and_the_exit_still_syncs(
    store: Store, monkeypatch: pytest.MonkeyPatch, background: bool
) -> None:
    """start_sync flushes the files put so far in the writer thread while the block goes on;
    files put after it are flushed by the exit, which still syncs before the commit."""
    events: list[str] = []
    flushed_early = threading.Event()
    real_replace, real_syncfs = os.replace, archive_module._syncfs

    def replace(src: object, dst: object, **kw: object) -> None:
        real_replace(src, dst, **kw)  # type: ignore[arg-type]
        events.append(Path(str(dst)).suffix)

    def syncfs(fd: int) -> int:
        events.append("sync")
        flushed_early.set()
        return real_syncfs(fd)

    _on_pack_writes(monkeypatch, lambda data: events.append("file"))
    monkeypatch.setattr(archive_module.os, "replace", replace)
    monkeypatch.setattr(archive_module, "_syncfs", syncfs)
    sa.event.listen(store._engine, "commit", lambda conn: events.append("commit"))
    blobs = _blobs(5)
    with bulk(store, background=background):
        for i, blob in enumerate(blobs[:3]):
            _add_activity(store, store.archive.put(blob), f"f{i}")
        store.archive.start_sync()
        store.archive.start_sync()  # once per block: the second call does nothing
        assert flushed_early.wait(10)  # flushed while the block is still open
        for i, blob in enumerate(blobs[3:], start=3):
            _add_activity(store, store.archive.put(blob), f"f{i}")
    assert events == ["file"] * 3 + ["sync"] + ["file"] * 2 + [".idx", "sync", "commit"]
    assert [store.archive.get(_sha(b)) for b in blobs] == blobs
    assert store.archive._unsynced == set()


def test_start_sync_outside_a_bulk_block_does_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive_module, "_syncfs", lambda fd: pytest.fail("flushed"))
    store.archive.start_sync()
    with bulk(store):
        store.archive.start_sync()  # nothing put yet: nothing to flush


@linux_only
@pytest.mark.parametrize("background", [True, False], ids=["writer-thread", "in-put"])
def test_a_failed_early_flush_rolls_the_batch_back(
    store: Store, monkeypatch: pytest.MonkeyPatch, background: bool
) -> None:
    """The early flush meets a write-back error (EIO) and the exit's own flush succeeds (the
    kernel reports an error once): the exit still raises, and nothing is committed."""
    calls: list[int] = []
    real_syncfs = archive_module._syncfs

    def syncfs(fd: int) -> int:
        calls.append(fd)
        if len(calls) == 1:
            ctypes.set_errno(errno.EIO)
            return -1
        return real_syncfs(fd)

    monkeypatch.setattr(archive_module, "_syncfs", syncfs)
    blobs = _blobs(3)
    with pytest.raises(StoreError, match="Input/output error"), bulk(store, background=background):
        for i, blob in enumerate(blobs):
            _add_activity(store, store.archive.put(blob), f"f{i}")
        store.archive.start_sync()
    assert len(calls) == 2  # the early flush, then the exit's
    assert store.list_activities() == []


@linux_only
@pytest.mark.parametrize("workers", [None, 1], ids=["forked-helper", "one-process"])
def test_ingest_many_flushes_each_batch_early_and_syncs_before_each_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int | None
) -> None:
    """Each batch: its files, an early flush while it analyses, the exit's flush, the commit."""
    files = sorted(SYNTHETIC.rglob("*.fit"))[:3]
    assert len(files) == 3
    monkeypatch.setattr("evenstride.ingest.BULK_FILES", 2)
    events: list[str] = []
    real_replace, real_syncfs = os.replace, archive_module._syncfs

    def replace(src: object, dst: object, **kw: object) -> None:
        real_replace(src, dst, **kw)  # type: ignore[arg-type]
        events.append(Path(str(dst)).suffix)

    def syncfs(fd: int) -> int:
        events.append("sync")
        return real_syncfs(fd)

    _on_pack_writes(monkeypatch, lambda data: events.append("file"))
    monkeypatch.setattr(archive_module.os, "replace", replace)
    monkeypatch.setattr(archive_module, "_syncfs", syncfs)
    with open_store(tmp_path / "home") as store:
        sa.event.listen(store._engine, "commit", lambda conn: events.append("commit"))
        jobs = [Job(p.read_bytes(), source="test", source_id=p.name) for p in files]
        results = ingest_many(store, jobs, workers=workers)
    assert [r.status for r in results] == ["imported"] * 3
    batch = ["sync", ".idx", "sync", "commit"]
    assert events == ["file", "file", *batch, "file", *batch]


def test_one_flush_per_file_system_not_per_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's pack and index, and a copy another block wrote, on one file system: one
    syncfs, never a machine-wide sync."""
    if archive_module._syncfs is None:
        pytest.skip("no syncfs on this platform")
    calls: list[int] = []
    real = archive_module._syncfs
    monkeypatch.setattr(archive_module, "_syncfs", lambda fd: (calls.append(fd), real(fd))[1])
    monkeypatch.setattr(os, "sync", lambda: pytest.fail("machine-wide sync"))
    archive = RawArchive(tmp_path / "raw")
    blobs = _blobs(6)
    kept: list[str] = []
    with archive.deferred_sync():
        archive.put(blobs[0])  # written by this block, unsynced: the other block keeps it

        def other() -> None:
            with archive.deferred_sync():
                kept.extend(archive.put(b) for b in blobs)

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert len(calls) == 1  # the other block: its pack, its index and this block's pack
    assert len(calls) == 2 and [archive.get(s) for s in kept] == blobs
    archive.close()


def test_corrupt_copies_are_healed_in_bulk(store: Store) -> None:
    a, b = _blobs(2)
    sha_a = store.archive.put(a)
    store.archive.path(sha_a).write_bytes(b"not zstd at all")
    sha_b = _sha(b)
    legacy = store.archive.path(sha_b).with_suffix(".gz")
    legacy.parent.mkdir(mode=0o700, exist_ok=True)
    legacy.write_bytes(b"\x1f\x8b not gzip either")
    with bulk(store):
        assert store.archive.put(a) == sha_a and store.archive.put(b) == sha_b
    assert store.archive.get(sha_a) == a and store.archive.get(sha_b) == b
    assert not legacy.exists() and _packed(store, b).read_bytes()
    fresh = RawArchive(store.archive.root)  # found the same way by another process
    assert fresh.get(sha_a) == a and fresh.get(sha_b) == b


@linux_only
def test_a_block_that_raises_leaves_no_write_behind(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes not started are cancelled; a started one is awaited; no temp file remains."""
    blobs = _blobs(4)
    started: set[bytes] = set()
    go = threading.Event()

    def before(data: object) -> None:  # a slow disk: writes wait for `go`
        blob = _is_payload_of(data, blobs)
        assert blob is not None
        started.add(blob)
        go.wait(30)

    _on_pack_writes(monkeypatch, before)

    class Boom(Exception):
        pass

    timer = threading.Timer(0.5, go.set)  # lets the held-up write finish a little later
    with pytest.raises(Boom), bulk(store):
        for i, blob in enumerate(blobs):
            _add_activity(store, store.archive.put(blob), f"f{i}")
        timer.start()
        raise Boom
    assert go.is_set()  # the exit waited for the write held up by the slow disk ...
    assert _tmp_files(store.archive.root) == []  # ... so its temporary file is gone
    timer.join()
    n_started = len(started)
    assert n_started <= 1  # the writer was held up on the first file; the rest were cancelled
    assert store.list_activities() == []
    for blob in blobs:  # a write that started was completed; the others never ran
        assert store.archive.has(_sha(blob)) == (blob in started)
        if blob in started:
            assert store.archive.get(_sha(blob)) == blob
    assert _tmp_files(store.archive.root) == []
    assert len(started) == n_started  # nothing is still being written after the block


@linux_only
def test_other_threads_wait_for_a_write_in_flight(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    (blob,) = _blobs(1)
    sha = _sha(blob)
    go = threading.Event()
    fsynced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        fsynced.append(str(Path(_fd_path(fd)).resolve()))
        real_fsync(fd)

    _on_pack_writes(monkeypatch, lambda data: go.wait(30))
    monkeypatch.setattr(archive_module.os, "fsync", fsync)
    got: dict[str, object] = {}

    def other(key: str, call: Callable[[], object]) -> threading.Thread:
        t = threading.Thread(target=lambda: got.__setitem__(key, call()))
        t.start()
        return t

    with store.archive.deferred_sync():
        assert store.archive.put(blob) == sha  # its write is held up by the slow disk
        readers = [
            other("get", lambda: store.archive.get(sha)),
            other("has", lambda: store.archive.has(sha)),
            other("put", lambda: store.archive.put(blob)),  # not in a bulk block: synchronous
        ]
        go.set()
        for t in readers:
            t.join(30)
    assert got == {"get": blob, "has": True, "put": sha}
    # the other thread's plain put found the batch's copy in a pack not indexed yet, so it
    # wrote a durable loose copy of its own (which lookups now find first)
    loose = store.archive.root / sha[:2] / f"{sha}.zst"
    folder = loose.parent.resolve()  # fsynced as its temporary file, then its folder
    assert any(Path(p).parent == folder and ".tmp-" in p for p in fsynced)
    assert str(folder) in fsynced and store.archive.path(sha) == loose


def test_bulk_mode_belongs_to_the_thread_that_opened_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        fsyncs.append(threading.get_ident())
        real_fsync(fd)

    monkeypatch.setattr(archive_module.os, "fsync", fsync)
    a, b = _blobs(2)
    with store.archive.deferred_sync():
        store.archive.put(a)
        t = threading.Thread(target=store.archive.put, args=(b,))
        t.start()
        t.join()
        # the other thread's put was its own: written and fsynced before it returned
        assert store.archive.path(_sha(b)).exists() and t.ident in fsyncs
    assert threading.get_ident() not in fsyncs


def test_queued_bytes_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive_module, "_MAX_QUEUED_BYTES", 1)  # every put waits for the last
    archive = RawArchive(tmp_path / "raw")
    blobs = _blobs(5)
    with archive.deferred_sync():
        for blob in blobs:
            archive.put(blob)
            assert archive.path(_sha(blob)).exists()  # written before put returned
    assert [archive.get(_sha(b)) for b in blobs] == blobs
    archive.close()


def test_close_stops_the_writer_and_a_later_batch_starts_it_again(tmp_path: Path) -> None:
    def writers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("evenstride-archive")]

    before = set(writers())
    with open_store(tmp_path / "home") as store:
        with store.archive.deferred_sync():
            store.archive.put(b"one")
        new = set(writers()) - before
        assert new
        store.archive.close()
        assert not set(writers()) - before
        if Path("/proc/self/task").is_dir():  # gone from the OS too: a fork may follow at once
            tasks = set(os.listdir("/proc/self/task"))
            assert not {str(t.native_id) for t in new} & tasks
        with store.archive.deferred_sync():
            store.archive.put(b"two")
        assert store.archive.get(_sha(b"two")) == b"two"
    assert not set(writers()) - before  # Store.close stopped it


# --------------------------------------------------------------------------- kill


_BULK_FOREVER = """
import os, sys, time
from pathlib import Path
from evenstride.store import open_store
real_pwrite = os.pwrite
def slow_pwrite(fd, data, offset):  # a slow disk: the writer thread falls behind the batch
    time.sleep(0.003)
    return real_pwrite(fd, data, offset)
os.pwrite = slow_pwrite
store = open_store(Path(sys.argv[1]))
print("ready", flush=True)
n = 0
while True:
    with store.transaction(), store.archive.deferred_sync():
        for _ in range(20):
            blob = os.urandom(int.from_bytes(os.urandom(3), "big") % 200_000 + 20_000)
            sha = store.archive.put(blob)
            store.upsert_activity("default", source="kill", source_id=str(n), sha256=sha)
            n += 1
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_kill_mid_batch_never_commits_a_row_without_its_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for delay in (0.3, 0.6, 0.9, 1.2):
        proc = subprocess.Popen(
            [sys.executable, "-c", _BULK_FOREVER, str(home)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()
    con = sqlite3.connect(home / "evenstride.sqlite3")
    shas = [r[0] for r in con.execute("SELECT sha256 FROM activities")]
    con.close()
    assert shas, "no batch was ever committed; the test proved nothing"
    archive = RawArchive(home / "raw")
    for sha in shas:
        archive.get(sha)  # KeyError / ArchiveCorruptError if a committed row lost its file
