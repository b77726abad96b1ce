"""Bulk blocks store their raw files in one pack per block: found by any process, never trusted.

What the pack index may hold is checked on every read (the sha256), so a damaged or cut-short
pack, a pack whose block died before its index, or a garbled index line never yields wrong
bytes: at worst a copy is missing or corrupt, and the next put of the same bytes stores it anew.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from evenstride.store import ArchiveCorruptError, RawArchive
from evenstride.store.packs import PackedCopy

FIT_FILES = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "synthetic").rglob("*.fit"))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _bulk_put(archive: RawArchive, blobs: list[bytes]) -> list[str]:
    with archive.deferred_sync():
        return [archive.put(b) for b in blobs]


def _packed(archive: RawArchive, sha: str) -> PackedCopy:
    copy = archive._on_disk(sha)
    assert isinstance(copy, PackedCopy), copy
    return copy


def _age(path: Path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_a_block_writes_one_pack_and_one_index_that_another_process_reads(
    tmp_path: Path,
) -> None:
    blobs = [p.read_bytes() for p in FIT_FILES[:5]] + [b'{"not": "a FIT file"}']
    writer, reader = RawArchive(tmp_path / "raw"), RawArchive(tmp_path / "raw")
    assert not reader.has(_sha(blobs[0]))  # looked before the block: nothing there yet
    shas = _bulk_put(writer, blobs)
    packs = tmp_path / "raw" / "packs"
    assert len(list(packs.glob("*.pack"))) == 1 and len(list(packs.glob("*.idx"))) == 1
    assert [reader.get(s) for s in shas] == blobs  # the other process sees the new index
    assert sorted(reader.iter()) == sorted(set(shas))
    for blob, sha in zip(blobs[:5], shas[:5], strict=True):  # FIT files as they are
        copy = _packed(reader, sha)
        assert copy.suffix == ".fit" and copy.read_bytes() == blob
    assert _packed(reader, shas[-1]).suffix == ".zst"
    writer.close()


def test_a_pack_whose_block_died_before_its_index_is_ignored_then_removed(
    tmp_path: Path,
) -> None:
    root = tmp_path / "raw"
    data = FIT_FILES[0].read_bytes()
    kept = _bulk_put(RawArchive(root), [FIT_FILES[1].read_bytes()])[0]
    indexed = _packed(RawArchive(root), kept).pack
    orphan = root / "packs" / "00000000000000000001-1-1.pack"  # a block killed mid-way
    orphan.write_bytes(data)
    archive = RawArchive(root)
    assert not archive.has(_sha(data))
    assert archive.remove_stale_tmp() == 0  # too recent: its block may still be running
    _age(orphan, 7200)
    _age(indexed, 7200)
    assert archive.remove_stale_tmp() == 1
    assert not orphan.exists() and indexed.exists() and archive.get(kept)


def test_a_damaged_pack_reads_as_corrupt_and_a_bulk_put_stores_it_again(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    data = FIT_FILES[2].read_bytes()
    (sha,) = _bulk_put(RawArchive(root), [data])
    copy = _packed(RawArchive(root), sha)
    with open(copy.pack, "r+b") as f:  # one bit of a record flipped on disk
        f.seek(copy.offset + copy.length // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 1]))
    archive = RawArchive(root)
    with pytest.raises(ArchiveCorruptError, match="no longer matches its sha256"):
        archive.get(sha)
    _bulk_put(archive, [data])  # verifies the packed copy, finds it bad, stores it anew
    assert archive.get(sha) == data
    assert RawArchive(root).get(sha) == data  # the newer pack wins for every reader


def test_index_lines_past_the_end_of_a_cut_short_pack_are_ignored(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    blobs = [p.read_bytes() for p in FIT_FILES[:3]]
    shas = _bulk_put(RawArchive(root), blobs)
    pack = _packed(RawArchive(root), shas[0]).pack
    os.truncate(pack, _packed(RawArchive(root), shas[2]).offset + 10)  # the last one cut short
    archive = RawArchive(root)
    assert archive.get(shas[0]) == blobs[0] and archive.get(shas[1]) == blobs[1]
    assert not archive.has(shas[2])
    _bulk_put(archive, [blobs[2]])
    assert RawArchive(root).get(shas[2]) == blobs[2]


def test_garbled_index_lines_are_skipped(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    data = FIT_FILES[0].read_bytes()
    (sha,) = _bulk_put(RawArchive(root), [data])
    (index,) = (root / "packs").glob("*.idx")
    pack_name = _packed(RawArchive(root), sha).pack.name
    index.write_text(
        "not a line\n"
        f"{'0' * 64} ../../etc/passwd .fit 0 10\n"  # outside the packs folder: never read
        f"{'1' * 64} {pack_name} .exe 0 10\n" + index.read_text()
    )
    archive = RawArchive(root)
    assert archive.get(sha) == data and sorted(archive.iter()) == [sha]


def test_a_pack_named_only_by_another_blocks_index_is_kept(tmp_path: Path) -> None:
    """Its own block died, but another block kept a copy from it and indexed that."""
    root = tmp_path / "raw"
    data = FIT_FILES[3].read_bytes()
    (sha,) = _bulk_put(RawArchive(root), [data])
    pack = _packed(RawArchive(root), sha).pack
    own_index = pack.with_suffix(".idx")
    own_index.rename(root / "packs" / "99999999999999999999-1-1.idx")  # another block's index
    _age(pack, 7200)
    archive = RawArchive(root)
    assert archive.remove_stale_tmp() == 0
    assert pack.exists() and RawArchive(root).get(sha) == data


def test_after_a_failed_index_write_the_next_block_indexes_the_kept_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pack was written but its index was not (EIO): the block fails; a later block that
    keeps that copy (it is intact) indexes it, so its own commit never names a lost file."""
    from evenstride.store import StoreError
    from evenstride.store import archive as archive_module

    root = tmp_path / "raw"
    archive = RawArchive(root)
    data = FIT_FILES[4].read_bytes()
    real_replace = os.replace

    def replace(src: object, dst: object, **kw: object) -> None:
        if str(dst).endswith(".idx"):
            raise OSError(5, "Input/output error")
        real_replace(src, dst, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(archive_module.os, "replace", replace)
    with pytest.raises(StoreError, match="Input/output error"):
        _bulk_put(archive, [data])
    monkeypatch.undo()
    assert not RawArchive(root).has(_sha(data))  # no index on disk names it yet
    _bulk_put(archive, [data])  # keeps the intact packed copy ...
    assert len(list((root / "packs").glob("*.pack"))) == 1  # ... writes no second copy ...
    assert RawArchive(root).get(_sha(data)) == data  # ... and its index names the first


def test_a_pack_cut_short_after_it_was_indexed_reads_as_corrupt(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    archive = RawArchive(root)
    data = FIT_FILES[0].read_bytes()
    (sha,) = _bulk_put(archive, [data])
    os.truncate(_packed(archive, sha).pack, len(data) // 2)  # this process indexed it whole
    with pytest.raises(ArchiveCorruptError, match="no longer matches its sha256"):
        archive.get(sha)


def test_a_read_finds_a_pack_indexed_within_the_same_folder_time_tick(tmp_path: Path) -> None:
    """Another process indexes a pack right after this one looked, and the folder's time does
    not move (coarse file times): a read looks again all the same."""
    root = tmp_path / "raw"
    writer, reader = RawArchive(root), RawArchive(root)
    first, second = (p.read_bytes() for p in FIT_FILES[:2])
    _bulk_put(writer, [first])
    assert reader.get(_sha(first)) == first  # the reader has looked at the packs folder
    seen = os.stat(root / "packs").st_mtime_ns
    _bulk_put(writer, [second])
    os.utime(root / "packs", ns=(seen, seen))  # as if in the same tick as the reader's look
    assert reader.get(_sha(second)) == second and reader.has(_sha(second))
