"""Which samples of a run are "clean": steady running on level ground after the warm-up.

GCT balance is only comparable between runs when it is measured in the same conditions
(anchors.md §3.4 and §3.8.1): walking, standing, the seconds after a pause, the warm-up and hills
all move it for reasons that are not the athlete's asymmetry. Every gate is a named setting in
`CleanSettings`. The numpy code below is the reference (and the path without numba); when numba
is there, `clean_samples` and `grade_from_altitude` run the same steps compiled
(metrics.clean_kernels), one call per run with bit-identical results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from evenstride.metrics import clean_kernels as K
from evenstride.metrics import columns as C
from evenstride.metrics.run_table import RunColumns, RunTable, kernel_input

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class CleanSettings:
    """Gates that define a clean sample. Defaults follow anchors.md §3.8.1."""

    min_cadence_spm: float = 140.0
    """Running, not walking: walking is < ~130 spm, the slowest jogging ~150 spm (§3.5)."""
    min_speed_mps: float = 1.8
    """6.5 km/h (9:15 min/km): below this a runner is walking or shuffling at a light."""
    max_speed_mps: float = 8.0
    """Faster than a sprinter's 100 m average: a GPS spike, not running."""
    warmup_s: float = 300.0
    """Running time (not wall-clock time) discarded at the start: first 5-10 min (§3.8.1)."""
    max_gap_s: float = 5.0
    """A gap between timestamps longer than this is a pause (auto-pause, stop at a light)."""
    resume_settle_s: float = 10.0
    """Seconds discarded after the start and after every pause: the first steps after a
    standstill are atypical."""
    max_abs_grade_pct: float = 2.0
    """|grade| above this is a hill; balance drifts on hills (Garmin, §3.4; §3.8.1 says 2-3 %)."""
    grade_window_m: float = 60.0
    """Grade = altitude change over this distance window (centred); barometric altitude noise
    (~0.2-0.5 m) over 60 m keeps the grade error well under 1 %."""
    altitude_smooth_samples: int = 9
    """Centred moving mean over this many samples before the grade is taken."""
    balance_range_pct: tuple[float, float] = (30.0, 70.0)
    """Plausible GCT-balance values (%L). Values beyond +-20 pp are sensor glitches, not gait
    (red zone starts at +-2.2 pp; an LSI of 85 % is only d = 4 pp, §3.1)."""
    min_clean_minutes: float = 10.0
    """A run needs this much clean balance data to count as a comparable run (§3.8.1)."""


DEFAULT_CLEAN = CleanSettings()


@dataclass
class CleanSamples:
    """Per-sample masks and helpers for one run; arrays align with the records' rows."""

    t_s: FloatArray  # seconds since the first record
    weight_s: FloatArray  # seconds each sample stands for (gap-clipped interval before it)
    running: BoolArray  # cadence/speed gates passed (and Strava `moving` when given)
    settling: BoolArray  # within resume_settle_s after a pause
    warmup: BoolArray  # within the first warmup_s of running time
    grade_pct: FloatArray  # NaN where unknown (no altitude, treadmill)
    level: BoolArray  # |grade| within the limit, or grade unknown
    clean: BoolArray  # running & ~settling & ~warmup & level
    flags: list[str] = field(default_factory=list)

    @property
    def grade_checked(self) -> bool:
        return bool(np.isfinite(self.grade_pct).any())


def seconds_since_start(records: pd.DataFrame | RunColumns | RunTable) -> FloatArray:
    """Seconds since the first record; 1 Hz is assumed when there is no timestamp column."""
    table = records if isinstance(records, RunTable) else RunTable(records)
    n = table.n
    if not table.has(C.TIMESTAMP) or n == 0:
        return np.arange(n, dtype=float)
    ns = table.timestamps_ns().astype(float)
    return (ns - ns[0]) / 1e9


# Flags both paths (compiled and numpy) report, word for word.
NO_CADENCE_FLAG = "no cadence data: running gate uses speed only"
NO_SPEED_FLAG = "no speed data: running gate uses cadence only"
NO_ALTITUDE_FLAG = "no altitude: grade not checked"


def _compilable(settings: CleanSettings) -> bool:
    """True when the compiled kernels can take these settings exactly as the reference does.

    Odd values (a window pandas rejects, a zero or negative grade window) keep the numpy path,
    so they fail or behave exactly as they always did.
    """
    if K.clean_kernel is None:
        return False
    smooth = settings.altitude_smooth_samples
    if isinstance(smooth, bool) or not isinstance(smooth, int | np.integer) or smooth < 1:
        return False
    numbers = (
        settings.min_cadence_spm,
        settings.min_speed_mps,
        settings.max_speed_mps,
        settings.warmup_s,
        settings.max_gap_s,
        settings.resume_settle_s,
        settings.max_abs_grade_pct,
        settings.grade_window_m,
    )
    if not all(isinstance(v, int | float | np.integer | np.floating) for v in numbers):
        return False
    window = float(settings.grade_window_m)
    return math.isfinite(window) and window > 0


def _is_float_vector(values: object) -> bool:
    return isinstance(values, np.ndarray) and values.dtype == np.float64 and values.ndim == 1


def grade_from_altitude(
    distance_m: FloatArray, altitude_m: FloatArray, settings: CleanSettings = DEFAULT_CLEAN
) -> FloatArray:
    """Grade (%) from smoothed altitude over a centred distance window; NaN where unknown.

    Derived from distance, not time, so that a slow climb and a fast one give the same grade.
    Compiled when numba is there (same bits as `_grade_numpy`, which stays the reference).
    """
    if (
        _compilable(settings)
        and _is_float_vector(distance_m)
        and _is_float_vector(altitude_m)
        and len(distance_m) == len(altitude_m)
    ):
        return K.grade_kernel(  # type: ignore[misc]
            kernel_input(distance_m),
            kernel_input(altitude_m),
            float(settings.grade_window_m),
            int(settings.altitude_smooth_samples),
        )
    return _grade_numpy(distance_m, altitude_m, settings)


def _grade_numpy(
    distance_m: FloatArray, altitude_m: FloatArray, settings: CleanSettings = DEFAULT_CLEAN
) -> FloatArray:
    """`grade_from_altitude` in numpy and pandas: the reference for the compiled kernel."""
    n = len(distance_m)
    grade = np.full(n, np.nan)
    valid = np.isfinite(distance_m) & np.isfinite(altitude_m)
    if valid.sum() < 10:
        return grade
    d = np.maximum.accumulate(distance_m[valid])
    if d[-1] - d[0] < settings.grade_window_m:
        return grade
    a = (
        pd.Series(altitude_m[valid])
        .rolling(settings.altitude_smooth_samples, center=True, min_periods=1)
        .mean()
        .to_numpy()
    )
    # np.interp needs strictly increasing x: standing still repeats distances.
    xs = d + np.arange(len(d)) * 1e-6
    half = settings.grade_window_m / 2.0
    hi = np.minimum(d + half, xs[-1])
    lo = np.maximum(d - half, xs[0])
    span = hi - lo
    g = 100.0 * (np.interp(hi, xs, a) - np.interp(lo, xs, a)) / np.where(span > 0, span, np.nan)
    g[span < half] = np.nan
    grade[valid] = g
    return grade


def clean_samples(
    records: pd.DataFrame | RunColumns | RunTable,
    settings: CleanSettings = DEFAULT_CLEAN,
    *,
    warmup_s: float | None = None,
) -> CleanSamples:
    """Classify every record of one run (sorted by time) as clean or not, and say why not.

    `records`: a DataFrame with metrics.columns names, or the same columns as numpy arrays.
    Runs compiled when numba is there (`_clean_compiled`), else the numpy reference.
    """
    if _compilable(settings):
        return _clean_compiled(records, settings, warmup_s=warmup_s)
    return _clean_numpy(records, settings, warmup_s=warmup_s)


def _clean_compiled(
    records: pd.DataFrame | RunColumns | RunTable,
    settings: CleanSettings = DEFAULT_CLEAN,
    *,
    warmup_s: float | None = None,
) -> CleanSamples:
    """`_clean_numpy` as one compiled call (metrics.clean_kernels): same arrays, same flags."""
    s = settings
    warm_limit = s.warmup_s if warmup_s is None else float(warmup_s)
    table = records if isinstance(records, RunTable) else RunTable(records)
    n = table.n
    has_timestamp = table.has(C.TIMESTAMP) and n > 0
    ns = kernel_input(table.timestamps_ns() if has_timestamp else _NO_NS, np.int64)
    has_moving = table.has(C.MOVING)
    moving = kernel_input(table.flags(C.MOVING) if has_moving else _NO_FLAGS, np.bool_)
    grade_column = table.floats(C.GRADE)
    (
        t,
        weight,
        running,
        settling,
        warmup,
        grade,
        level,
        clean,
        has_cad,
        has_spd,
        grade_given,
        grade_known,
    ) = K.clean_kernel(  # type: ignore[misc]
        ns,
        has_timestamp,
        kernel_input(table.floats(C.CADENCE)),
        kernel_input(table.floats(C.SPEED)),
        moving,
        has_moving,
        kernel_input(grade_column),
        kernel_input(table.floats(C.DISTANCE)),
        kernel_input(table.floats(C.ALTITUDE)),
        float(s.min_cadence_spm),
        float(s.min_speed_mps),
        float(s.max_speed_mps),
        float(warm_limit),
        float(s.max_gap_s),
        float(s.resume_settle_s),
        float(s.max_abs_grade_pct),
        float(s.grade_window_m),
        int(s.altitude_smooth_samples),
    )
    flags: list[str] = []
    if not has_cad:
        flags.append(NO_CADENCE_FLAG)
    if not has_spd:
        flags.append(NO_SPEED_FLAG)
    if not grade_known:
        flags.append(NO_ALTITUDE_FLAG)
    return CleanSamples(
        t_s=t,
        weight_s=weight,
        running=running,
        settling=settling,
        warmup=warmup,
        grade_pct=grade_column if grade_given else grade,
        level=level,
        clean=clean,
        flags=flags,
    )


_NO_NS = np.zeros(0, dtype=np.int64)
_NO_FLAGS = np.zeros(0, dtype=np.bool_)


def _clean_numpy(
    records: pd.DataFrame | RunColumns | RunTable,
    settings: CleanSettings = DEFAULT_CLEAN,
    *,
    warmup_s: float | None = None,
) -> CleanSamples:
    """`clean_samples` in numpy: the reference for the compiled path, and the path without numba."""
    s = settings
    warm_limit = s.warmup_s if warmup_s is None else float(warmup_s)
    table = records if isinstance(records, RunTable) else RunTable(records)
    n = table.n
    flags: list[str] = []
    t = seconds_since_start(table)
    if n:
        dt = np.diff(t, prepend=t[0])
        steps = dt[1:]
        steps = steps[(steps > 0) & (steps <= s.max_gap_s)]
        nominal = float(np.median(steps)) if len(steps) else 1.0
        dt[0] = nominal
    else:
        dt = np.zeros(0)
        nominal = 1.0
    gap = dt > s.max_gap_s
    weight = np.where(gap, nominal, np.clip(dt, 0.0, None))

    cad = table.floats(C.CADENCE)
    spd = table.floats(C.SPEED)
    has_cad = bool(np.isfinite(cad).any())
    has_spd = bool(np.isfinite(spd).any())
    running = np.ones(n, dtype=bool)
    if has_cad:
        running &= cad >= s.min_cadence_spm
    else:
        flags.append(NO_CADENCE_FLAG)
    if has_spd:
        running &= (spd >= s.min_speed_mps) & (spd <= s.max_speed_mps)
    else:
        flags.append(NO_SPEED_FLAG)
    if not has_cad and not has_spd:
        running[:] = False
    if table.has(C.MOVING):
        running &= table.flags(C.MOVING)

    # Time since the last pause: a gap starts a new segment.
    start_t = np.where(gap, t, -np.inf)
    if n:
        start_t[0] = t[0]
    since_resume = t - np.maximum.accumulate(start_t) if n else t
    settling = gap.copy()
    settling |= since_resume < s.resume_settle_s

    running_time = np.cumsum(np.where(running, weight, 0.0))
    warmup = running_time <= warm_limit

    grade = table.floats(C.GRADE)
    if not np.isfinite(grade).any():
        grade = _grade_numpy(table.floats(C.DISTANCE), table.floats(C.ALTITUDE), s)
    if not np.isfinite(grade).any():
        flags.append(NO_ALTITUDE_FLAG)
    level = ~(np.abs(grade) > s.max_abs_grade_pct)  # NaN grade passes

    clean = running & ~settling & ~warmup & level
    return CleanSamples(
        t_s=t,
        weight_s=weight,
        running=running,
        settling=settling,
        warmup=warmup,
        grade_pct=grade,
        level=level,
        clean=clean,
        flags=flags,
    )
