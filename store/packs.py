"""Pack files: the raw files of one bulk batch stored back to back in one file, with an index.

Why: a bulk import archived one file per raw file, and creating a file is the dearest thing the
archive does. On the 2-core development VM (ext4) a new file cost 15-340 us of kernel time and
each new shard folder as much again, depending on where and when: up to half the time the import
spent storing. A batch now writes one pack and one small index, whatever its size (git keeps its
objects in packs for the same reason). Single puts (a sync of one run) stay loose files.

Layout, under the archive root:
- `packs/<name>.pack`: the stored payloads (a FIT file as it is, anything else one zstd frame),
  each exactly as a loose copy would hold it;
- `packs/<name>.idx`: one line per payload, `<sha256> <pack name> <suffix> <offset> <length>`,
  written (temp file + rename) when the batch ends and made durable with the pack before the
  batch's database transaction commits. An index may name payloads of another batch's pack
  (copies that batch kept but had not made durable yet).
A pack without an index (a batch killed before its end) holds bytes nothing refers to; every
read is still checked against the sha256, so a damaged pack reads as a corrupt copy, which the
next put of the same bytes replaces.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evenstride.store.errors import StoreError

PACKS = "packs"
PACK_SUFFIX = ".pack"
INDEX_SUFFIX = ".idx"
_LINE = re.compile(r"([0-9a-f]{64}) ([0-9]+-[0-9]+-[0-9]+\.pack) (\.fit|\.zst) ([0-9]+) ([0-9]+)")
_PACK_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)  # fmt: skip
_numbers = itertools.count()
_RACY_NS = 2_000_000_000  # a folder time this close to the last look may hide a later change


@dataclass(frozen=True)
class PackedCopy:
    """One archived payload inside a pack: read like a loose copy (`suffix`, `read_bytes`)."""

    pack: Path
    offset: int
    length: int
    suffix: str

    def read_bytes(self) -> bytes:
        """Its stored bytes (fewer from a pack cut short: they fail the sha256 check)."""
        with open(self.pack, "rb") as f:
            f.seek(self.offset)
            return f.read(self.length)

    def line(self, sha256: str) -> str:
        return f"{sha256} {self.pack.name} {self.suffix} {self.offset} {self.length}\n"

    def __str__(self) -> str:
        return f"{self.pack} (bytes {self.offset}-{self.offset + self.length})"


def _pwrite(fd: int, data: memoryview, offset: int) -> int:
    """os.pwrite, or seek + write where there is none (Windows): one writer per pack."""
    if hasattr(os, "pwrite"):
        return os.pwrite(fd, data, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # pragma: no cover - Windows
    return os.write(fd, data)  # pragma: no cover


def new_name(suffix: str) -> str:
    """A unique, time-ordered file name: later indexes override earlier ones when read."""
    return f"{time.time_ns():020d}-{os.getpid()}-{next(_numbers)}{suffix}"


class PackWriter:
    """The pack of one bulk batch, created at its first payload; used by one thread at a time."""

    def __init__(self, folder: Path, make_folder: Callable[[Path], None]) -> None:
        self.folder = folder
        self._make_folder = make_folder  # the archive's (0700, left unsynced: the batch syncs)
        self.path: Path | None = None
        self._fd = -1
        self._size = 0
        self.entries: list[tuple[str, PackedCopy]] = []

    def append(self, sha256: str, payload: bytes, suffix: str) -> PackedCopy:
        """Write `payload` after the others (pwrite: a failed write leaves no gap behind)."""
        try:
            if self._fd < 0:
                self._make_folder(self.folder)
                path = self.folder / new_name(PACK_SUFFIX)
                self._fd = os.open(path, _PACK_FLAGS, 0o600)
                self.path = path
            view = memoryview(payload)
            written = 0
            while written < len(view):
                written += _pwrite(self._fd, view[written:], self._size + written)
        except OSError as exc:
            where = self.path or self.folder
            raise StoreError(f"cannot write archive pack {where}: {exc.strerror}") from exc
        assert self.path is not None
        entry = PackedCopy(self.path, self._size, len(payload), suffix)
        self._size += len(payload)
        self.entries.append((sha256, entry))
        return entry

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class PackIndex:
    """sha256 -> PackedCopy for every pack index under `folder`, read lazily, thread-safe.

    Indexes written by other processes are picked up when a lookup misses and the folder has
    changed since the last look (a cheap stat). A put that misses a copy that way only writes it
    again; a read (`sure=True`) also looks again while the folder's time is too recent to tell
    a later change from none (file times tick coarsely: git calls it the racy index).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._copies: dict[str, PackedCopy] = {}
        self._seen: set[str] = set()  # index files read
        self._stamp: int | None = None  # the folder's mtime at the last look
        self._looked_ns = 0  # when that look was
        self._lock = threading.Lock()

    def get(self, sha256: str, *, sure: bool = False) -> PackedCopy | None:
        copy = self._copies.get(sha256)
        if copy is None and self._refresh(sure=sure):
            copy = self._copies.get(sha256)
        return copy

    def add(self, sha256: str, copy: PackedCopy) -> None:
        """A payload this process has just written (findable at once, like a loose file)."""
        with self._lock:
            self._copies[sha256] = copy

    def shas(self) -> set[str]:
        self._refresh(sure=True)
        with self._lock:
            return set(self._copies)

    def packs_named(self) -> set[str]:
        """Pack file names some index (or this process) refers to."""
        self._refresh(sure=True)
        with self._lock:
            return {c.pack.name for c in self._copies.values()}

    def _refresh(self, *, sure: bool) -> bool:
        """Read index files not read yet; True if any was."""
        try:
            stamp = os.stat(self.folder).st_mtime_ns
        except OSError:
            return False
        if stamp == self._stamp and not (sure and self._looked_ns - stamp < _RACY_NS):
            return False
        with self._lock:
            self._stamp = stamp
            self._looked_ns = time.time_ns()
            try:
                names = sorted(n for n in os.listdir(self.folder) if n.endswith(INDEX_SUFFIX))
            except OSError:
                return False
            fresh = [n for n in names if n not in self._seen]
            sizes: dict[str, int] = {}
            paths: dict[str, Path] = {}  # one Path per pack, shared by its entries
            for name in fresh:  # in name (time) order: a later index overrides an earlier one
                self._seen.add(name)
                try:
                    text = (self.folder / name).read_text("ascii")
                except (OSError, UnicodeDecodeError):
                    continue
                for line in text.splitlines():
                    m = _LINE.fullmatch(line)
                    if m is None:
                        continue
                    sha, pack, suffix, offset, length = m.groups()
                    if pack not in sizes:
                        try:
                            sizes[pack] = os.stat(self.folder / pack).st_size
                        except OSError:
                            sizes[pack] = -1
                    known = self._copies.get(sha)
                    newer = known is None or pack >= known.pack.name  # the newest pack wins
                    if newer and int(offset) + int(length) <= sizes[pack]:
                        path = paths.get(pack)
                        if path is None:
                            path = paths[pack] = self.folder / pack
                        self._copies[sha] = PackedCopy(path, int(offset), int(length), suffix)
            return bool(fresh)
