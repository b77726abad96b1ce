"""Split a decoded file into its running sessions, with cleaned canonical columns.

Records belong to a session by the session's start_time + total_elapsed_time (some devices write
the session's own timestamp equal to its start, so that field cannot be used). Running-dynamics
values of 0 (standing) or outside (0, 100) % are missing, never averaged.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np

from evenstride.metrics import columns as C
from evenstride.metrics.fit.model import RUNNING_SPORTS, FitFile, Run
from evenstride.metrics.fit.records import unix_to_datetime64


def _unix(ts: Any) -> float | None:
    return ts.timestamp() if isinstance(ts, datetime) else None


def _number(value: Any) -> float | None:
    """A finite scalar, else None: a damaged definition can turn a summary field into an array."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _positive(values: np.ndarray) -> np.ndarray:
    return np.where(values > 0, values, np.nan)


_USED = (
    "timestamp", "distance", "speed", "enhanced_speed", "altitude", "enhanced_altitude",
    "heart_rate", "power", "cadence", "fractional_cadence", "stance_time", "stance_time_balance",
    "vertical_oscillation", "vertical_ratio", "step_length",
)  # fmt: skip


def clean_columns(cols: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    """Canonical run columns (metrics.columns) for the selected records, as numpy arrays."""
    g = {k: cols[k][mask] for k in _USED}
    speed = np.where(np.isnan(g["enhanced_speed"]), g["speed"], g["enhanced_speed"])
    altitude = np.where(np.isnan(g["enhanced_altitude"]), g["altitude"], g["enhanced_altitude"])
    cadence = 2.0 * (g["cadence"] + np.nan_to_num(g["fractional_cadence"]))
    gct = _positive(g["stance_time"])
    balance = g["stance_time_balance"]
    standing = g["stance_time"] == 0  # a 0 contact time makes the balance meaningless too
    balance = np.where((balance > 0) & (balance < 100) & ~standing, balance, np.nan)
    return {
        C.TIMESTAMP: unix_to_datetime64(g["timestamp"]),
        C.DISTANCE: g["distance"],
        C.SPEED: speed,
        C.HEART_RATE: _positive(g["heart_rate"]),
        C.ALTITUDE: altitude,
        C.POWER: g["power"],
        C.CADENCE: cadence,
        C.GCT: gct,
        C.GCT_BALANCE: balance,
        C.VERTICAL_OSCILLATION: _positive(g["vertical_oscillation"]),
        C.VERTICAL_RATIO: _positive(g["vertical_ratio"]),
        C.STEP_LENGTH: _positive(g["step_length"]),
    }


def _windows(ff: FitFile) -> list[tuple[int, dict[str, Any], float, float]]:
    """(index, session, start, end) in Unix seconds for sessions with a usable start time."""
    out = []
    for i, s in enumerate(ff.sessions):
        start = _unix(s.get("start_time"))
        if start is None:
            continue
        elapsed = _number(s.get("total_elapsed_time"))
        if elapsed is None:
            end = _unix(s.get("timestamp"))
            end = end if end is not None and end > start else float("inf")
        else:
            end = start + elapsed + END_SLACK_S
        out.append((i, s, start, end))
    return out


def _implicit_session(ff: FitFile) -> dict[str, Any] | None:
    """A file cut before its session message: use its `sport` message, if it says running."""
    sport = next((s for s in ff.sports if s.get("sport")), None)
    ts = ff.columns["timestamp"]
    valid = ts[ts >= 0]
    if sport is None or not len(valid):
        return None
    start = datetime.fromtimestamp(int(valid.min()), UTC)
    return {
        "sport": sport.get("sport"),
        "sub_sport": sport.get("sub_sport"),
        "start_time": start,
        "total_elapsed_time": float(valid.max() - valid.min()),
        "implicit": True,
    }


# Watches stamp the last record of a session up to a second after its fractional elapsed end.
END_SLACK_S = 2.0

_STOPS = {"stop", "stop_all", "stop_disable", "stop_disable_all"}


def timer_intervals(events: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """(start, stop) Unix-second pairs when the timer ran, from the file's timer events."""
    out: list[tuple[float, float]] = []
    start: float | None = None
    for e in events:
        if e.get("event") != "timer" or not isinstance(e.get("timestamp"), datetime):
            continue
        t = e["timestamp"].timestamp()
        kind = e.get("event_type")
        if kind == "start" and start is None:
            start = t
        elif kind in _STOPS and start is not None:
            out.append((start, t))
            start = None
    if start is not None:
        out.append((start, float("inf")))
    return out


def split_runs(ff: FitFile) -> list[Run]:
    """The file's running sessions (walking, cycling, swimming and transitions are not runs)."""
    ts = ff.columns["timestamp"].astype(np.float64)
    windows = _windows(ff)
    if not ff.sessions:
        implicit = _implicit_session(ff)
        if implicit is not None:
            start = _unix(implicit["start_time"])
            windows = [(0, implicit, start, start + implicit["total_elapsed_time"])]
    owner = np.full(len(ts), -1)
    for i, _s, start, end in windows:  # later sessions win records on a shared boundary
        owner[(ts >= start) & (ts <= end)] = i
    intervals = timer_intervals(ff.events)
    runs = []
    for i, s, start, end in windows:
        if s.get("sport") not in RUNNING_SPORTS:
            continue
        laps = [
            lap
            for lap in ff.laps
            if (t := _unix(lap.get("start_time"))) is not None and start <= t <= end
        ]
        runs.append(
            Run(
                index=i,
                sport=s.get("sport"),
                sub_sport=s.get("sub_sport") or "generic",
                start_time=s["start_time"],
                elapsed_s=_number(s.get("total_elapsed_time")) or 0.0,
                timer_s=_number(s.get("total_timer_time")),
                distance_m=_number(s.get("total_distance")),
                session=s,
                laps=laps,
                columns=clean_columns(ff.columns, owner == i),
                timer_intervals=[(a, b) for a, b in intervals if b >= start and a <= end],
            )
        )
    return runs
