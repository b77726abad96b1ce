"""Local files: single FIT files, folders (recursive), .fit.gz and .zip archives.

Zip archives cover Garmin's "export original" downloads, Garmin's full account export (zips
inside a zip) and Strava's bulk export. Members are read one at a time, so a multi-gigabyte
account export never sits in memory whole.

A zip with ``activities.csv`` at its root is a Strava bulk export: its FIT members are yielded as
usual (plus the Strava Activity ID in `extra`), and the GPX/TCX files of its runs are yielded as
items of kind "gpx"/"tcx" with source "strava" and the Activity ID, for
`connectors.strava.export.ingest_track`.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evenstride.connectors.base import Connector, RawItem

FIT_SUFFIXES = (".fit", ".fit.gz")
MAX_NESTING = 3


def _kind(name: str) -> str | None:
    lower = name.lower()
    if lower.endswith(FIT_SUFFIXES):
        return "fit"
    if lower.endswith(".zip"):
        return "zip"
    return None


def _gunzip(data: bytes, name: str) -> bytes:
    if name.lower().endswith(".gz"):
        return gzip.decompress(data)
    return data


def _file_item(path: Path) -> RawItem:
    def load() -> bytes:
        return _gunzip(path.read_bytes(), path.name)

    return RawItem(name=str(path), load=load)


def _zip_items(opener, label: str, depth: int) -> Iterator[RawItem]:
    """Items inside a zip (recursing into nested zips); a corrupt zip yields one failed item."""
    try:
        zf = zipfile.ZipFile(opener())
        members = [m for m in zf.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        yield RawItem(name=label, error=f"not a readable zip archive ({exc})")
        return
    strava = _strava_rows(zf)
    for member in members:
        kind = _kind(member.filename)
        name = f"{label}:{member.filename}"
        if kind == "zip" and depth < MAX_NESTING:
            yield from _zip_items(lambda m=member: io.BytesIO(zf.read(m)), name, depth + 1)
        elif kind == "fit":

            def load(m=member) -> bytes:
                return _gunzip(zf.read(m), m.filename)

            row = strava.get(member.filename) if strava else None
            extra = {"strava_activity_id": row.activity_id} if row else {}
            yield RawItem(name=name, load=load, extra=extra)
        elif strava:
            item = _strava_export().export_item(zf, member, name, strava)
            if item is not None:
                yield item


def _strava_export() -> Any:
    from evenstride.connectors.strava import export  # lazy: only Strava exports need it

    return export


def _strava_rows(zf: zipfile.ZipFile) -> dict[str, Any]:
    """activities.csv rows by file name when this zip is a Strava bulk export, else {}."""
    if "activities.csv" not in zf.namelist():
        return {}
    try:
        return _strava_export().read_csv_member(zf)
    except (OSError, EOFError, zipfile.BadZipFile, UnicodeError, ValueError):
        return {}


class LocalFilesConnector(Connector):
    """Files and folders on this machine."""

    name = "local"
    description = "FIT files, folders, .fit.gz and .zip exports on this machine"

    def items(self, **options: Any) -> Iterator[RawItem]:
        """Options: paths (list of str/Path)."""
        for raw in options.get("paths", ()):
            path = Path(raw)
            if path.is_dir():
                for child in sorted(p for p in path.rglob("*") if p.is_file()):
                    yield from self._path_items(child, explicit=False)
            elif path.exists():
                yield from self._path_items(path, explicit=True)
            else:
                yield RawItem(name=str(path), error="no such file or folder")

    def _path_items(self, path: Path, *, explicit: bool) -> Iterator[RawItem]:
        kind = _kind(path.name)
        if kind == "zip":
            yield from _zip_items(lambda: path, str(path), 0)
        elif kind == "fit" or explicit:
            yield _file_item(path)  # an explicitly named file is tried whatever its name
