"""What the FIT reader returns: plain dataclasses around pandas DataFrames."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

RUNNING_SPORTS = frozenset({"running"})


@dataclass
class Run:
    """One running session of a FIT file, with cleaned per-record columns (metrics.columns)."""

    index: int  # position of the session in the file (0-based, across chained segments)
    sport: str
    sub_sport: str  # generic, road, trail, treadmill, track, virtual_activity, ...
    start_time: datetime  # timezone-aware UTC
    elapsed_s: float
    timer_s: float | None
    distance_m: float | None
    session: dict[str, Any]  # the watch's own session summary (profile names, scaled)
    laps: list[dict[str, Any]]
    # metrics.columns.RUN_COLUMNS as numpy arrays (timestamp datetime64[ns] UTC, NaT missing)
    columns: dict[str, np.ndarray]
    timer_intervals: list[tuple[float, float]] = field(default_factory=list)  # Unix s, timer on

    @cached_property
    def records(self) -> pd.DataFrame:
        """The columns as a DataFrame (timestamp tz-aware UTC), built on first use."""
        from evenstride.metrics.run_table import columns_frame

        return columns_frame(self.columns)

    @property
    def seconds(self) -> np.ndarray:
        """Record times as float Unix seconds."""
        return self.columns["timestamp"].astype("datetime64[ns]").astype("int64") / 1e9

    def watch_mean(self, column: str) -> float:
        """Mean of a column as the watch computes its session average (see metrics.weights)."""
        from evenstride.metrics.weights import hold_weights, weighted_mean

        weights = hold_weights(self.seconds, self.timer_intervals or None)
        return weighted_mean(self.columns[column], weights)

    @property
    def has_gct_balance(self) -> bool:
        return bool(np.isfinite(self.columns["gct_balance_pct"]).any())


@dataclass
class FitFile:
    """Everything the reader decoded from one file (all chained segments)."""

    size: int
    file_id: dict[str, Any]
    devices: list[dict[str, Any]]  # device_info messages (profile names; enums as strings)
    sessions: list[dict[str, Any]]  # session messages, file order; only valid values present
    laps: list[dict[str, Any]]  # lap messages, file order; only valid values present
    columns: dict[str, np.ndarray]  # every record message as numpy columns (see `records`)
    events: list[dict[str, Any]] = field(default_factory=list)  # timer start/stop etc.
    sports: list[dict[str, Any]] = field(default_factory=list)  # `sport` messages
    developer_fields: list[dict[str, Any]] = field(default_factory=list)  # field_description
    warnings: list[str] = field(default_factory=list)
    partial: bool = False  # True when the file was damaged and only a prefix was readable
    segments: int = 1

    @cached_property
    def records(self) -> pd.DataFrame:
        """Every record message in file order: FIT profile names, scaled, NaN where invalid.

        Built on first use: decoding fills numpy columns, most callers only need one run's slice.
        """
        from evenstride.metrics.fit.records import records_frame

        return records_frame(self.columns)

    @property
    def record_count(self) -> int:
        return len(self.columns["timestamp"])

    def runs(self) -> list[Run]:
        """The running sessions (walking, cycling, swimming... are not runs)."""
        from evenstride.metrics.fit.runs import split_runs

        return split_runs(self)
