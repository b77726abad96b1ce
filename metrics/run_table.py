"""One way to read a run's columns, whether they come as a DataFrame or as numpy arrays.

The public metric functions take a pandas DataFrame (the library API); the import pipeline hands
them the reader's numpy columns directly, because building a DataFrame only to take the arrays
back out cost more than summarising. Both give the same float64 arrays here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from evenstride.metrics import columns as C

FloatArray = npt.NDArray[np.float64]
RunColumns = Mapping[str, np.ndarray]
"""Canonical run columns (metrics.columns) as numpy arrays of equal length: timestamp as
datetime64[ns] (UTC, NaT where missing), the others float64 with NaN where missing."""


class RunTable:
    """Read-only column access over a DataFrame or a RunColumns mapping."""

    __slots__ = ("arrays", "frame", "memo", "n")

    def __init__(self, records: pd.DataFrame | RunColumns) -> None:
        if isinstance(records, pd.DataFrame):
            self.frame: pd.DataFrame | None = records
            self.arrays: RunColumns | None = None
            self.n = len(records)
        else:
            self.frame = None
            self.arrays = records
            self.n = len(records[C.TIMESTAMP]) if C.TIMESTAMP in records else _length(records)
        self.memo: dict[str, np.ndarray] = {}  # conversions, done once per run

    def has(self, name: str) -> bool:
        if self.frame is not None:
            return name in self.frame.columns
        return name in self.arrays  # type: ignore[operator]

    def floats(self, name: str) -> FloatArray:
        """The column as float64 (NaN where missing or not a number); all NaN when absent.

        Callers must not write into the result (it can be the caller's own array).
        """
        if not self.has(name):
            return np.full(self.n, np.nan)
        if self.frame is None:
            values = self.arrays[name]  # type: ignore[index]
            return values if values.dtype == np.float64 else np.asarray(values, dtype=np.float64)
        if name not in self.memo:
            self.memo[name] = pd.to_numeric(self.frame[name], errors="coerce").to_numpy(
                float, na_value=np.nan
            )
        return self.memo[name]

    def flags(self, name: str) -> npt.NDArray[np.bool_]:
        """A boolean column: True only where the value is True."""
        if self.frame is not None:
            return self.frame[name].eq(True).to_numpy(dtype=bool)
        return np.asarray(self.arrays[name]) == True  # type: ignore[index]  # noqa: E712

    def timestamps_ns(self) -> npt.NDArray[np.int64]:
        """Timestamps as int64 ns since the Unix epoch (NaT as numpy's NaT integer)."""
        ns = self.memo.get(C.TIMESTAMP)
        if ns is None:
            if self.frame is not None:
                ts = pd.to_datetime(self.frame[C.TIMESTAMP], utc=True)
                ns = ts.to_numpy(dtype="datetime64[ns]").astype(np.int64)
            else:
                values = np.asarray(self.arrays[C.TIMESTAMP])  # type: ignore[index]
                ns = values.astype("datetime64[ns]").astype(np.int64)
            self.memo[C.TIMESTAMP] = ns
        return ns

    def first_timestamp(self) -> Any:
        if self.frame is not None:
            return self.frame[C.TIMESTAMP].iloc[0]
        return pd.Timestamp(self.arrays[C.TIMESTAMP][0], tz="UTC")  # type: ignore[index]

    def in_time_order(self) -> bool:
        """True when the timestamps never go back (and none is missing)."""
        ns = self.timestamps_ns()
        return not (ns == np.iinfo(np.int64).min).any() and bool(np.all(ns[1:] >= ns[:-1]))

    def to_frame(self) -> pd.DataFrame:
        if self.frame is not None:
            return self.frame
        return columns_frame(self.arrays)  # type: ignore[arg-type]


def _length(records: RunColumns) -> int:
    return len(next(iter(records.values()))) if len(records) else 0


def columns_frame(columns: RunColumns, *, copy: bool = True) -> pd.DataFrame:
    """RunColumns as the DataFrame the library API uses (timestamp tz-aware UTC)."""
    frame: dict[str, Any] = dict(columns)
    if C.TIMESTAMP in frame:
        ts = np.asarray(frame[C.TIMESTAMP], dtype="datetime64[ns]")
        frame[C.TIMESTAMP] = pd.DatetimeIndex(ts).tz_localize("UTC")
    return pd.DataFrame(frame, copy=copy)


def frame_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """A DataFrame of run records as RunColumns (the inverse of `columns_frame`)."""
    out: dict[str, np.ndarray] = {}
    table = RunTable(frame)
    for name in frame.columns:
        if name == C.TIMESTAMP:
            out[name] = table.timestamps_ns().view("datetime64[ns]")
        elif name == C.MOVING:
            out[name] = table.flags(name)
        else:
            out[name] = table.floats(name)
    return out


def kernel_input(values: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """A read-only, aligned, C-contiguous view of `values` (a copy only when it is neither).

    numba compiles one version per argument type, and read-only-ness is part of the type: pandas
    hands out some columns read-only and others not, which would mean up to 2**k compilations
    of a few seconds each for a kernel of k arrays. Read-only views of everything keep it to one.
    """
    if not (values.flags.c_contiguous and values.flags.aligned and values.dtype == dtype):
        values = np.require(values, dtype, ["C", "A"])
    view = values.view()
    view.flags.writeable = False
    return view
