"""The raw-file archive: content-addressed, verified, private, and atomic under kill.

FIT files are stored as they are (`<sha256>.fit`), anything else as a zstd frame (`.zst`);
older `.zst` copies of FIT files and `.gz` copies stay readable.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import zstandard
from test_archive_background import _add_activity, _fd_path, _tmp_files, linux_only

from evenstride.ingest import bulk
from evenstride.store import ArchiveCorruptError, RawArchive, Store, open_store
from evenstride.store import archive as archive_module
from evenstride.store.packs import PackedCopy

FIT_FILES = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "synthetic").rglob("*.fit"))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def archive(tmp_path: Path) -> RawArchive:
    return RawArchive(tmp_path / "raw")


def test_put_get_round_trip_and_layout(archive: RawArchive) -> None:
    data = b"\x0e\x10FIT" + os.urandom(1000)  # not a FIT file: no ".FIT" at bytes 8-11
    sha = archive.put(data)
    assert sha == hashlib.sha256(data).hexdigest()
    path = archive.path(sha)
    assert path == archive.root / sha[:2] / f"{sha}.zst"
    # a plain Zstandard frame of the original bytes: readable by any zstd tool
    assert zstandard.ZstdDecompressor().decompress(path.read_bytes()) == data
    assert archive.get(sha) == data
    assert archive.has(sha) and sha in archive
    assert list(archive.iter()) == [sha]


def test_put_is_idempotent(archive: RawArchive) -> None:
    data = b"same bytes" * 100
    sha = archive.put(data)
    before = archive.path(sha).stat()
    assert archive.put(bytearray(data)) == sha
    after = archive.path(sha).stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)  # not rewritten
    assert list(archive.iter()) == [sha]


def test_get_missing_raises_key_error(archive: RawArchive) -> None:
    with pytest.raises(KeyError):
        archive.get("0" * 64)
    assert not archive.has("0" * 64)
    assert list(archive.iter()) == []


@pytest.mark.parametrize("bad", ["../../etc/passwd", "abc", "g" * 64, 123])
def test_rejects_names_that_are_not_sha256(archive: RawArchive, bad: object) -> None:
    with pytest.raises(ValueError):
        archive.path(bad)  # type: ignore[arg-type]


def test_corrupt_file_is_detected_on_get_and_healed_on_put(archive: RawArchive) -> None:
    data = os.urandom(5000)
    sha = archive.put(data)
    path = archive.path(sha)

    # Valid zstd of different bytes: the hash check must catch it.
    path.write_bytes(zstandard.ZstdCompressor().compress(b"something else"))
    with pytest.raises(ArchiveCorruptError, match="no longer matches its sha256"):
        archive.get(sha)

    # Truncated frame: decompression fails, still a clear ArchiveCorruptError.
    path.write_bytes(zstandard.ZstdCompressor().compress(data)[:100])
    with pytest.raises(ArchiveCorruptError, match="corrupt") as info:
        archive.get(sha)
    assert "\n" not in str(info.value)

    assert archive.put(data) == sha  # verifies the existing copy, finds it bad, rewrites it
    assert archive.get(sha) == data


def test_private_permissions(tmp_path: Path) -> None:
    with open_store(tmp_path / "home") as store:
        sha = store.archive.put(b"private run")
        assert _mode(store.archive.root) == 0o700
        assert _mode(store.archive.path(sha).parent) == 0o700
        assert _mode(store.archive.path(sha)) == 0o600


def test_iter_and_stale_cleanup_ignore_temporary_files(archive: RawArchive) -> None:
    sha = archive.put(b"kept")
    leftover = archive.path(sha).parent / ".tmp-abandoned.zst"
    leftover.write_bytes(b"half a file")
    assert list(archive.iter()) == [sha]
    assert archive.remove_stale_tmp(max_age_s=3600) == 0  # fresh: maybe another writer's
    old = time.time() - 7200
    os.utime(leftover, (old, old))
    assert archive.remove_stale_tmp(max_age_s=3600) == 1
    assert not leftover.exists() and archive.get(sha) == b"kept"


_PUT_FOREVER = """
import os, sys
from pathlib import Path
from evenstride.store import RawArchive
archive = RawArchive(Path(sys.argv[1]))
print("ready", flush=True)
while True:
    archive.put(os.urandom(int.from_bytes(os.urandom(3), "big") % 400_000 + 50_000))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_kill_during_put_never_exposes_a_partial_file(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    rng = random.Random(1234)
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", _PUT_FOREVER, str(root)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.05, 0.3))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()
        archive = RawArchive(root)
        shas = list(archive.iter())
        for sha in shas:
            archive.get(sha)  # raises ArchiveCorruptError on any partial/garbled final file
    assert shas, "the writer never finished a single put; the test proved nothing"


def test_legacy_gzip_copies_are_still_read(tmp_path: Path) -> None:
    archive = RawArchive(tmp_path / "raw")
    data = b"an older archive wrote gzip"
    sha = hashlib.sha256(data).hexdigest()
    legacy = archive.path(sha).with_suffix(".gz")
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(gzip.compress(data))
    assert archive.has(sha) and archive.get(sha) == data
    assert archive.put(data) == sha  # an intact old copy is kept, not rewritten
    assert archive.path(sha) == legacy
    assert sorted(p.name for p in legacy.parent.iterdir()) == [legacy.name]


def test_deferred_sync_writes_then_flushes_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = RawArchive(tmp_path / "raw")
    syncs: list[int] = []
    fsyncs: list[int] = []
    real_sync, real_fsync = archive_module._syncfs, os.fsync
    if real_sync is None:
        pytest.skip("no syncfs on this platform")
    monkeypatch.setattr(archive_module, "_syncfs", lambda fd: (syncs.append(1), real_sync(fd))[1])
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd))[1])
    with archive.deferred_sync():
        shas = [archive.put(f"file {i}".encode()) for i in range(5)]
        with archive.deferred_sync():  # nested: joins the batch
            shas.append(archive.put(b"inner"))
        assert syncs == []
    assert syncs == [1] and fsyncs == []  # one flush for the batch, no per-file fsync
    assert all(archive.get(s) for s in shas)
    archive.put(b"outside a batch")
    assert syncs == [1] and fsyncs  # fsynced on its own again
    archive.close()


# --------------------------------------------------------------------------- FIT files as they are


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "home")
    yield s
    s.close()


def _copies(archive: RawArchive, sha: str) -> list[str]:
    """The names of the files for `sha` in its shard folder (temporary ones included)."""
    folder = archive.root / sha[:2]
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if sha in p.name or p.name.startswith(".tmp-"))


def _packed(archive: RawArchive, sha: str) -> PackedCopy:
    """The copy of `sha` a bulk block wrote: in a pack, as it is (`.fit`) or a zstd frame."""
    copy = archive._on_disk(sha)
    assert isinstance(copy, PackedCopy), copy
    return copy


def test_fit_files_are_stored_as_they_are(archive: RawArchive) -> None:
    assert len(FIT_FILES) >= 4
    data = FIT_FILES[0].read_bytes()
    sha = archive.put(data)
    path = archive.root / sha[:2] / f"{sha}.fit"
    assert archive.path(sha) == path
    assert path.read_bytes() == data  # the file itself: readable by any FIT tool
    assert _copies(archive, sha) == [path.name]  # no .zst beside it, no temporary file
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700 and _mode(archive.root) == 0o700
    assert archive.get(sha) == data and archive.has(sha) and list(archive.iter()) == [sha]
    before = path.stat()
    assert archive.put(bytearray(data)) == sha  # intact: kept, not rewritten
    after = path.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_json_payloads_are_stored_as_zstd_frames(archive: RawArchive) -> None:
    streams = {
        "time": {"data": list(range(3600))},
        "heartrate": {"data": [140 + i % 17 for i in range(3600)]},
        "distance": {"data": [round(i * 2.9, 1) for i in range(3600)]},
    }
    data = json.dumps(streams).encode()
    sha = archive.put(data)
    path = archive.root / sha[:2] / f"{sha}.zst"
    assert archive.path(sha) == path and _copies(archive, sha) == [path.name]
    stored = path.read_bytes()
    assert zstandard.ZstdDecompressor().decompress(stored) == data
    assert len(stored) < len(data)  # compressed, not stored as it is
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    assert archive.get(sha) == data and list(archive.iter()) == [sha]


def _fit_header(size: int) -> bytes:
    """A FIT file header of `size` bytes: size byte, protocol, profile, data size, ".FIT"."""
    return bytes([size, 0x20]) + (2132).to_bytes(2, "little") + (0).to_bytes(4, "little") + b".FIT"


@pytest.mark.parametrize(
    ("data", "suffix"),
    [
        (_fit_header(12), ".fit"),  # the shortest FIT file: a 12-byte header, nothing else
        (_fit_header(14) + b"\x00\x00" + b"records", ".fit"),
        (bytes([40]) + _fit_header(14)[1:] + b"records", ".zst"),  # header size 40: not FIT
        (bytes([13]) + _fit_header(14)[1:] + b"records", ".zst"),
        (_fit_header(12)[:11], ".zst"),  # 11 bytes: too short for ".FIT" at 8-11
        (_fit_header(14)[:8] + b".fit" + b"records", ".zst"),  # the tag is case-sensitive
        (b"\x0e" + _fit_header(14) + b"records", ".zst"),  # ".FIT" one byte late
        (b"", ".zst"),
    ],
    ids=[
        "header-12",
        "header-14",
        "size-40",
        "size-13",
        "11-bytes",
        "lower-case",
        "shifted",
        "empty",
    ],
)
def test_only_fit_headers_are_stored_uncompressed(
    archive: RawArchive, data: bytes, suffix: str
) -> None:
    sha = archive.put(data)
    path = archive.root / sha[:2] / f"{sha}{suffix}"
    assert _copies(archive, sha) == [path.name] and archive.path(sha) == path
    stored = path.read_bytes()
    if suffix == ".fit":
        assert stored == data
    else:
        assert zstandard.ZstdDecompressor().decompress(stored) == data
    assert archive.get(sha) == data


def test_an_older_zstd_copy_of_a_fit_file_is_read_and_kept(archive: RawArchive) -> None:
    """Copies written before FIT files were stored as they are stay valid: no migration."""
    data = FIT_FILES[1].read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    old = archive.root / sha[:2] / f"{sha}.zst"
    old.parent.mkdir(parents=True)
    frame = zstandard.ZstdCompressor(level=-3).compress(data)
    old.write_bytes(frame)
    assert archive.has(sha) and sha in archive
    assert archive.path(sha) == old
    assert archive.get(sha) == data
    before = old.stat()
    assert archive.put(data) == sha
    with archive.deferred_sync():
        assert archive.put(data) == sha
    archive.close()
    assert _copies(archive, sha) == [old.name]  # no .fit written beside it
    after = old.stat()
    assert old.read_bytes() == frame and (before.st_ino, before.st_mtime_ns) == (
        after.st_ino,
        after.st_mtime_ns,
    )
    assert list(archive.iter()) == [sha]


def test_a_sha256_with_several_copies_is_listed_once(archive: RawArchive) -> None:
    data = FIT_FILES[2].read_bytes()
    other = b"another file" * 50
    sha, sha_other = archive.put(data), archive.put(other)
    fit = archive.root / sha[:2] / f"{sha}.fit"
    fit.with_suffix(".zst").write_bytes(zstandard.ZstdCompressor().compress(data))
    fit.with_suffix(".gz").write_bytes(gzip.compress(data))
    assert list(archive.iter()) == sorted([sha, sha_other])
    assert archive.path(sha) == fit and archive.get(sha) == data  # the .fit is looked for first


@pytest.mark.parametrize("mode", ["plain", "bulk", "bulk-in-put"])
def test_a_corrupt_fit_copy_is_detected_and_healed(archive: RawArchive, mode: str) -> None:
    data = FIT_FILES[0].read_bytes()
    sha = archive.put(data)
    path = archive.path(sha)
    assert path.suffix == ".fit"

    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01  # one bit of a record
    path.write_bytes(flipped)
    with pytest.raises(ArchiveCorruptError, match="no longer matches its sha256"):
        archive.get(sha)
    path.write_bytes(data[:-10])  # truncated
    with pytest.raises(ArchiveCorruptError, match="corrupt"):
        archive.get(sha)

    with _block(archive, mode):
        assert archive.put(data) == sha  # verifies the copy, finds it bad, rewrites it
    archive.close()
    assert archive.get(sha) == data
    if mode == "plain":  # a single put rewrites the file
        assert path.read_bytes() == data
        assert _copies(archive, sha) == [path.name] and _mode(path) == 0o600
    else:  # a bulk block puts the good bytes in its pack; the bad file goes
        copy = _packed(archive, sha)
        assert copy.suffix == ".fit" and copy.read_bytes() == data
        assert _copies(archive, sha) == [] and _mode(copy.pack) == 0o600


def _block(archive: RawArchive, mode: str) -> contextlib.AbstractContextManager[None]:
    if mode == "plain":
        return contextlib.nullcontext()
    return archive.deferred_sync(background=mode == "bulk")


@pytest.mark.parametrize("mode", ["plain", "bulk", "bulk-in-put"])
@pytest.mark.parametrize(
    ("suffix", "damage"),
    [
        (".zst", lambda d: zstandard.ZstdCompressor().compress(d)[:200]),  # does not decompress
        (".zst", lambda d: zstandard.ZstdCompressor().compress(d[:-1])),  # other bytes
        (".gz", lambda d: gzip.compress(d)[:-4]),
    ],
    ids=["zst-truncated", "zst-other-bytes", "gz-truncated"],
)
def test_a_corrupt_older_copy_of_a_fit_file_is_healed_into_a_fit_copy(
    archive: RawArchive, mode: str, suffix: str, damage: Callable[[bytes], bytes]
) -> None:
    data = FIT_FILES[3].read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    old = archive.root / sha[:2] / f"{sha}{suffix}"
    old.parent.mkdir(parents=True, mode=0o700)
    old.write_bytes(damage(data))
    with pytest.raises(ArchiveCorruptError):
        archive.get(sha)
    with _block(archive, mode):
        assert archive.put(data) == sha
    archive.close()
    fit = old.with_suffix(".fit")
    if mode == "plain":
        assert _copies(archive, sha) == [fit.name]  # the corrupt old copy is gone
        assert fit.read_bytes() == data and _mode(fit) == 0o600
        assert archive.path(sha) == fit
    else:  # in the block's pack, as it is
        assert _copies(archive, sha) == []  # the corrupt old copy is gone
        copy = _packed(archive, sha)
        assert copy.suffix == ".fit" and copy.read_bytes() == data and _mode(copy.pack) == 0o600
        assert archive.path(sha) == copy.pack
    assert archive.get(sha) == data
    assert list(archive.iter()) == [sha]


@linux_only
@pytest.mark.parametrize("background", [True, False], ids=["writer-thread", "in-put"])
def test_bulk_writes_fit_files_as_they_are_and_syncs_them_before_the_commit(
    store: Store, monkeypatch: pytest.MonkeyPatch, background: bool
) -> None:
    """Like every bulk write: no per-file fsync or rename, the batch's files in one pack whose
    index is renamed into place, then one flush of the file system, then the commit; the FIT
    files are in the pack as they are, the JSON as a zstd frame."""
    blobs = [p.read_bytes() for p in FIT_FILES[:6]]
    json_blob = json.dumps({"watts": {"data": list(range(2000))}}).encode()
    root = str(store.archive.root.resolve())
    events: list[str] = []
    real_replace, real_fsync, real_syncfs = os.replace, os.fsync, archive_module._syncfs
    assert real_syncfs is not None

    def replace(src: object, dst: object, **kw: object) -> None:
        real_replace(src, dst, **kw)  # type: ignore[arg-type]
        if str(dst).startswith(root + "/"):
            events.append(Path(str(dst)).suffix)

    def fsync(fd: int) -> None:
        if _fd_path(fd).startswith(root + "/"):
            events.append("fsync")
        real_fsync(fd)

    def syncfs(fd: int) -> int:
        events.append("sync")
        return real_syncfs(fd)

    monkeypatch.setattr(archive_module.os, "replace", replace)
    monkeypatch.setattr(archive_module.os, "fsync", fsync)
    monkeypatch.setattr(archive_module, "_syncfs", syncfs)
    sa.event.listen(store._engine, "commit", lambda conn: events.append("commit"))
    with bulk(store, background=background):
        for i, blob in enumerate([*blobs, json_blob]):
            _add_activity(store, store.archive.put(blob), f"f{i}")
            assert store.archive.get(hashlib.sha256(blob).hexdigest()) == blob
    assert events == [".idx", "sync", "commit"]
    assert store.archive._unsynced == set()
    committed = {act["sha256"] for act in store.list_activities()}
    assert committed == {hashlib.sha256(b).hexdigest() for b in [*blobs, json_blob]}
    packs = set()
    for blob in [*blobs, json_blob]:
        copy = _packed(store.archive, hashlib.sha256(blob).hexdigest())
        assert copy.suffix == (".zst" if blob is json_blob else ".fit")
        assert _mode(copy.pack) == 0o600 and _mode(copy.pack.parent) == 0o700
        stored = copy.read_bytes()
        assert (zstandard.decompress(stored) if blob is json_blob else stored) == blob
        packs.add(copy.pack)
    assert len(packs) == 1 and list(store.archive.root.glob("??")) == []  # one pack, no shard
    assert _tmp_files(store.archive.root) == []
    reopened = RawArchive(store.archive.root)  # another process finds them through the index
    assert all(reopened.get(hashlib.sha256(b).hexdigest()) == b for b in [*blobs, json_blob])

    events.clear()
    with bulk(store, background=background):  # a later batch verifies the copies and keeps them
        for blob in blobs:
            store.archive.put(blob)
    assert [e for e in events if e.startswith(".")] == []


def test_a_copy_another_bulk_block_has_not_synced_is_synced_and_indexed(
    archive: RawArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A block that keeps a copy another thread's block wrote unsynced syncs that copy's pack
    and indexes it itself before its own transaction may commit."""
    synced: list[list[Path]] = []
    real_sync = RawArchive._sync

    def sync(paths: list[Path]) -> None:
        synced.append(list(paths))
        real_sync(paths)

    monkeypatch.setattr(RawArchive, "_sync", staticmethod(sync))
    data = FIT_FILES[0].read_bytes()
    sha = hashlib.sha256(data).hexdigest()

    def other_block() -> None:
        with archive.deferred_sync():
            archive.put(data)

    with archive.deferred_sync(background=False):
        archive.put(data)  # written into this block's pack, not synced yet
        assert sha in archive._unsynced
        pack = _packed(archive, sha).pack
        t = threading.Thread(target=other_block)
        t.start()
        t.join()
        # the other block synced this block's pack, with an index of its own that names it:
        # its transaction may commit before this block has written its index
        [[synced_pack, index]] = synced
        assert synced_pack == pack and index.suffix == ".idx" and sha not in archive._unsynced
        assert RawArchive(archive.root).get(sha) == data  # found through that index alone
    assert len(synced) == 2 and synced[1][0] == pack and archive.get(sha) == data
    archive.close()
