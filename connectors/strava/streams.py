"""Strava streams JSON -> a DataFrame with the canonical per-record columns (metrics.columns).

Pure functions, no I/O. Units (Strava's swagger StreamSet): time int s since the start,
distance m, velocity_smooth m/s, heartrate bpm, cadence int "rotations per minute",
altitude m, grade_smooth %, moving bool.

Cadence: for runs Strava's cadence is per LEG (strides/min); the app shows steps/min = 2x
(research note §2: spec unit RPM, Strava's own app doubles it, API users double it). Some
uploaders already write steps/min into the FIT cadence field, so a series whose typical
running value is above `ALREADY_SPM_ABOVE` is taken as steps/min and left alone.
Strava has no running dynamics, so the GCT columns are all NaN.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from evenstride.metrics import columns as C

DOUBLE_CADENCE_SPORTS = frozenset({"Run", "TrailRun", "VirtualRun", "Walk", "Hike"})
ALREADY_SPM_ABOVE = 130.0  # per-leg running cadence is ~75-100; above this it is steps/min
STREAM_COLUMNS = {
    "distance": C.DISTANCE,
    "velocity_smooth": C.SPEED,
    "heartrate": C.HEART_RATE,
    "altitude": C.ALTITUDE,
    "grade_smooth": C.GRADE,
}
ALL_COLUMNS = (*C.RUN_COLUMNS, C.GRADE, C.MOVING)


def keyed(streams: Any) -> dict[str, list[Any]]:
    """{type: data} from either response form: keyed by type (stravalib sends key_by_type) or
    the list form of the swagger example; anything else gives {}."""
    out: dict[str, list[Any]] = {}
    if isinstance(streams, Mapping):
        for key, stream in streams.items():
            data = stream.get("data") if isinstance(stream, Mapping) else None
            if isinstance(data, list):
                out[str(key)] = data
    elif isinstance(streams, Sequence) and not isinstance(streams, str | bytes):
        for stream in streams:
            if isinstance(stream, Mapping) and isinstance(stream.get("data"), list):
                out[str(stream.get("type"))] = stream["data"]
    return out


def cadence_spm(values: Sequence[Any], sport_type: str | None) -> tuple[np.ndarray, str]:
    """Steps per minute and how they were derived ("doubled", "already_spm", "as_is")."""
    raw = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(float)
    if sport_type not in DOUBLE_CADENCE_SPORTS:
        return raw, "as_is"
    moving = raw[np.isfinite(raw) & (raw > 0)]
    if len(moving) and float(np.median(moving)) > ALREADY_SPM_ABOVE:
        return raw, "already_spm"
    return raw * 2.0, "doubled"


def _column(data: list[Any] | None, n: int) -> np.ndarray:
    """A float column of length n (streams are index-aligned; pad or cut defensively)."""
    if data is None:
        return np.full(n, np.nan)
    arr = pd.to_numeric(pd.Series(list(data[:n]), dtype=object), errors="coerce").to_numpy(float)
    return np.concatenate([arr, np.full(n - len(arr), np.nan)]) if len(arr) < n else arr


def frame_from_streams(
    streams: Any, start_date: dt.datetime, sport_type: str | None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(records, notes). Records are empty when there is no `time` stream to hang them on.

    `start_date` is the activity's UTC start; timestamps are start_date + time offsets.
    `notes` says which streams were present and how cadence was scaled.
    """
    data = keyed(streams)
    notes: dict[str, Any] = {"streams": sorted(data)}
    times = data.get("time")
    if not times:
        notes["cadence_scale"] = None
        return pd.DataFrame(columns=list(ALL_COLUMNS)), notes
    n = len(times)
    start = pd.Timestamp(start_date)
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    offsets = pd.to_timedelta(_column(times, n), unit="s")
    frame = pd.DataFrame({C.TIMESTAMP: start + offsets})
    for key, col in STREAM_COLUMNS.items():
        frame[col] = _column(data.get(key), n)
    if "cadence" in data:
        cad, scale = cadence_spm(data["cadence"][:n], sport_type)
        frame[C.CADENCE] = _column(list(cad), n)
    else:
        frame[C.CADENCE], scale = np.nan, None
    notes["cadence_scale"] = scale
    moving = data.get("moving")
    flags = [True] * n if moving is None else [bool(v) for v in moving[:n]]  # null/short: False
    frame[C.MOVING] = pd.Series(flags + [False] * (n - len(flags)))
    for col in ALL_COLUMNS:  # GCT, balance, VO, ... : Strava has none of them
        if col not in frame:
            frame[col] = np.nan
    return frame[list(ALL_COLUMNS)], notes
