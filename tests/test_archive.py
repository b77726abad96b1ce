"""The raw-file archive: content-addressed, compressed, verified, private, and atomic under kill."""

from __future__ import annotations

import gzip
import hashlib
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zstandard

from evenstride.store import ArchiveCorruptError, RawArchive, open_store
from evenstride.store import archive as archive_module


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def archive(tmp_path: Path) -> RawArchive:
    return RawArchive(tmp_path / "raw")


def test_put_get_round_trip_and_layout(archive: RawArchive) -> None:
    data = b"\x0e\x10FIT" + os.urandom(1000)
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
    assert not archive.path(sha).exists()


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
