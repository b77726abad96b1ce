"""Per-athlete baseline and noise from comparable runs: level, typical error (TE), MDC.

No minimal detectable change has been published for Garmin GCT balance, and symmetry measures are
far less reliable than the times under them (anchors.md §0.9, §3.8.6), so the noise must be
estimated per athlete from repeated comparable runs (same sensor, surface group and pace group,
enough clean minutes: §3.8.2), never hard-coded.

Typical error (§3.8.3): TE is the within-athlete SD of a single run's value. We estimate it from
*successive differences* (SD(diff) / sqrt(2)) because the differences cancel slow drifts of the
athlete's level (training blocks, season) that would inflate a plain SD. The SD of the differences
is taken robustly: a first scale from the MAD (1.4826 x MAD), then the root mean square of the
differences within 3 such scales, rescaled for the truncation. One outlier run spoils only two
differences and is cut off, yet with ordinary data the estimate is nearly as precise as a plain
SD (a MAD alone wastes ~60 % of the data, which hurts with 8-30 runs).
MDC95 = 1.96 x sqrt(2) x TE = 2.77 x TE: the smallest run-to-run change that is real with 95 %
confidence; MDC90 = 2.33 x TE.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

MDC95_FACTOR = 1.96 * math.sqrt(2.0)  # 2.77
MDC90_FACTOR = 1.645 * math.sqrt(2.0)  # 2.33
_MAD_TO_SD = 1.4826
_TRUNC = 3.0
# Var of a standard normal truncated at +-3 is 0.9733; rescale the truncated RMS by 1/sqrt of it.
_TRUNC_CORR = 1.0 / math.sqrt(0.97333)

DEFAULT_PACE_GROUPS: tuple[tuple[str, ...], ...] = (("easy", "steady"), ("tempo",), ("fast",))
"""Pace bands that count as comparable with each other (neighbouring easy paces together)."""


def robust_sd(values: npt.ArrayLike, *, center: float | None = None) -> float:
    """MAD-seeded, 3-scale-truncated RMS: an SD that ignores outliers but keeps efficiency."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return math.nan
    c = float(np.median(x)) if center is None else center
    dev = x - c
    s0 = _MAD_TO_SD * float(np.median(np.abs(dev)))
    if s0 <= 0:
        s0 = float(np.sqrt(np.mean(dev**2)))
        if s0 <= 0:
            return 0.0
    kept = dev[np.abs(dev) <= _TRUNC * s0]
    return float(np.sqrt(np.mean(kept**2)) * _TRUNC_CORR)


def typical_error(values: npt.ArrayLike, *, method: str = "successive") -> float:
    """Typical error of one run's value (same unit), robust to outlier runs.

    method="successive" (default): robust SD of successive differences / sqrt(2), insensitive to
    slow level drifts. method="level": robust SD of the values themselves (assumes a constant
    level). Values must be in time order. NaN with fewer than 3 values.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 3:
        return math.nan
    if method == "successive":
        return robust_sd(np.diff(x), center=0.0) / math.sqrt(2.0)
    if method == "level":
        return robust_sd(x)
    raise ValueError(f"unknown TE method {method!r}")


def mdc(te: float, confidence: float = 0.95) -> float:
    """Minimal detectable change between two single runs: z * sqrt(2) * TE."""
    z = {0.95: 1.96, 0.90: 1.645}.get(round(confidence, 2))
    if z is None:
        raise ValueError("confidence must be 0.90 or 0.95")
    return z * math.sqrt(2.0) * te


@dataclass(frozen=True)
class Baseline:
    """An athlete's reference level and noise for one metric in one stratum."""

    level: float  # median of the baseline runs (d in pp, or cadence in spm)
    te: float  # typical error of one run
    mdc95: float  # 2.77 * TE
    mdc90: float  # 2.33 * TE
    n_runs: int
    clean_minutes: float
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    method: str = "successive"

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "te": self.te,
            "mdc95": self.mdc95,
            "mdc90": self.mdc90,
            "n_runs": self.n_runs,
            "clean_minutes": self.clean_minutes,
            "first": None if self.first is None else self.first.isoformat(),
            "last": None if self.last is None else self.last.isoformat(),
            "method": self.method,
        }


def pace_group_of(band: Any, groups: Sequence[Sequence[str]] = DEFAULT_PACE_GROUPS) -> str | None:
    """Name of the comparable-pace group of a band ("easy+steady", "tempo", ...)."""
    if band is None or (isinstance(band, float) and math.isnan(band)):
        return None
    for g in groups:
        if band in g:
            return "+".join(g)
    return str(band)


def comparable_runs(
    summaries: pd.DataFrame,
    *,
    value_col: str = "d",
    sensor: str | None | bool = True,
    surface: str | None = None,
    pace_group: str | None = None,
    min_clean_minutes: float = 10.0,
    minutes_col: str = "balance_minutes",
    pace_groups: Sequence[Sequence[str]] = DEFAULT_PACE_GROUPS,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The runs comparable with the athlete's main stratum, in time order, and that stratum.

    Keeps rows with a finite `value_col` and at least `min_clean_minutes` in `minutes_col`.
    `sensor=True` picks the sensor of the most recent usable run (a sensor change resets the
    baseline, §3.2: never mix sensors); `sensor=False` ignores sensors (cadence). `surface` and
    `pace_group` default to the most frequent ones among that sensor's runs (ties: most recent).
    """
    df = summaries
    if "start_time" in df.columns:
        times = pd.to_datetime(df["start_time"], utc=True)
        order = np.argsort(times.to_numpy(), kind="stable")
        df = df.iloc[order].assign(start_time=times.iloc[order])
    empty = {"sensor": None, "surface": None, "pace_group": None}
    if value_col not in df.columns:
        return df.iloc[0:0], empty
    ok = np.isfinite(pd.to_numeric(df[value_col], errors="coerce").to_numpy(float, na_value=np.nan))
    if minutes_col in df.columns:
        mins = pd.to_numeric(df[minutes_col], errors="coerce").to_numpy(float, na_value=np.nan)
        ok &= np.nan_to_num(mins) >= min_clean_minutes
    n = len(df)
    surf_arr = (
        np.asarray(df["surface"].astype("object").to_numpy())
        if "surface" in df.columns
        else np.full(n, "road", dtype=object)
    )
    group_of = {b: "+".join(g) for g in pace_groups for b in g}
    bands = df["pace_band"].tolist() if "pace_band" in df.columns else [None] * n
    pg_arr = np.array(
        [group_of.get(b, b) if isinstance(b, str) else None for b in bands], dtype=object
    )
    sensors = (
        np.asarray(df["sensor"].astype("object").to_numpy())
        if "sensor" in df.columns
        else np.full(n, None, dtype=object)
    )
    chosen_sensor: str | None = None
    if sensor is True:
        idx = np.flatnonzero(ok)
        if len(idx):
            chosen_sensor = sensors[idx[-1]]
            if chosen_sensor is not None and not pd.isna(chosen_sensor):
                ok &= sensors == chosen_sensor
            else:
                chosen_sensor = None
    elif sensor is not False and sensor is not None:
        chosen_sensor = str(sensor)
        ok &= sensors == chosen_sensor

    def most_common(values: npt.NDArray[Any]) -> Any:
        """Most frequent value among the kept runs; ties go to the one seen most recently."""
        counts: dict[Any, int] = {}
        last_seen: dict[Any, int] = {}
        for k in np.flatnonzero(ok):  # one pass over runs (not samples)
            v = values[k]
            counts[v] = counts.get(v, 0) + 1
            last_seen[v] = int(k)
        if not counts:
            return None
        return max(counts, key=lambda v: (counts[v], last_seen[v]))

    surf = surface if surface is not None else most_common(surf_arr)
    if surf is not None:
        ok &= surf_arr == surf
    pg = pace_group if pace_group is not None else most_common(pg_arr)
    if pg is not None:
        ok &= pg_arr == pg
    df = df.iloc[np.flatnonzero(ok)].assign(surface=surf_arr[ok], pace_group=pg_arr[ok])
    return df.reset_index(drop=True), {"sensor": chosen_sensor, "surface": surf, "pace_group": pg}


def compute_baseline(
    runs: pd.DataFrame,
    *,
    value_col: str = "d",
    minutes_col: str = "balance_minutes",
    method: str = "successive",
    te_floor: float = 0.0,
) -> Baseline:
    """Level (median) and TE/MDC of a set of comparable runs (time order, e.g. comparable_runs).

    TE is floored at `te_floor` so that a suspiciously quiet stretch cannot make every later
    run look like a change.
    """
    x = pd.to_numeric(runs[value_col], errors="coerce").to_numpy(float, na_value=np.nan)
    x = x[np.isfinite(x)]
    te = typical_error(x, method=method)
    if np.isfinite(te):
        te = max(te, te_floor)
    minutes = (
        float(pd.to_numeric(runs[minutes_col], errors="coerce").fillna(0).sum())
        if minutes_col in runs.columns
        else 0.0
    )
    times = pd.to_datetime(runs["start_time"], utc=True) if "start_time" in runs.columns else None
    return Baseline(
        level=float(np.median(x)) if len(x) else math.nan,
        te=te,
        mdc95=MDC95_FACTOR * te,
        mdc90=MDC90_FACTOR * te,
        n_runs=int(len(x)),
        clean_minutes=minutes,
        first=None if times is None or not len(times) else times.iloc[0],
        last=None if times is None or not len(times) else times.iloc[-1],
        method=method,
    )
