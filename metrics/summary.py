"""One run -> one `RunSummary`: GCT balance, cadence and running dynamics over clean samples.

A single run's balance is noisy and context-dependent (pace, hills, warm-up, pauses; anchors.md
§3.4, §3.8), so the summary keeps robust statistics (median, IQR), how much clean data supports
them, and the run's *stratum* (sensor, surface, pace band) so that the trend detector only
compares like with like. The statistics are computed twice over in this code base, on purpose:
`_statistics_numpy` is the readable reference (and the path without numba), and
`summary_kernels.run_statistics` does the same in one compiled call, bit for bit, because a
hundred small numpy calls per run cost more than reading the run's FIT file.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from evenstride.metrics import columns as C
from evenstride.metrics import summary_kernels
from evenstride.metrics.clean import DEFAULT_CLEAN, CleanSamples, CleanSettings, clean_samples
from evenstride.metrics.run_table import RunColumns, RunTable, kernel_input
from evenstride.metrics.zones import ZONE_KEYS, zone_keys, zone_of_d

FloatArray = npt.NDArray[np.float64]

NO_BALANCE_FLAG = "no balance sensor data"
LITTLE_BALANCE_FLAG = "too little clean balance data"

DEFAULT_CADENCE_SLOPE = 12.0
"""Steps/min per m/s when an athlete's own cadence-speed fit is not possible: van Oeveren et al.
2017 report 154/158/160 spm at 2.4/2.6/2.9 m/s, i.e. ~12 spm per m/s (anchors.md §3.5)."""


# --------------------------------------------------------------------------- robust statistics


def stable_argsort(x: FloatArray) -> npt.NDArray[np.int64]:
    """`np.argsort(x, kind="stable")` for NaN-free x, about twice as fast.

    A quicksort puts equal values together in some order; sorting the unique integers
    (rank of the value, index) then restores index order within ties. Medians run on every
    stored run, and GCT balance, cadence and speed are quantised, so ties are the rule.
    """
    n = len(x)
    if n < 2:
        return np.arange(n)
    order = np.argsort(x)
    xs = x[order]
    rank = np.empty(n, np.int64)
    rank[0] = 0
    np.cumsum(xs[1:] != xs[:-1], out=rank[1:])
    key = rank * n + order
    key.sort()
    return key % n


def weighted_quantiles(
    values: npt.ArrayLike, weights: npt.ArrayLike | None, qs: Sequence[float]
) -> FloatArray:
    """Time-weighted quantiles (Hazen midpoints); equal weights give the ordinary median.

    Weighted so that smart recording (irregular sample spacing) does not over-count dense parts.
    Non-finite values are ignored; all-NaN input gives NaN.
    """
    x = np.asarray(values, dtype=float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    ok = np.isfinite(x) & np.isfinite(w) & (w > 0)
    if not ok.any():
        return np.full(len(qs), np.nan)
    x, w = x[ok], w[ok]
    order = stable_argsort(x)
    return _sorted_quantiles(x[order], w[order], qs)


def _sorted_quantiles(xs: FloatArray, ws: FloatArray, qs: Sequence[float]) -> FloatArray:
    """weighted_quantiles of values already in stable sorted order (positive weights)."""
    if not len(xs):
        return np.full(len(qs), np.nan)
    cw = np.cumsum(ws)
    pos = (cw - 0.5 * ws) / cw[-1]
    return np.interp(np.asarray(qs, dtype=float), pos, xs)


def weighted_median(values: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> float:
    return float(weighted_quantiles(values, weights, (0.5,))[0])


class Ranked:
    """One column's finite values in stable sorted order, sorted once per run.

    The stable order of any subset of the samples is this order filtered by the subset, so the
    run's median, thirds, laps and speed bins all come from one sort (same values, bit for bit,
    as sorting each subset).
    """

    __slots__ = ("order", "values")

    def __init__(self, values: FloatArray, per_unit: float | None = None) -> None:
        """`per_unit`: the column's recording resolution (100 for 0.01 steps), when known.

        With it, quantised columns are ordered by a compiled counting sort; values that turn out
        not to be quantised that way are sorted as usual. The order is the same either way.
        """
        self.values = values
        self.order = _value_order(values, per_unit)

    def subset(self, mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
        """Indices of the masked finite samples, in stable value order."""
        return self.order[mask[self.order]]

    def quantiles(
        self, weights: FloatArray, mask: npt.NDArray[np.bool_], qs: Sequence[float]
    ) -> FloatArray:
        """weighted_quantiles(values[mask], weights[mask], qs); `mask` must exclude weights <= 0."""
        idx = self.subset(mask)
        return _sorted_quantiles(self.values[idx], weights[idx], qs)

    def median(self, weights: FloatArray, mask: npt.NDArray[np.bool_]) -> float:
        return float(self.quantiles(weights, mask, (0.5,))[0])

    def grouped_median(
        self, weights: FloatArray, groups: npt.NDArray[np.int64], n_groups: int, mask
    ) -> FloatArray:
        """grouped_weighted_median of the masked samples; `mask` must exclude weights <= 0."""
        idx = self.subset(mask & (groups >= 0) & (groups < n_groups))
        idx = idx[_group_order(groups[idx], n_groups)]
        return _sorted_grouped_median(self.values[idx], weights[idx], groups[idx], n_groups)


def _counting_range(n: int) -> int:
    """The widest key range a counting sort of n values may take before sorting the usual way."""
    return 8 * n + 65536


def _value_order(values: FloatArray, per_unit: float | None = None) -> npt.NDArray[np.int64]:
    """Indices of the finite values in stable value order (see Ranked for `per_unit`)."""
    if per_unit is not None and summary_kernels.COMPILED:
        order, ok = summary_kernels.counting_order(
            kernel_input(values), per_unit, _counting_range(len(values))
        )
        if ok:
            return order
    finite = np.flatnonzero(np.isfinite(values))
    return finite[stable_argsort(values[finite])]


def _group_order(g: npt.NDArray[np.int64], n_groups: int) -> npt.NDArray[np.int64]:
    """Stable order by group id (a radix sort when the ids fit 16 bits)."""
    if n_groups <= np.iinfo(np.int16).max:
        return np.argsort(g.astype(np.int16), kind="stable")
    return np.argsort(g, kind="stable")


def grouped_weighted_median(
    values: npt.ArrayLike, weights: npt.ArrayLike, groups: npt.ArrayLike, n_groups: int
) -> FloatArray:
    """`weighted_median` of every group at once (one sort instead of one per lap or bin).

    Same definition as weighted_quantiles (Hazen midpoints, np.interp clamping at the ends);
    groups are 0..n_groups-1, negative group ids are ignored, empty groups give NaN.
    """
    x = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    g = np.asarray(groups, dtype=np.int64)
    ok = np.isfinite(x) & np.isfinite(w) & (w > 0) & (g >= 0) & (g < n_groups)
    x, w, g = x[ok], w[ok], g[ok]
    order = stable_argsort(x)  # then by group, stably: the permutation of lexsort((x, g))
    order = order[_group_order(g[order], n_groups)]
    return _sorted_grouped_median(x[order], w[order], g[order], n_groups)


def _sorted_grouped_median(
    x: FloatArray, w: FloatArray, g: npt.NDArray[np.int64], n_groups: int
) -> FloatArray:
    """grouped_weighted_median of samples sorted by (group, value), stably.

    Each group is its own weighted_quantiles call on its slice, so a lap's median is exactly
    what weighted_median gives for that lap (and what the compiled kernel gives).
    """
    out = np.full(n_groups, np.nan)
    bounds = np.searchsorted(g, np.arange(n_groups + 1), "left")
    for k in range(n_groups):
        a, b = bounds[k], bounds[k + 1]
        if b > a:
            out[k] = _sorted_quantiles(x[a:b], w[a:b], (0.5,))[0]
    return out


_THEIL_SEN_POINTS = 400  # theil_sen reduces longer inputs to this many bin medians


def theil_sen(
    x: npt.ArrayLike, y: npt.ArrayLike, *, max_points: int = _THEIL_SEN_POINTS
) -> tuple[float, float]:
    """Robust line fit: (slope, intercept) = median pairwise slope, median residual.

    Tolerates up to ~29 % outliers, unlike least squares. Inputs longer than `max_points` are
    first reduced to medians of equal-count bins along x (deterministic, keeps the shape).
    Returns (nan, nan) when x has no spread.
    """
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    ok = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[ok], ya[ok]
    if len(xa) > max_points:
        order = np.argsort(xa, kind="stable")
        chunks = np.array_split(order, max_points)
        xa = np.array([np.median(xa[c]) for c in chunks])
        ya = np.array([np.median(ya[c]) for c in chunks])
    if len(xa) < 2:
        return math.nan, math.nan
    i, j = np.triu_indices(len(xa), 1)
    dx = xa[j] - xa[i]
    keep = np.abs(dx) > 1e-12
    if not keep.any():
        return math.nan, math.nan
    slope = float(np.median((ya[j] - ya[i])[keep] / dx[keep]))
    intercept = float(np.median(ya - slope * xa))
    return slope, intercept


# --------------------------------------------------------------------------- strata


SURFACES = ("road", "trail", "track", "treadmill")
_SURFACE_OF_SUB_SPORT = {
    "treadmill": "treadmill",
    "indoor_running": "treadmill",
    "virtual_activity": "treadmill",
    "track": "track",
    "indoor_track": "track",
    "trail": "trail",
    "mountain": "trail",
    "ultra": "trail",
}


def surface_of(sub_sport: str | None) -> str:
    """FIT sub_sport -> surface stratum; street/generic/unknown count as road."""
    if not sub_sport:
        return "road"
    return _SURFACE_OF_SUB_SPORT.get(str(sub_sport).lower(), "road")


@dataclass(frozen=True)
class PaceBands:
    """Named pace bands, relative to the athlete's reference (typical easy) speed when known.

    Relative edges: easy < 1.07 x reference, steady < 1.17 x, tempo < 1.30 x, fast above (about
    +7 %, +17 %, +30 % speed: the usual easy / marathon / threshold / interval ladder). Without a
    reference speed the fixed edges apply (3.1 / 3.5 / 4.1 m/s = 5:23 / 4:46 / 4:04 min/km), a
    fallback for a typical recreational runner that a coach should override.
    """

    names: tuple[str, ...] = ("easy", "steady", "tempo", "fast")
    relative_edges: tuple[float, ...] = (1.07, 1.17, 1.30)
    fixed_edges_mps: tuple[float, ...] = (3.1, 3.5, 4.1)

    def band(self, speed_mps: float | None, reference_speed: float | None = None) -> str | None:
        if speed_mps is None or not np.isfinite(speed_mps):
            return None
        if reference_speed is not None and np.isfinite(reference_speed) and reference_speed > 0:
            idx = int(np.searchsorted(self.relative_edges, speed_mps / reference_speed, "right"))
        else:
            idx = int(np.searchsorted(self.fixed_edges_mps, speed_mps, "right"))
        return self.names[idx]


DEFAULT_PACE_BANDS = PaceBands()


def pace_band(
    speed_mps: float | None,
    reference_speed: float | None = None,
    bands: PaceBands = DEFAULT_PACE_BANDS,
) -> str | None:
    """Pace band name of a run's median clean speed."""
    return bands.band(speed_mps, reference_speed)


@dataclass(frozen=True)
class Stratum:
    """What must match for two runs to be comparable (anchors.md §3.8.2)."""

    sensor: str | None
    surface: str
    pace_band: str | None


# --------------------------------------------------------------------------- cadence vs speed


@dataclass(frozen=True)
class CadenceSpeedFit:
    """Per-athlete cadence = intercept + slope * speed (robust), to compare cadence at one pace.

    Cadence rises with speed (§3.5), so a lower cadence on a slow day is not a change of form;
    comparing at the athlete's reference speed removes that.
    """

    intercept: float
    slope_spm_per_mps: float
    reference_speed_mps: float
    n: int
    residual_sd: float
    method: str = "theil-sen"

    def predict(self, speed_mps: npt.ArrayLike) -> FloatArray:
        return self.intercept + self.slope_spm_per_mps * np.asarray(speed_mps, dtype=float)

    def at_reference(
        self, cadence_spm: npt.ArrayLike, speed_mps: npt.ArrayLike, reference: float | None = None
    ) -> FloatArray:
        """Cadence moved along the athlete's slope to the reference speed."""
        ref = self.reference_speed_mps if reference is None else reference
        return np.asarray(cadence_spm, dtype=float) + self.slope_spm_per_mps * (
            ref - np.asarray(speed_mps, dtype=float)
        )


def _speed_cadence_pairs(data: Any) -> tuple[FloatArray, FloatArray]:
    if isinstance(data, pd.DataFrame):
        for sc, cc in (
            ("speed_median_mps", "cadence_median"),
            (C.SPEED, C.CADENCE),
            ("speed", "cadence"),
        ):
            if sc in data.columns and cc in data.columns:
                return (
                    pd.to_numeric(data[sc], errors="coerce").to_numpy(float, na_value=np.nan),
                    pd.to_numeric(data[cc], errors="coerce").to_numpy(float, na_value=np.nan),
                )
        raise ValueError("need speed_median_mps/cadence_median or speed_mps/cadence_spm columns")
    speeds: list[float] = []
    cads: list[float] = []
    for item in data:
        if isinstance(item, RunSummary):
            sp, cd = item.speed_median_mps, item.cadence_median
        else:
            sp, cd = item
        speeds.append(np.nan if sp is None else float(sp))
        cads.append(np.nan if cd is None else float(cd))
    return np.asarray(speeds, dtype=float), np.asarray(cads, dtype=float)


def fit_cadence_speed(
    data: pd.DataFrame | Iterable[tuple[float, float]] | Iterable[RunSummary],
    *,
    min_speed_span_mps: float = 0.3,
    slope_range: tuple[float, float] = (0.0, 30.0),
    default_slope: float = DEFAULT_CADENCE_SLOPE,
) -> CadenceSpeedFit:
    """Fit cadence on speed (Theil-Sen) from (speed, cadence) samples or run summaries.

    When speeds span less than `min_speed_span_mps` the slope is not identifiable and
    `default_slope` is used; slopes are clipped to `slope_range` (cadence never falls with speed
    in running). Raises ValueError without usable points.
    """
    sp, cd = _speed_cadence_pairs(data)
    ok = np.isfinite(sp) & np.isfinite(cd) & (sp > 0) & (cd > 0)
    sp, cd = sp[ok], cd[ok]
    if len(sp) == 0:
        raise ValueError("no (speed, cadence) pairs to fit")
    ref = float(np.median(sp))
    q10, q90 = np.quantile(sp, [0.1, 0.9])
    method = "theil-sen"
    slope = math.nan
    if len(sp) >= 3 and q90 - q10 >= min_speed_span_mps:
        slope, _ = theil_sen(sp, cd)
    if not np.isfinite(slope):
        slope, method = default_slope, "default-slope"
    slope = float(np.clip(slope, *slope_range))
    intercept = float(np.median(cd - slope * sp))
    resid = cd - (intercept + slope * sp)
    mad_sd = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    return CadenceSpeedFit(intercept, slope, ref, int(len(sp)), mad_sd, method)


# --------------------------------------------------------------------------- run summary


@dataclass
class LapSummary:
    """Per-lap values over the lap's clean samples (warm-up included: see summarise_run)."""

    index: int
    start_time: str | None
    clean_minutes: float
    balance_median: float | None
    d: float | None
    zone: str | None
    cadence_median: float | None
    gct_median_ms: float | None
    speed_median_mps: float | None


@dataclass
class RunSummary:
    """Everything the trend detector and the planner need to know about one run."""

    run_id: str | None
    start_time: pd.Timestamp | None
    sensor: str | None
    sub_sport: str | None
    surface: str
    pace_band: str | None
    duration_s: float
    distance_m: float | None
    n_records: int
    running_minutes: float
    clean_minutes: float
    # GCT balance (% left) over clean samples; None when the run has none
    has_balance: bool
    balance_minutes: float
    balance_median: float | None
    balance_mean: float | None
    balance_iqr: float | None
    d: float | None  # balance_median - 50 (pp); > 0 = more contact time on the left foot
    d_mean: float | None
    zone: str | None  # Garmin zone of the median
    zone_minutes: dict[str, float]  # keys zones.ZONE_KEYS
    drift_pp: float | None  # median of last third - median of first third of clean samples
    balance_speed_slope: float | None  # pp per m/s, Theil-Sen on speed-bin medians
    # cadence and running dynamics
    cadence_mean: float | None
    cadence_median: float | None
    cadence_at_reference: float | None  # pace-adjusted (steps/min at reference_speed_mps)
    reference_speed_mps: float | None
    gct_mean_ms: float | None
    gct_median_ms: float | None
    vertical_oscillation_mm: float | None
    vertical_ratio_pct: float | None
    step_length_mm: float | None
    speed_median_mps: float | None
    grade_checked: bool
    laps: list[LapSummary] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    @property
    def stratum(self) -> Stratum:
        return Stratum(self.sensor, self.surface, self.pace_band)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (ISO timestamps, floats, None for missing)."""
        return _json_safe(self)


_PLAIN = frozenset({str, int, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # dataclass -> field names, looked up once


def _json_safe(obj: Any) -> Any:
    kind = type(obj)
    if kind is float:  # the common cases first: this runs for every stored run summary
        return obj if math.isfinite(obj) else None
    if kind in _PLAIN:
        return obj
    if kind is dict:
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if kind is list:
        return [_json_safe(v) for v in obj]
    names = _FIELD_NAMES.get(kind)
    if names is None and dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(obj))
    if names is not None:
        return {name: _json_safe(getattr(obj, name)) for name in names}
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, pd.Timestamp | datetime | date):
        return None if pd.isna(obj) else obj.isoformat()
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    return obj


def _opt(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def _round(x: float | None, nd: int) -> float | None:
    return None if x is None else round(x, nd)


def _round_finite(x: float, nd: int) -> float | None:
    """_round(_opt(x), nd) for a plain float."""
    return round(x, nd) if math.isfinite(x) else None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _to_ns(value: Any) -> int | None:
    """ns since the epoch (naive means UTC), as pd.Timestamp(value).value; fast for datetimes."""
    if value is None:
        return None
    if type(value) is datetime:  # the reader's lap times: microsecond precision at most
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return (value - _EPOCH) // _MICROSECOND * 1000
    ts = pd.Timestamp(value)
    if pd.isna(ts):
        return None
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.value)


_BIN_MPS = 0.2  # speed-bin width for the balance-vs-speed slope


def _balance_speed_slope(
    bal: FloatArray,
    spd: FloatArray,
    w: FloatArray,
    *,
    bin_mps: float = _BIN_MPS,
    min_bin_s: float = 60.0,
    min_bins: int = 3,
    min_span_mps: float = 0.4,
    within: npt.NDArray[np.bool_] | None = None,
    ranks: tuple[Ranked, Ranked] | None = None,
) -> float | None:
    """Balance-vs-speed slope (pp per m/s) over speed-bin medians; None when not identifiable.

    `within`: the samples to use (default all); `ranks`: Ranked(bal), Ranked(spd) when the
    caller already sorted them.
    """
    ok = False
    if summary_kernels.COMPILED:
        inside = np.ones(len(bal), dtype=bool) if within is None else within
        groups, seconds, used, ok = summary_kernels.speed_bins(spd, bal, w, inside, bin_mps)
        if ok and used < 2:
            return None
    if not ok:
        use = np.isfinite(bal) & np.isfinite(spd)
        if within is not None:
            use &= within
        if use.sum() < 2:
            return None
        idx = np.floor(spd[use] / bin_mps).astype(np.int64)
        bins, inverse = np.unique(idx, return_inverse=True)
        seconds = np.bincount(inverse, weights=w[use], minlength=len(bins))
        groups = np.full(len(bal), -1, dtype=np.int64)
        groups[use] = inverse
    ranked_bal, ranked_spd = ranks if ranks is not None else (Ranked(bal), Ranked(spd))
    positive = np.isfinite(w) & (w > 0)
    xs = ranked_spd.grouped_median(w, groups, len(seconds), positive)
    ys = ranked_bal.grouped_median(w, groups, len(seconds), positive)
    return _slope_of_bins(xs, ys, seconds, min_bin_s, min_bins, min_span_mps)


def _slope_of_bins(
    xs: FloatArray,
    ys: FloatArray,
    seconds: FloatArray,
    min_bin_s: float = 60.0,
    min_bins: int = 3,
    min_span_mps: float = 0.4,
) -> float | None:
    """Theil-Sen slope over the speed bins with enough time (speed, balance medians per bin)."""
    keep = seconds >= min_bin_s
    x, y = xs[keep].tolist(), ys[keep].tolist()
    if len(x) < min_bins or max(x) - min(x) < min_span_mps:
        return None
    if summary_kernels.COMPILED and len(x) <= _THEIL_SEN_POINTS:  # the same slope, compiled
        return _opt(float(summary_kernels.theil_sen_slope(np.array(x), np.array(y))))
    slope, _ = theil_sen(x, y)
    return _opt(slope)


def _iso_utc(ns: int) -> str:
    """pd.Timestamp(ns, tz="UTC").isoformat(), without pandas for whole microseconds."""
    if ns % 1000:
        return pd.Timestamp(ns, tz="UTC").isoformat()
    return (_EPOCH + ns // 1000 * _MICROSECOND).isoformat()


def _lap_index(
    ts_ns: npt.NDArray[np.int64], laps: list[dict[str, Any]], lap_starts: list[int | None]
) -> npt.NDArray[np.int64]:
    """Lap number of each record (-1 outside every lap), by lap start_time + total_elapsed_time.

    `lap_starts`: _to_ns of every lap's start_time.
    """
    starts, ends = _lap_bounds(laps, lap_starts)
    order = np.argsort(starts, kind="stable")
    s_sorted = starts[order]
    pos = np.searchsorted(s_sorted, ts_ns, side="right") - 1
    lap = np.where(pos >= 0, order[np.clip(pos, 0, None)], -1)
    inside = (pos >= 0) & (ts_ns <= ends[np.clip(lap, 0, None)])
    return np.where(inside & (starts[np.clip(lap, 0, None)] >= 0), lap, -1)


def _lap_bounds(
    laps: list[dict[str, Any]], lap_starts: list[int | None]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Start and end (ns) of every lap; start -1 when unknown."""
    starts = np.array([ns or -1 for ns in lap_starts], dtype=np.int64)
    ends = np.empty_like(starts)
    for k, lp in enumerate(laps):
        el = lp.get("total_elapsed_time")
        if el is not None and np.isfinite(el):
            ends[k] = starts[k] + int(float(el) * 1e9)
        elif lp.get("timestamp") is not None:
            ends[k] = _to_ns(lp.get("timestamp")) or starts[k]
        elif k + 1 < len(laps):
            ends[k] = _to_ns(laps[k + 1].get("start_time")) or starts[k]
        else:
            ends[k] = np.iinfo(np.int64).max
    return starts, ends


def summarise_run(
    records: pd.DataFrame | RunColumns,
    *,
    laps: list[dict[str, Any]] | None = None,
    reference_speed: float | None = None,
    cadence_fit: CadenceSpeedFit | None = None,
    warmup_s: float | None = None,
    settings: CleanSettings = DEFAULT_CLEAN,
    pace_bands: PaceBands = DEFAULT_PACE_BANDS,
    run_id: str | None = None,
    start_time: Any = None,
    sensor: str | None = None,
    sub_sport: str | None = None,
) -> RunSummary:
    """Summarise one run's records (columns from metrics.columns) over clean samples.

    - `records`: a DataFrame, or the same columns as numpy arrays (`metrics.run_table`).
    - `reference_speed`: the athlete's typical easy speed (m/s); sets relative pace bands and
      the speed at which cadence is compared. Defaults to `cadence_fit.reference_speed_mps`.
    - `cadence_fit`: per-athlete cadence-speed line (fit_cadence_speed); without it, but with a
      reference speed, DEFAULT_CADENCE_SLOPE is used and a flag says so.
    - `warmup_s`: overrides settings.warmup_s (default 300 s of running time).
    - `sensor`: the caller's device identity (e.g. "HRM-Pro Plus 1234567"), a stratum key.
    - `laps`: FIT lap dicts (start_time, total_elapsed_time); lap values use the lap's clean
      samples *including* warm-up time, so the first lap still gets values.
    """
    table = RunTable(records)
    if table.has(C.TIMESTAMP) and table.n > 1 and not table.in_time_order():
        frame = table.to_frame()  # rare (damaged files): sorted as a DataFrame
        ts = pd.to_datetime(frame[C.TIMESTAMP], utc=True)
        table = RunTable(frame.iloc[np.argsort(ts.to_numpy(), kind="stable")])
    cs: CleanSamples = clean_samples(table, settings, warmup_s=warmup_s)
    flags = list(cs.flags)
    n = table.n
    if start_time is None and table.has(C.TIMESTAMP) and n:
        start_time = table.first_timestamp()
    start_ts = pd.Timestamp(start_time) if start_time is not None else None
    if start_ts is not None and start_ts.tzinfo is None:
        start_ts = start_ts.tz_localize("UTC")
    if reference_speed is None and cadence_fit is not None:
        reference_speed = cadence_fit.reference_speed_mps

    lap_starts: list[int | None] = []
    ts_ns = None
    if laps and n and table.has(C.TIMESTAMP):
        ts_ns = table.timestamps_ns()
        lap_starts = [_to_ns(lp.get("start_time")) for lp in laps]
    if summary_kernels.COMPILED:
        st = _statistics_compiled(table, cs, settings, laps or [], lap_starts, ts_ns)
    else:
        st = _statistics_numpy(table, cs, settings, laps or [], lap_starts, ts_ns)

    b_med = b_mean = b_iqr = d = d_mean = None
    zone_minutes = dict.fromkeys(ZONE_KEYS, 0.0)
    if not st.has_balance:
        flags.append(NO_BALANCE_FLAG)
    elif st.n_balance:
        q25, q50, q75 = st.balance_quartiles
        b_med, b_iqr = float(q50), float(q75 - q25)
        b_mean = st.balance_mean
        d, d_mean = b_med - 50.0, b_mean - 50.0
        zone_minutes = {
            k: round(float(m), 3) for k, m in zip(ZONE_KEYS, st.zone_minutes, strict=True)
        }
        if st.balance_minutes < settings.min_clean_minutes:
            flags.append(LITTLE_BALANCE_FLAG)
    else:
        flags.append(LITTLE_BALANCE_FLAG)

    cad_ref = None
    if reference_speed is not None and st.n_cadence:
        if cadence_fit is not None:
            slope_c = cadence_fit.slope_spm_per_mps
        else:
            slope_c = DEFAULT_CADENCE_SLOPE
            flags.append("cadence adjusted with the default cadence-speed slope")
        clean = cs.clean
        cad, spd = table.floats(C.CADENCE)[clean], table.floats(C.SPEED)[clean]
        adj = cad + slope_c * (float(reference_speed) - spd)
        cad_ref = _opt(weighted_median(adj, cs.weight_s[clean]))

    lap_summaries: list[LapSummary] = []
    if st.laps is not None:  # per-lap values were computed above in one pass; plain floats
        lap_bal, lap_cad, lap_gct, lap_spd, lap_secs = st.laps.tolist()  # round as Python does
        for k, lap_start in enumerate(lap_starts):
            lb = lap_bal[k]
            d_lap = lb - 50.0
            lap_summaries.append(
                LapSummary(
                    index=k,
                    start_time=None if lap_start is None else _iso_utc(lap_start),
                    clean_minutes=round(lap_secs[k] / 60.0, 3),
                    balance_median=_round_finite(lb, 2),
                    d=_round_finite(d_lap, 2),
                    zone=zone_of_d(d_lap),
                    cadence_median=_round_finite(lap_cad[k], 1),
                    gct_median_ms=_round_finite(lap_gct[k], 1),
                    speed_median_mps=_round_finite(lap_spd[k], 3),
                )
            )

    dist = table.floats(C.DISTANCE)
    distance = float(np.nanmax(dist) - np.nanmin(dist)) if np.isfinite(dist).any() else None
    speed_median = _opt(st.speed_median)
    band = pace_bands.band(speed_median, reference_speed)
    return RunSummary(
        run_id=run_id,
        start_time=start_ts,
        sensor=sensor,
        sub_sport=sub_sport,
        surface=surface_of(sub_sport),
        pace_band=band,
        duration_s=float(cs.t_s[-1]) if n else 0.0,
        distance_m=distance,
        n_records=n,
        running_minutes=st.running_minutes,
        clean_minutes=st.clean_minutes,
        has_balance=st.has_balance,
        balance_minutes=st.balance_minutes,
        balance_median=b_med,
        balance_mean=b_mean,
        balance_iqr=b_iqr,
        d=d,
        d_mean=d_mean,
        zone=zone_of_d(d),
        zone_minutes=zone_minutes,
        drift_pp=_opt(st.drift),
        balance_speed_slope=st.slope,
        cadence_mean=_opt(st.cadence_mean),
        cadence_median=_opt(st.cadence_median),
        cadence_at_reference=cad_ref,
        reference_speed_mps=_opt(reference_speed) if reference_speed is not None else None,
        gct_mean_ms=_opt(st.gct_mean),
        gct_median_ms=_opt(st.gct_median),
        vertical_oscillation_mm=_opt(st.vo_mean),
        vertical_ratio_pct=_opt(st.vr_mean),
        step_length_mm=_opt(st.step_mean),
        speed_median_mps=speed_median,
        grade_checked=cs.grade_checked,
        laps=lap_summaries,
        flags=flags,
    )


@dataclass
class _RunStats:
    """The array statistics of one run, from `_statistics_numpy` or the compiled summary_kernels.run_statistics.

    NaN where a statistic has no samples (drift: also when the run is too short for thirds).
    """

    has_balance: bool
    n_balance: int  # clean samples with a balance value
    n_cadence: int  # clean samples with a cadence value
    balance_minutes: float
    running_minutes: float
    clean_minutes: float
    speed_median: float
    balance_quartiles: tuple[float, float, float]
    balance_mean: float
    zone_minutes: FloatArray  # minutes per ZONE_KEYS, unrounded
    drift: float
    slope: float | None
    cadence_mean: float
    cadence_median: float
    gct_mean: float
    gct_median: float
    vo_mean: float
    vr_mean: float
    step_mean: float
    laps: FloatArray | None  # rows: balance, cadence, GCT, speed medians, clean seconds


def _balance_columns(table: RunTable, settings: CleanSettings) -> FloatArray:
    bal = table.floats(C.GCT_BALANCE)
    lo, hi = settings.balance_range_pct
    return np.where((bal > lo) & (bal < hi), bal, np.nan)


def _statistics_numpy(
    table: RunTable,
    cs: CleanSamples,
    settings: CleanSettings,
    laps: list[dict[str, Any]],
    lap_starts: list[int | None],
    ts_ns: npt.NDArray[np.int64] | None,
) -> _RunStats:
    """The reference implementation of every array statistic (summary_kernels must equal it)."""
    n = table.n
    w = cs.weight_s
    clean = cs.clean
    col = table.floats
    bal_all = _balance_columns(table, settings)
    spd_all = col(C.SPEED)
    cad_all = col(C.CADENCE)
    gct_all = col(C.GCT)
    wc = w[clean]
    bal = bal_all[clean]
    cad = cad_all[clean]
    bal_ok = np.isfinite(bal)
    has_balance = bool(np.isfinite(bal_all).any())
    # each column sorted once; every median below filters that order (see Ranked)
    positive = np.isfinite(w) & (w > 0)
    use = clean & positive
    ranked_bal = Ranked(bal_all, C.RESOLUTION.get(C.GCT_BALANCE))
    ranked_spd = Ranked(spd_all, C.RESOLUTION.get(C.SPEED))
    ranked_cad = Ranked(cad_all, C.RESOLUTION.get(C.CADENCE))
    ranked_gct = Ranked(gct_all, C.RESOLUTION.get(C.GCT))

    quartiles = (math.nan, math.nan, math.nan)
    b_mean = drift = math.nan
    slope = None
    zone_min = np.zeros(len(ZONE_KEYS))
    if has_balance and bal_ok.any():
        q25, q50, q75 = ranked_bal.quantiles(w, use, (0.25, 0.5, 0.75))
        quartiles = (float(q25), float(q50), float(q75))
        b_mean = float(np.average(bal[bal_ok], weights=wc[bal_ok]))
        keys = zone_keys(bal[bal_ok] - 50.0)
        zone_min = np.bincount(keys, weights=wc[bal_ok], minlength=len(ZONE_KEYS)) / 60.0
        in_time = np.flatnonzero(clean & np.isfinite(bal_all))
        third = len(in_time) // 3
        if third >= 30:
            first, last = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
            first[in_time[:third]] = True
            last[in_time[-third:]] = True
            drift = ranked_bal.median(w, last & positive) - ranked_bal.median(w, first & positive)
        slope = _balance_speed_slope(
            bal_all, spd_all, w, within=clean, ranks=(ranked_bal, ranked_spd)
        )

    def wmean(values: FloatArray) -> float:
        v = values[clean]
        ok = np.isfinite(v)
        return float(np.average(v[ok], weights=wc[ok])) if ok.any() else math.nan

    lap_values = None
    if ts_ns is not None:
        lap_of = _lap_index(ts_ns, laps, lap_starts)
        lap_clean = cs.running & ~cs.settling & cs.level
        group = np.where(lap_clean, lap_of, -1)
        n_laps = len(laps)
        lap_values = np.array(
            [
                ranked_bal.grouped_median(w, group, n_laps, positive),
                ranked_cad.grouped_median(w, group, n_laps, positive),
                ranked_gct.grouped_median(w, group, n_laps, positive),
                ranked_spd.grouped_median(w, group, n_laps, positive),
                np.bincount(np.where(group >= 0, group, n_laps), weights=w, minlength=n_laps + 1)[
                    :n_laps
                ],
            ]
        )
    return _RunStats(
        has_balance=has_balance,
        n_balance=int(bal_ok.sum()),
        n_cadence=int(np.isfinite(cad).sum()),
        balance_minutes=float(wc[bal_ok].sum() / 60.0),
        running_minutes=float(w[cs.running].sum() / 60.0),
        clean_minutes=float(wc.sum() / 60.0),
        speed_median=ranked_spd.median(w, use),
        balance_quartiles=quartiles,
        balance_mean=b_mean,
        zone_minutes=zone_min,
        drift=float(drift),
        slope=slope,
        cadence_mean=wmean(cad_all),
        cadence_median=ranked_cad.median(w, use),
        gct_mean=wmean(gct_all),
        gct_median=ranked_gct.median(w, use),
        vo_mean=wmean(col(C.VERTICAL_OSCILLATION)),
        vr_mean=wmean(col(C.VERTICAL_RATIO)),
        step_mean=wmean(col(C.STEP_LENGTH)),
        laps=lap_values,
    )


_NO_NS = np.zeros(0, dtype=np.int64)


_ORDER_UNITS = np.array([C.RESOLUTION[c] for c in (C.GCT_BALANCE, C.SPEED, C.CADENCE, C.GCT)])


def _value_orders(columns: tuple[FloatArray, ...]) -> list[npt.NDArray[np.int64]]:
    """`_value_order` of balance, speed, cadence and GCT (one compiled counting sort call)."""
    f = kernel_input
    *orders, ok = summary_kernels.value_orders(
        *(f(x) for x in columns), _ORDER_UNITS, _counting_range(len(columns[0]))
    )
    return [
        f(order if done else _value_order(x), np.int64)
        for order, done, x in zip(orders, ok, columns, strict=True)
    ]


def _statistics_compiled(
    table: RunTable,
    cs: CleanSamples,
    settings: CleanSettings,
    laps: list[dict[str, Any]],
    lap_starts: list[int | None],
    ts_ns: npt.NDArray[np.int64] | None,
) -> _RunStats:
    """_statistics_numpy in one compiled call (metrics.summary_kernels)."""
    col = table.floats
    has_laps = ts_ns is not None
    if has_laps:
        starts, ends = _lap_bounds(laps, lap_starts)
        lap_order = np.argsort(starts, kind="stable")
        lap_clean = cs.running & ~cs.settling & cs.level
    else:
        starts = ends = lap_order = ts_ns = _NO_NS
        lap_clean = cs.clean  # unused without laps
    f = kernel_input  # one compiled version whatever the arrays' flags (see kernel_input)
    bal, spd, cad, gct = _balance_columns(table, settings), col(C.SPEED), col(C.CADENCE), col(C.GCT)
    orders = _value_orders((bal, spd, cad, gct))
    sc, zone_min, bin_spd, bin_bal, bin_secs, lap_values = summary_kernels.run_statistics(
        f(cs.weight_s), f(cs.clean, np.bool_), f(cs.running, np.bool_), f(lap_clean, np.bool_),
        f(bal), f(spd), f(cad), f(gct),
        f(col(C.VERTICAL_OSCILLATION)), f(col(C.VERTICAL_RATIO)), f(col(C.STEP_LENGTH)),
        *orders, _BIN_MPS, f(ts_ns, np.int64), f(starts, np.int64), f(ends, np.int64),
        f(lap_order, np.int64),
    )  # fmt: skip
    K = summary_kernels
    slope = None
    if sc[K.HAS_BALANCE] and sc[K.N_BALANCE]:
        if not sc[K.BINS_OK]:  # absurd speeds: the numpy path bins them
            slope = _balance_speed_slope(bal, spd, cs.weight_s, within=cs.clean)
        elif sc[K.BINS_USED] >= 2:
            slope = _slope_of_bins(bin_spd, bin_bal, bin_secs)
    return _RunStats(
        has_balance=bool(sc[K.HAS_BALANCE]),
        n_balance=int(sc[K.N_BALANCE]),
        n_cadence=int(sc[K.N_CADENCE]),
        balance_minutes=float(sc[K.BALANCE_MIN]),
        running_minutes=float(sc[K.RUNNING_MIN]),
        clean_minutes=float(sc[K.CLEAN_MIN]),
        speed_median=float(sc[K.SPEED_MED]),
        balance_quartiles=(float(sc[K.BAL_Q25]), float(sc[K.BAL_Q50]), float(sc[K.BAL_Q75])),
        balance_mean=float(sc[K.BAL_MEAN]),
        zone_minutes=zone_min,
        drift=float(sc[K.DRIFT]),
        slope=slope,
        cadence_mean=float(sc[K.CAD_MEAN]),
        cadence_median=float(sc[K.CAD_MED]),
        gct_mean=float(sc[K.GCT_MEAN]),
        gct_median=float(sc[K.GCT_MED]),
        vo_mean=float(sc[K.VO_MEAN]),
        vr_mean=float(sc[K.VR_MEAN]),
        step_mean=float(sc[K.STEP_MEAN]),
        laps=lap_values if has_laps else None,
    )


def summarise_fit_run(run: Any, *, sensor: str | None = None, **kwargs: Any) -> RunSummary:
    """summarise_run for a `metrics.fit.Run` (records, laps, sub_sport and start from the run)."""
    run_id = kwargs.pop("run_id", None)
    if run_id is None:
        start = run.start_time  # the reader's datetime: as pandas would print it, without pandas
        stamp = start.isoformat() if type(start) is datetime else pd.Timestamp(start).isoformat()
        run_id = f"{stamp}#{run.index}"
    return summarise_run(
        run.columns,
        laps=run.laps,
        sub_sport=run.sub_sport,
        start_time=run.start_time,
        sensor=sensor,
        run_id=run_id,
        **kwargs,
    )


def summaries_frame(summaries: Iterable[RunSummary]) -> pd.DataFrame:
    """One row per run (flat columns; zone_minutes/laps/flags kept as objects), by start time.

    This is the input shape of baseline.py and trend.assess_trend.
    """
    rows = []
    for s in summaries:
        row = {f.name: getattr(s, f.name) for f in dataclasses.fields(s)}
        rows.append(row)
    df = pd.DataFrame(rows)
    if len(df) and "start_time" in df.columns:
        df = df.sort_values("start_time", kind="stable").reset_index(drop=True)
    return df
