"""Strava's bulk export (Settings -> My Account -> "Download or Delete Your Account").

The ZIP holds ``activities.csv`` at its root and the files as originally uploaded under
``activities/`` (``.fit.gz``, ``.gpx``, ``.gpx.gz``, ``.tcx``, ``.tcx.gz``); manual activities
have none. FIT originals take the normal FIT path (`ingest_file`, GCT balance included: the
export is the only Strava-sourced way to running dynamics). GPX/TCX files of runs are parsed
here with the standard library and stored through `ingest_records` with source "strava" and
the export's Activity ID, so a run later synced through the API is recognised as the same.

Cadence in GPX (Garmin TrackPointExtension ``cad``) and TCX (``RunCadence``/``Cadence``) is per
leg and doubled, unless the file's typical value says it is already steps/min (some apps).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from evenstride.connectors.base import RawItem
from evenstride.connectors.strava.streams import cadence_spm
from evenstride.ingest import IngestResult, ingest_records
from evenstride.metrics import columns as C

SOURCE = "strava"
CSV_NAME = "activities.csv"
MAX_CSV_BYTES = 64 * 1024 * 1024
MAX_TRACK_BYTES = 128 * 1024 * 1024  # a decompressed GPX/TCX larger than this is refused
RUN_TYPES = {"run": "generic", "trailrun": "trail", "virtualrun": "virtual_activity"}
TRACK_SUFFIXES = {".gpx": "gpx", ".gpx.gz": "gpx", ".tcx": "tcx", ".tcx.gz": "tcx"}
EARTH_RADIUS_M = 6_371_008.8
TRACK_COLUMNS = tuple(C.RUN_COLUMNS)  # no `moving` column: GPX/TCX do not say


@dataclass(frozen=True)
class ExportRow:
    """The parts of one activities.csv row we use (the header grows; parsed by name)."""

    activity_id: str
    activity_type: str
    filename: str
    elapsed_s: float | None
    distance_m: float | None
    name: str

    @property
    def sub_sport(self) -> str | None:
        """generic/trail/virtual_activity for runs, None for anything else."""
        return RUN_TYPES.get(self.activity_type.replace(" ", "").lower())


def _number(text: str | None) -> float | None:
    try:
        value = float((text or "").replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_activities_csv(data: bytes) -> dict[str, ExportRow]:
    """Rows by their `Filename` ("activities/123.gpx"). Duplicate column names are kept apart:
    the first `Elapsed Time` is seconds, the LAST `Distance` is metres (the first is km/mi)."""
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig", errors="replace")))
    header = next(reader, [])

    def first(name: str) -> int | None:
        return header.index(name) if name in header else None

    def last(name: str) -> int | None:
        idx = [i for i, h in enumerate(header) if h == name]
        return idx[-1] if idx else None

    cols = {
        "id": first("Activity ID"), "type": first("Activity Type"), "file": first("Filename"),
        "elapsed": first("Elapsed Time"), "distance": last("Distance"),
        "name": first("Activity Name"),
    }  # fmt: skip
    if cols["id"] is None or cols["file"] is None:
        return {}
    rows: dict[str, ExportRow] = {}
    for line in reader:

        def get(key: str, line: list[str] = line) -> str:
            i = cols[key]
            return line[i].strip() if i is not None and i < len(line) else ""

        if not get("file") or not get("id"):
            continue  # manual activity: no file
        rows[get("file")] = ExportRow(
            activity_id=get("id"),
            activity_type=get("type"),
            filename=get("file"),
            elapsed_s=_number(get("elapsed")),
            distance_m=_number(get("distance")),
            name=get("name"),
        )
    return rows


def track_kind(name: str) -> str | None:
    lower = name.lower()
    for suffix, kind in TRACK_SUFFIXES.items():
        if lower.endswith(suffix):
            return kind
    return None


def _bounded(data: bytes, name: str) -> bytes:
    """Gunzip lazily with a size cap (zip-bomb guard)."""
    if not name.lower().endswith(".gz"):
        return data
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
        out = gz.read(MAX_TRACK_BYTES + 1)
    if len(out) > MAX_TRACK_BYTES:
        raise ValueError(f"{name} decompresses to more than {MAX_TRACK_BYTES} bytes")
    return out


def read_csv_member(zf: zipfile.ZipFile) -> dict[str, ExportRow]:
    info = zf.getinfo(CSV_NAME)
    if info.file_size > MAX_CSV_BYTES:
        return {}
    return read_activities_csv(zf.read(info))


def export_item(
    zf: zipfile.ZipFile, member: zipfile.ZipInfo, label: str, rows: dict[str, ExportRow]
) -> RawItem | None:
    """A RawItem for a run's GPX/TCX member of a Strava export, else None (not a run, no row)."""
    kind = track_kind(member.filename)
    row = rows.get(member.filename)
    if kind is None or row is None or row.sub_sport is None:
        return None
    if member.file_size > MAX_TRACK_BYTES:
        return RawItem(name=label, kind=kind, error="member too large to import")

    def load(m: zipfile.ZipInfo = member) -> bytes:
        return _bounded(zf.read(m), m.filename)

    return RawItem(
        name=label, load=load, source=SOURCE, source_id=row.activity_id, kind=kind,
        extra={"strava_export": {"activity_type": row.activity_type, "name": row.name,
                                 "elapsed_s": row.elapsed_s, "distance_m": row.distance_m,
                                 "sub_sport": row.sub_sport}},
    )  # fmt: skip


# ---------------------------------------------------------------------------- GPX / TCX


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(elem: ET.Element, *names: str) -> str | None:
    """Text of the first descendant whose local name is one of `names`."""
    for sub in elem.iter():
        if sub is not elem and _local(sub.tag) in names and sub.text and sub.text.strip():
            return sub.text.strip()
    return None


def _float(text: str | None) -> float:
    value = _number(text)
    return math.nan if value is None else value


def _gpx_points(root: ET.Element) -> list[dict[str, Any]]:
    points = []
    for pt in root.iter():
        if _local(pt.tag) != "trkpt":
            continue
        points.append({
            "time": _child_text(pt, "time"), "lat": _float(pt.get("lat")),
            "lon": _float(pt.get("lon")), "ele": _float(_child_text(pt, "ele")),
            "hr": _float(_child_text(pt, "hr", "heartrate")),
            "cad": _float(_child_text(pt, "cad", "cadence")), "dist": math.nan,
            "speed": _float(_child_text(pt, "speed")),
        })  # fmt: skip
    return points


def _tcx_points(root: ET.Element) -> list[dict[str, Any]]:
    points = []
    for pt in root.iter():
        if _local(pt.tag) != "Trackpoint":
            continue
        hr_elem = next((e for e in pt.iter() if _local(e.tag) == "HeartRateBpm"), None)
        points.append({
            "time": _child_text(pt, "Time"), "lat": _float(_child_text(pt, "LatitudeDegrees")),
            "lon": _float(_child_text(pt, "LongitudeDegrees")),
            "ele": _float(_child_text(pt, "AltitudeMeters")),
            "hr": _float(_child_text(hr_elem, "Value")) if hr_elem is not None else math.nan,
            "cad": _float(_child_text(pt, "RunCadence", "Cadence")),
            "dist": _float(_child_text(pt, "DistanceMeters")),
            "speed": _float(_child_text(pt, "Speed")),
        })  # fmt: skip
    return points


def _creator(root: ET.Element, kind: str) -> str | None:
    if kind == "gpx":
        return root.get("creator") or None
    creator = next((e for e in root.iter() if _local(e.tag) == "Creator"), None)
    return _child_text(creator, "Name") if creator is not None else None


def _haversine(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Cumulative distance (m) along the points; gaps without a position add nothing."""
    la, lo = np.radians(lat), np.radians(lon)
    dlat, dlon = np.diff(la), np.diff(lo)
    a = np.sin(dlat / 2) ** 2 + np.cos(la[:-1]) * np.cos(la[1:]) * np.sin(dlon / 2) ** 2
    step = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0, 1)))
    return np.concatenate([[0.0], np.cumsum(np.nan_to_num(step))])


@dataclass
class Track:
    records: pd.DataFrame
    start: pd.Timestamp
    elapsed_s: float
    distance_m: float | None
    device: str | None
    cadence_scale: str | None


def parse_track(data: bytes, kind: str) -> Track:
    """GPX/TCX bytes -> canonical records. ValueError when there is nothing usable."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise ValueError(f"not a readable {kind.upper()} file ({e})") from None
    pts = pd.DataFrame(_gpx_points(root) if kind == "gpx" else _tcx_points(root))
    if pts.empty:
        raise ValueError(f"the {kind.upper()} file has no track points")
    pts["time"] = pd.to_datetime(pts["time"], utc=True, errors="coerce", format="ISO8601")
    pts = pts.dropna(subset=["time"]).sort_values("time", kind="stable").reset_index(drop=True)
    if len(pts) < 2:
        raise ValueError(f"the {kind.upper()} file has no timed track points")
    dist = pts["dist"].to_numpy(float)
    if not np.isfinite(dist).any():
        dist = _haversine(pts["lat"].to_numpy(float), pts["lon"].to_numpy(float))
    t = (pts["time"] - pts["time"].iloc[0]).dt.total_seconds().to_numpy(float)
    speed = pts["speed"].to_numpy(float)
    if not np.isfinite(speed).any():
        raw = np.gradient(pd.Series(dist).interpolate(limit_area="inside").to_numpy(float), t)
        speed = pd.Series(raw).rolling(5, center=True, min_periods=1).median().to_numpy(float)
    cad, scale = cadence_spm(pts["cad"].tolist(), "Run")
    has_cad = bool(np.isfinite(cad).any())
    frame = pd.DataFrame({
        C.TIMESTAMP: pts["time"], C.DISTANCE: dist, C.SPEED: speed,
        C.HEART_RATE: pts["hr"].to_numpy(float), C.ALTITUDE: pts["ele"].to_numpy(float),
        C.CADENCE: cad,
    })  # fmt: skip
    for col in TRACK_COLUMNS:
        if col not in frame:
            frame[col] = np.nan
    finite = dist[np.isfinite(dist)]
    return Track(
        records=frame[list(TRACK_COLUMNS)],
        start=pts["time"].iloc[0],
        elapsed_s=float(t[-1]),
        distance_m=float(finite.max() - finite.min()) if len(finite) else None,
        device=_creator(root, kind),
        cadence_scale=scale if has_cad else None,
    )


def _failed(store: Any, athlete: str, item: RawItem, sha: str, reason: str) -> IngestResult:
    name = _file_name(item)
    with store.transaction():
        aid = store.upsert_activity(
            athlete, source=SOURCE, source_id=str(item.source_id), sha256=sha, sport="running",
            status="failed", reason=reason, file_name=name, extra=item.extra or None,
        )  # fmt: skip
        store.replace_runs(aid, [])
    return IngestResult("failed", sha, aid, reason=reason, file_name=name)


def _file_name(item: RawItem) -> str:
    return PurePosixPath(item.name.split(":")[-1]).name


def ingest_track(
    store: Any,
    item: RawItem,
    athlete: str = "default",
    *,
    load: Callable[[], bytes] | None = None,
) -> IngestResult:
    """Ingest one GPX/TCX item of a Strava export (raw bytes archived untouched first)."""
    try:
        data = (load or item.load)()  # type: ignore[misc]
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        return IngestResult("failed", "", reason=f"cannot read: {e}", file_name=_file_name(item))
    existing = store.find_activity(athlete, SOURCE, str(item.source_id))
    if existing and existing["status"] != "failed":
        return IngestResult("duplicate", existing.get("sha256") or "", existing["id"],
                            file_name=_file_name(item), sport="running")  # fmt: skip
    try:
        track = parse_track(data, item.kind)
    except ValueError as e:
        return _failed(store, athlete, item, store.archive.put(data), str(e))
    meta = dict((item.extra or {}).get("strava_export") or {})
    extra = {**(item.extra or {}), "track": {"format": item.kind,
                                             "cadence_scale": track.cadence_scale}}  # fmt: skip
    return ingest_records(
        store, track.records, data, source=SOURCE, source_id=str(item.source_id),
        athlete=athlete, start_time=track.start.to_pydatetime(),
        elapsed_s=meta.get("elapsed_s") or track.elapsed_s,
        distance_m=meta.get("distance_m") or track.distance_m,
        sub_sport=meta.get("sub_sport") or "generic", device=track.device,
        file_name=_file_name(item), extra=extra,
    )  # fmt: skip
