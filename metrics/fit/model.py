"""What the FIT reader returns: plain dataclasses around pandas DataFrames."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

RUNNING_SPORTS = frozenset({"running"})


@dataclass
class Run:
    """One running session of a FIT file, with cleaned per-record columns (metrics.columns)."""

    index: int  # position of the session in the file (0-based, across chained segments)
    sport: str
    sub_sport: str  # generic, road, trail, treadmill, track, virtual_activity, ...
    start_time: pd.Timestamp
    elapsed_s: float
    timer_s: float | None
    distance_m: float | None
    session: dict[str, Any]  # the watch's own session summary (profile names, scaled)
    laps: list[dict[str, Any]]
    records: pd.DataFrame  # columns from metrics.columns.RUN_COLUMNS

    @property
    def has_gct_balance(self) -> bool:
        return bool(self.records["gct_balance_pct"].notna().any())


@dataclass
class FitFile:
    """Everything the reader decoded from one file (all chained segments)."""

    size: int
    file_id: dict[str, Any]
    devices: list[dict[str, Any]]  # device_info messages (profile names; enums as strings)
    sessions: list[dict[str, Any]]  # session messages, file order; only valid values present
    laps: list[dict[str, Any]]  # lap messages, file order; only valid values present
    records: pd.DataFrame  # every record message, file order; profile names, scaled; NaN invalid
    warnings: list[str] = field(default_factory=list)
    partial: bool = False  # True when the file was damaged and only a prefix was readable
    segments: int = 1

    def runs(self) -> list[Run]:
        """The running sessions (walking, cycling, swimming... are not runs)."""
        from evenstride.metrics.fit.runs import split_runs

        return split_runs(self)
