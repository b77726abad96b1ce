"""Simulated athlete-seasons: the evidence that the trend detector's defaults work.

A season is 26 weeks x 4 runs of per-run summaries with a realistic pace mix, a few treadmill
runs, short runs, occasional outlier runs (3 % of runs displaced by 2-4 pp) and per-athlete noise
drawn from the range of within-athlete variability in anchors.md §3.2/§3.8.6 (|d| run-to-run SD
0.1-0.5 pp). Shifted seasons add a step of +-1.5 pp (balance) at a random week. The same module can
also make per-second record DataFrames so summarise_run is exercised end to end.
Used by tests/test_simulation.py and benchmarks/simulate_seasons.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from evenstride.metrics import columns as C
from evenstride.metrics.summary import DEFAULT_PACE_BANDS
from evenstride.metrics.trend import (
    _STATE_DOWN,
    _STATE_UP,
    DEFAULT_TREND,
    TrendSettings,
    prepare_series,
)

SEASON_START = pd.Timestamp("2026-01-05 07:00", tz="UTC")  # a Monday
_WEEKDAYS = (1, 3, 5, 6)  # Tue, Thu, Sat, Sun
_BAND_RATIOS = {
    "easy": (0.88, 1.05),
    "steady": (1.08, 1.15),
    "tempo": (1.18, 1.28),
    "fast": (1.32, 1.50),
}


@dataclass(frozen=True)
class SeasonSpec:
    """How simulated seasons are drawn (per athlete, then per run)."""

    weeks: int = 26
    runs_per_week: int = 4
    te_range_pp: tuple[float, float] = (0.1, 0.5)  # within-athlete run-to-run SD of d (§3.8.6)
    baseline_sd_pp: float = 1.3  # athletes' own levels: Garmin's 40 % / 80 % in 0.7 / 2.2 pp
    outlier_rate: float = 0.03
    outlier_range_pp: tuple[float, float] = (2.0, 4.0)
    pace_mix: tuple[tuple[str, float], ...] = (
        ("easy", 0.50),
        ("steady", 0.25),
        ("tempo", 0.15),
        ("fast", 0.10),
    )
    reference_speed_range: tuple[float, float] = (2.6, 3.6)  # m/s, easy pace 6:25-4:38 min/km
    speed_slope_range: tuple[float, float] = (-0.5, 0.5)  # individual d-vs-speed (pp per m/s)
    treadmill_rate: float = 0.05
    short_run_rate: float = 0.05  # runs with < 10 clean minutes (not comparable)
    shift_pp: float = 0.0
    shift_week_range: tuple[int, int] = (8, 20)  # the step starts in one of these weeks
    cadence_te_range: tuple[float, float] = (0.8, 2.0)  # spm
    cadence_slope_range: tuple[float, float] = (8.0, 16.0)  # spm per m/s (§3.5)
    cadence_shift_spm: float = 0.0


@dataclass
class Season:
    summaries: pd.DataFrame  # one row per run, the columns assess_trend reads
    shift_start: pd.Timestamp | None
    truth: dict[str, float] = field(default_factory=dict)


def simulate_season(rng: np.random.Generator, spec: SeasonSpec = SeasonSpec()) -> Season:
    """Draw one athlete and one season of per-run summaries."""
    n = spec.weeks * spec.runs_per_week
    week = np.repeat(np.arange(spec.weeks), spec.runs_per_week)
    day = np.tile(np.asarray(_WEEKDAYS[: spec.runs_per_week]), spec.weeks)
    hours = rng.uniform(0.0, 12.0, n)
    start = SEASON_START + pd.to_timedelta(week * 7 + day, unit="D") + pd.to_timedelta(hours, "h")

    names = [b for b, _ in spec.pace_mix]
    probs = np.array([p for _, p in spec.pace_mix])
    band_idx = rng.choice(len(names), size=n, p=probs / probs.sum())
    lo = np.array([_BAND_RATIOS[names[k]][0] for k in band_idx])
    hi = np.array([_BAND_RATIOS[names[k]][1] for k in band_idx])
    ref = rng.uniform(*spec.reference_speed_range)
    speed = ref * rng.uniform(lo, hi)
    edges = np.asarray(DEFAULT_PACE_BANDS.relative_edges)
    bands = np.asarray(DEFAULT_PACE_BANDS.names)[np.searchsorted(edges, speed / ref, "right")]

    te = rng.uniform(*spec.te_range_pp)
    d0 = rng.normal(0.0, spec.baseline_sd_pp)
    slope = rng.uniform(*spec.speed_slope_range)
    d = d0 + slope * (speed - ref) + rng.normal(0.0, te, n)
    outlier = rng.random(n) < spec.outlier_rate
    d += outlier * rng.choice([-1.0, 1.0], n) * rng.uniform(*spec.outlier_range_pp, n)

    c_te = rng.uniform(*spec.cadence_te_range)
    c_slope = rng.uniform(*spec.cadence_slope_range)
    c0 = rng.uniform(160.0, 178.0)
    cadence = c0 + c_slope * (speed - ref) + rng.normal(0.0, c_te, n)

    shift_start = None
    if spec.shift_pp or spec.cadence_shift_spm:
        sw = int(rng.integers(spec.shift_week_range[0], spec.shift_week_range[1] + 1))
        onset = SEASON_START + pd.Timedelta(days=7 * sw + float(rng.uniform(0, 7)))
        after = np.asarray(start >= onset)
        d = d + spec.shift_pp * after
        cadence = cadence + spec.cadence_shift_spm * after
        shift_start = start[after][0] if after.any() else None

    minutes = rng.uniform(20.0, 80.0, n)
    short = rng.random(n) < spec.short_run_rate
    minutes[short] = rng.uniform(2.0, 9.0, short.sum())
    surface = np.where(rng.random(n) < spec.treadmill_rate, "treadmill", "road")
    df = pd.DataFrame(
        {
            "run_id": [f"r{k:03d}" for k in range(n)],
            "start_time": start,
            "sensor": "HRM-Pro Plus 3344556677",
            "surface": surface,
            "pace_band": bands,
            "speed_median_mps": speed,
            "d": d,
            "balance_median": d + 50.0,
            "balance_minutes": minutes,
            "clean_minutes": minutes,
            "has_balance": True,
            "cadence_median": cadence,
            "outlier": outlier,
        }
    )
    truth = {"te": te, "d0": d0, "slope": slope, "reference_speed": ref, "cadence_te": c_te}
    return Season(df, shift_start, truth)


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n (good at rates near 0 or 1, unlike Wald)."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    den = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class SimulationReport:
    metric: str
    n_stable: int
    false_alarms: int
    n_shifted: int
    detected: int  # correct direction within the window
    pre_shift_alarms: int  # shifted seasons with an alarm before the shift
    delays_days: list[float]
    window_days: float
    shift: float
    detected_by_direction: dict[str, tuple[int, int]] = field(default_factory=dict)
    """{"up": (detected, seasons), "down": (...)}: both directions must work."""

    @property
    def false_alarm_rate(self) -> float:
        return self.false_alarms / self.n_stable if self.n_stable else math.nan

    @property
    def detection_rate(self) -> float:
        return self.detected / self.n_shifted if self.n_shifted else math.nan

    def delay_quantiles(self) -> tuple[float, float]:
        if not self.delays_days:
            return (math.nan, math.nan)
        q50, q95 = np.quantile(np.asarray(self.delays_days), [0.5, 0.95])
        return float(q50), float(q95)

    def lines(self) -> list[str]:
        fa_lo, fa_hi = wilson_interval(self.false_alarms, self.n_stable)
        de_lo, de_hi = wilson_interval(self.detected, self.n_shifted)
        q50, q95 = self.delay_quantiles()
        unit = "pp" if self.metric == "balance" else "spm"
        return [
            f"[{self.metric}] false alarms: {self.false_alarms}/{self.n_stable} stable seasons"
            f" = {100 * self.false_alarm_rate:.1f} % (95 % CI {100 * fa_lo:.1f}-{100 * fa_hi:.1f})",
            f"[{self.metric}] detected {self.shift:+g} {unit} step within"
            f" {self.window_days:g} d: {self.detected}/{self.n_shifted}"
            f" = {100 * self.detection_rate:.1f} % (95 % CI {100 * de_lo:.1f}-{100 * de_hi:.1f})",
            f"[{self.metric}] by direction: "
            + ", ".join(f"{k} {a}/{b}" for k, (a, b) in self.detected_by_direction.items()),
            f"[{self.metric}] detection delay: median {q50:.1f} d, 95th percentile {q95:.1f} d"
            f" (detected seasons); alarms before the shift in {self.pre_shift_alarms} seasons",
        ]


def _alarm_times(
    season: Season, metric: str, settings: TrendSettings
) -> tuple[pd.Series, npt.NDArray[np.int8]]:
    prep = prepare_series(season.summaries, metric=metric, settings=settings)
    trace = prep.detect(settings)
    return pd.to_datetime(prep.runs["start_time"], utc=True), trace.state


def evaluate(
    n_stable: int,
    n_shifted: int,
    *,
    seed: int = 20260105,
    metric: str = "balance",
    shift: float = 1.5,
    window_days: float = 21.0,
    spec: SeasonSpec = SeasonSpec(),
    settings: TrendSettings = DEFAULT_TREND,
) -> SimulationReport:
    """False-alarm rate over stable seasons, detection rate/delay over shifted seasons.

    Shifted seasons alternate the shift direction (+shift, -shift, ...). A false alarm is any
    confirmed shift in a stable season; a detection is a confirmed shift in the right direction
    at a run no later than `window_days` after the first shifted run.
    """
    rng = np.random.default_rng(seed)
    key = "shift_pp" if metric == "balance" else "cadence_shift_spm"
    stable_spec = _replace(spec, **{key: 0.0})
    false_alarms = 0
    for _ in range(n_stable):
        _, states = _alarm_times(simulate_season(rng, stable_spec), metric, settings)
        if np.any((states == _STATE_UP) | (states == _STATE_DOWN)):
            false_alarms += 1
    detected = pre = 0
    delays: list[float] = []
    by_dir = {"up": [0, 0], "down": [0, 0]}
    for k in range(n_shifted):
        sign = 1.0 if k % 2 == 0 else -1.0
        season = simulate_season(rng, _replace(spec, **{key: sign * shift}))
        times, states = _alarm_times(season, metric, settings)
        assert season.shift_start is not None
        after = (times >= season.shift_start).to_numpy()
        want = _STATE_UP if sign > 0 else _STATE_DOWN
        alarm = (states == _STATE_UP) | (states == _STATE_DOWN)
        if np.any(alarm & ~after):
            pre += 1
        hits = np.flatnonzero((states == want) & after)
        key_dir = "up" if sign > 0 else "down"
        by_dir[key_dir][1] += 1
        if len(hits):
            delay = (times.iloc[hits[0]] - season.shift_start).total_seconds() / 86400.0
            if delay <= window_days:
                detected += 1
                by_dir[key_dir][0] += 1
                delays.append(delay)
    return SimulationReport(
        metric,
        n_stable,
        false_alarms,
        n_shifted,
        detected,
        pre,
        delays,
        window_days,
        shift,
        {k: (v[0], v[1]) for k, v in by_dir.items()},
    )


def _replace(spec: SeasonSpec, **changes: Any) -> SeasonSpec:
    from dataclasses import replace

    return replace(spec, **changes)


# --------------------------------------------------------------------------- per-second records


def simulate_run_records(
    rng: np.random.Generator,
    *,
    duration_s: int = 3600,
    balance_pct: float | None = 50.0,
    speed_mps: float = 3.0,
    cadence_spm: float = 170.0,
    balance_speed_slope: float = 0.0,
    sample_sd_pp: float = 0.8,
    warmup_s: int = 300,
    pause: tuple[float, float] | None = (0.40, 120.0),
    walk: tuple[float, float] | None = (0.55, 60.0),
    hill: tuple[float, float] | None = (0.70, 180.0),
    hill_grade_pct: float = 6.0,
    hill_balance_bias_pp: float = 2.0,
    start: pd.Timestamp = SEASON_START,
) -> pd.DataFrame:
    """One run at 1 Hz with the usual nuisances, as the FIT reader would deliver it.

    The warm-up is slower, `pause` = (fraction of the run, seconds missing from the timestamps),
    `walk` = (fraction, seconds at 1.4 m/s / 110 spm with a biased balance), `hill` = (fraction,
    seconds at `hill_grade_pct` with balance biased by `hill_balance_bias_pp`). Everything not
    clean carries a bias so that tests can see whether the cleaning removed it.
    """
    t = np.arange(duration_s, dtype=float)
    speed = speed_mps * (1.0 + 0.03 * np.sin(t / 97.0)) + rng.normal(0.0, 0.05, duration_s)
    cadence = cadence_spm + 8.0 * (speed - speed_mps) + rng.normal(0.0, 1.5, duration_s)
    bias = np.zeros(duration_s)
    warm = t < warmup_s
    speed[warm] *= 0.85
    bias[warm] += 1.0
    grade = np.zeros(duration_s)
    if walk is not None:
        w0 = int(walk[0] * duration_s)
        sl = slice(w0, w0 + int(walk[1]))
        speed[sl], cadence[sl] = 1.4, 110.0
        bias[sl] += 3.0
    if hill is not None:
        h0 = int(hill[0] * duration_s)
        sl = slice(h0, h0 + int(hill[1]))
        grade[sl] = hill_grade_pct
        bias[sl] += hill_balance_bias_pp
    keep = np.ones(duration_s, dtype=bool)
    if pause is not None:
        p0 = int(pause[0] * duration_s)
        keep[p0 : p0 + int(pause[1])] = False
        speed[~keep] = 0.0
        after = slice(p0 + int(pause[1]), p0 + int(pause[1]) + 5)
        bias[after] += 5.0  # first steps after a stop
    speed = np.clip(speed, 0.0, None)
    distance = np.cumsum(speed)
    altitude = 100.0 + np.cumsum(speed * grade / 100.0) + rng.normal(0.0, 0.1, duration_s)
    if balance_pct is None:
        balance = np.full(duration_s, np.nan)
    else:
        balance = (
            balance_pct
            + balance_speed_slope * (speed - speed_mps)
            + bias
            + rng.normal(0.0, sample_sd_pp, duration_s)
        )
        balance = np.round(balance, 2)
    gct = 250.0 - 30.0 * (speed - speed_mps) + rng.normal(0.0, 6.0, duration_s)
    df = pd.DataFrame(
        {
            C.TIMESTAMP: start + pd.to_timedelta(t, unit="s"),
            C.DISTANCE: distance,
            C.SPEED: speed,
            C.HEART_RATE: 150.0,
            C.ALTITUDE: altitude,
            C.POWER: np.nan,
            C.CADENCE: np.round(cadence),
            C.GCT: gct,
            C.GCT_BALANCE: balance,
            C.VERTICAL_OSCILLATION: 85.0 + rng.normal(0.0, 3.0, duration_s),
            C.VERTICAL_RATIO: 7.5 + rng.normal(0.0, 0.3, duration_s),
            C.STEP_LENGTH: speed / np.maximum(cadence, 1.0) * 60_000.0,
        }
    )
    return df[keep].reset_index(drop=True)
