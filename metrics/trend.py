"""Is an athlete's GCT balance (or pace-adjusted cadence) really changing, or is it noise?

Method (anchors.md §3.7, §3.8.4): the comparable runs of one stratum, in time order, are compared
with the athlete's own rolling baseline (median and robust typical error of earlier in-control
runs, excluding the last few so that a slow onset is not absorbed). Each run's standardised
deviation is clipped (Huber style) and fed to a two-sided CUSUM. A shift is confirmed only when

1. the CUSUM passes its decision limit h (statistical evidence accumulated over several runs),
2. at least `persist_m` of the last `persist_n` runs lie beyond `persist_z` TE on the same side
   (persistence and direction consistency), and
3. the median of the runs since the change point is at least `min_shift` from the baseline
   (practical relevance: 0.5 pp for balance, §3.7).

Because a run contributes at most `z_clip - k` to the CUSUM and h is larger, a single outlier run,
however extreme, can never raise an alarm on its own. After a confirmed shift the baseline is
frozen; when the recent median comes back within `min_shift` of it the state is "returning", and
after `stable_runs` runs in a row within the limit it is "stable" again with a fresh CUSUM.
All thresholds are named settings in `TrendSettings`; the simulation in metrics/simulate.py and
benchmarks/simulate_seasons.py shows the false-alarm and detection rates of the defaults.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from evenstride.metrics.baseline import (
    _TRUNC_CORR,
    DEFAULT_PACE_GROUPS,
    MDC95_FACTOR,
    comparable_runs,
    typical_error,
)
from evenstride.metrics.summary import (
    NO_BALANCE_FLAG,
    RunSummary,
    fit_cadence_speed,
    summaries_frame,
    theil_sen,
)
from evenstride.metrics.zones import cadence_zone, zone_of_d

INSUFFICIENT = "insufficient_data"
STABLE = "stable"
RETURNING = "returning"
SHIFTED_LEFT = "shifted_left"
SHIFTED_RIGHT = "shifted_right"
DROPPED = "dropped"
ROSE = "rose"

_STATE_INSUFFICIENT, _STATE_STABLE, _STATE_UP, _STATE_DOWN, _STATE_RETURNING = range(5)


@dataclass(frozen=True)
class TrendSettings:
    """Detector settings. Defaults follow anchors.md §3.7-3.8 and were checked by simulation."""

    min_runs: int = 10
    """Comparable runs needed before any verdict (§3.8.3: TE from >= 8-10 runs)."""
    baseline_max_runs: int = 30
    """Rolling baseline length (~10 weeks of easy runs): long enough for a precise median/TE,
    short enough to follow slow seasonal changes."""
    guard_runs: int = 6
    """The most recent runs are kept out of the baseline (~2 weeks), so a starting shift is
    compared with the old level instead of being absorbed into it."""
    min_clean_minutes: float = 10.0
    """Clean minutes (of balance data, for balance) a run needs to count (§3.8.1)."""
    pace_groups: tuple[tuple[str, ...], ...] = DEFAULT_PACE_GROUPS
    """Pace bands compared with each other; other bands are separate strata."""
    te_method: str = "successive"
    """How TE is estimated (baseline.typical_error): successive differences, robust SD."""
    cusum_k: float = 1.0
    """CUSUM reference value in TE units. §3.8.4 suggests 0.5 (optimal for 1-TE shifts), but
    with estimated baselines that gives ~20 % false alarms per 26-week season in simulation;
    k = 1 targets 2-TE shifts (a 1.5 pp step is >= 3 TE for TE <= 0.5 pp) and shifts below
    ~1 TE are under the athlete's MDC anyway."""
    cusum_h: float = 5.0
    """CUSUM decision limit in TE units (§3.8.4: h = 4-5). With k = 1 the in-control run length
    is > 10,000 runs for known parameters; estimation error eats most of that margin."""
    z_clip: float = 3.0
    """A run's standardised deviation is clipped to +-z_clip, so one outlier run adds at most
    z_clip - k = 2.5 < h to the CUSUM: no alarm from a single run."""
    persist_n: int = 5
    persist_m: int = 3
    """Persistence: >= persist_m of the last persist_n runs beyond persist_z TE, same side (§3.7:
    3 of the last 5 comparable runs)."""
    persist_z: float = 1.0
    current_runs: int = 5
    """The current estimate is the median of the last runs (at most this many)."""
    return_runs: int = 3
    """'Back within limits' is judged on the median of this many latest runs."""
    stable_runs: int = 8
    """Runs in a row within limits before 'returning' becomes 'stable' (~2-3 weeks)."""
    min_shift_pp: float = 0.5
    """Smallest balance shift worth reporting (§3.7: max(MDC95, 0.5 pp))."""
    te_floor_pp: float = 0.1
    """TE never below this (lower end of lab run-to-run noise, §3.8.6)."""
    te_prior_pp: float = 0.3
    """Prior guess of TE (middle of the 0.1-0.5 pp range in §3.8.6) that small baselines are
    shrunk toward: TE^2 = (w * prior^2 + m * estimate^2) / (w + m), m = number of successive
    differences. Without it a quiet first fortnight makes every later run look like a shift."""
    te_uncertainty: float = 1.0
    """TE is estimated from few runs and alarms happen exactly where it was underestimated, so
    the detector divides by TE x (1 + te_uncertainty / sqrt(dof)): about one standard error
    above the estimate (the relative SE of an SD from dof differences is ~1/sqrt(dof))."""
    te_prior_runs: float = 4.0
    """Weight w of the prior, in runs: it matters for a 10-run baseline, hardly for 30."""
    min_shift_spm: float = 2.0
    """Smallest pace-adjusted cadence change worth reporting ("a few spm", §3.7)."""
    te_floor_spm: float = 0.5
    """Cadence TE floor (display resolution is 1 spm)."""
    te_prior_spm: float = 1.5
    """Prior guess of the run-to-run TE of pace-adjusted cadence."""
    speed_adjust: bool = True
    """Compare balance at the athlete's reference speed when d depends on speed (§3.8.5)."""
    speed_slope_min: float = 0.25
    """|d-vs-speed slope| (pp per m/s) below which no speed adjustment is made."""


DEFAULT_TREND = TrendSettings()


def _median(a: npt.NDArray[np.float64]) -> float:
    """np.median without its overhead (the detector calls it on <= 30 values per run)."""
    srt = np.sort(a)
    h = len(srt) // 2
    return float(srt[h]) if len(srt) % 2 else 0.5 * float(srt[h - 1] + srt[h])


def _typical_error(xb: npt.NDArray[np.float64], method: str) -> float:
    """baseline.typical_error, fast path for the default method (same estimator)."""
    if method != "successive" or len(xb) < 3:
        return typical_error(xb, method=method)
    dif = np.diff(xb)
    s0 = 1.4826 * _median(np.abs(dif))
    if s0 <= 0:
        return typical_error(xb, method=method)
    kept = dif[np.abs(dif) <= 3.0 * s0]
    return math.sqrt(float(np.dot(kept, kept)) / len(kept)) * _TRUNC_CORR / math.sqrt(2.0)


@dataclass
class DetectorTrace:
    """Run-by-run output of the detector (arrays align with the input series)."""

    state: npt.NDArray[np.int8]
    z: npt.NDArray[np.float64]
    baseline: npt.NDArray[np.float64]
    te: npt.NDArray[np.float64]
    since: npt.NDArray[np.int64]  # index of the first run of the current episode, -1 if none
    n_baseline: npt.NDArray[np.int64]

    def first_alarm(self) -> int | None:
        """Index of the first run at which a shift (either direction) was confirmed."""
        hits = np.flatnonzero((self.state == _STATE_UP) | (self.state == _STATE_DOWN))
        return int(hits[0]) if len(hits) else None


def detect_shifts(
    values: npt.ArrayLike,
    *,
    min_shift: float,
    te_floor: float,
    te_prior: float | None = None,
    settings: TrendSettings = DEFAULT_TREND,
) -> DetectorTrace:
    """Run the detector over one time-ordered series of comparable per-run values.

    States per run: 0 insufficient, 1 stable, 2 shifted up (d or cadence increased), 3 shifted
    down, 4 returning. A loop over runs (not samples): a season is ~100 values.
    """
    s = settings
    x = np.asarray(values, dtype=float)
    n = len(x)
    state = np.zeros(n, dtype=np.int8)
    zs = np.full(n, np.nan)
    base = np.full(n, np.nan)
    tes = np.full(n, np.nan)
    since_arr = np.full(n, -1, dtype=np.int64)
    nb = np.zeros(n, dtype=np.int64)
    eligible = np.ones(n, dtype=bool)

    mode = _STATE_STABLE
    s_pos = s_neg = 0.0
    start_pos = start_neg = s.min_runs
    since = -1
    direction = 0
    mu = sig = math.nan
    ret_count = 0
    for i in range(n):
        if i < s.min_runs:
            continue
        if mode == _STATE_STABLE:
            cand = np.flatnonzero(eligible[:i])
            n_before_guard = int(np.searchsorted(cand, i - s.guard_runs))
            use = cand[: max(n_before_guard, s.min_runs)][-s.baseline_max_runs :]
            xb = x[use]
            mu = _median(xb)
            te = _typical_error(xb, s.te_method)
            if te_prior is not None:
                m = len(xb) - 1 if np.isfinite(te) else 0
                te2 = 0.0 if m == 0 else m * te * te
                te = math.sqrt((s.te_prior_runs * te_prior**2 + te2) / (s.te_prior_runs + m))
            sig = max(te if np.isfinite(te) else te_floor, te_floor)
            nb[i] = len(use)
            dof = len(use) - 1 + (s.te_prior_runs if te_prior is not None else 0.0)
            sig_eff = sig * math.sqrt(1.0 + (math.pi / 2.0) / len(use))
            sig_eff *= 1.0 + s.te_uncertainty / math.sqrt(max(dof, 1.0))
            z = float(np.clip((x[i] - mu) / sig_eff, -s.z_clip, s.z_clip))
            zs[i] = z
            s_pos = max(0.0, s_pos + z - s.cusum_k)
            s_neg = max(0.0, s_neg - z - s.cusum_k)
            if s_pos == 0.0:
                start_pos = i + 1
            if s_neg == 0.0:
                start_neg = i + 1
            base[i], tes[i] = mu, sig
            lo = max(s.min_runs, i - s.persist_n + 1)
            recent_z = zs[lo : i + 1]
            for sign, s_val, start in ((1, s_pos, start_pos), (-1, s_neg, start_neg)):
                if s_val <= s.cusum_h:
                    continue
                if int(np.sum(sign * recent_z >= s.persist_z)) < s.persist_m:
                    continue
                first = min(start, i)
                window = x[max(first, i - s.current_runs + 1) : i + 1]
                if sign * (float(np.median(window)) - mu) < min_shift:
                    continue
                mode = _STATE_UP if sign > 0 else _STATE_DOWN
                direction, since, ret_count = sign, first, 0
                eligible[first : i + 1] = False
                break
            state[i] = mode
        else:
            eligible[i] = False
            base[i], tes[i] = mu, sig
            zs[i] = (x[i] - mu) / sig
            est = float(np.median(x[max(since, i - s.return_runs + 1) : i + 1]))
            within = direction * (est - mu) < min_shift
            if mode == _STATE_RETURNING:
                if not within:
                    mode = _STATE_UP if direction > 0 else _STATE_DOWN
                else:
                    ret_count += 1
                    if ret_count >= s.stable_runs:
                        mode = _STATE_STABLE
                        s_pos = s_neg = 0.0
                        start_pos = start_neg = i + 1
                        eligible[i] = False  # still part of the episode
                        direction, since = 0, -1
            elif within:
                mode, ret_count = _STATE_RETURNING, 1
            state[i] = mode
        since_arr[i] = since
    return DetectorTrace(state, zs, base, tes, since_arr, nb)


@dataclass
class TrendAssessment:
    """The detector's verdict for one metric of one athlete (what the planner reads)."""

    metric: str  # "gct_balance" (values are d = %L - 50, pp) or "cadence" (spm at ref. speed)
    unit: str
    state: str  # insufficient_data | stable | shifted_left | shifted_right | returning
    #             (cadence: insufficient_data | stable | dropped | rose | returning)
    magnitude: float | None  # current estimate - baseline (signed; balance > 0 = toward left)
    since: date | None  # date of the first run of the current shift (or the returning episode)
    supporting_runs: list[dict[str, Any]]  # run_id, date, value of the runs behind the verdict
    baseline_level: float | None
    te: float | None
    mdc95: float | None
    current: float | None  # robust current estimate (median of the latest runs)
    current_zone: str | None  # Garmin zone of the current estimate
    n_runs: int  # comparable runs used
    clean_minutes: float
    sensor: str | None
    surface: str | None
    pace_group: str | None
    shift_direction: str | None = None  # left/right (balance), dropped/rose (cadence), episode
    speed_slope: float | None = None  # d-vs-speed slope (pp per m/s) used for adjustment, if any
    episodes: list[dict[str, Any]] = field(default_factory=list)
    """Every confirmed shift of the series: since (first run), confirmed (alarm run date),
    direction, value (median of the episode's runs) and zone: the detector's band history."""
    has_balance_sensor: bool = False  # any run of the athlete carried GCT balance
    notes: list[str] = field(default_factory=list)

    @property
    def shifted(self) -> bool:
        return self.state in (SHIFTED_LEFT, SHIFTED_RIGHT, DROPPED, ROSE)

    def to_dict(self) -> dict[str, Any]:
        from evenstride.metrics.summary import _json_safe

        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        return _json_safe(out)


@dataclass
class Assessment:
    """Balance and cadence verdicts together: the planner's input from metrics/."""

    balance: TrendAssessment
    cadence: TrendAssessment

    @property
    def d(self) -> float | None:
        return self.balance.current

    @property
    def zone(self) -> str | None:
        return self.balance.current_zone

    def to_dict(self) -> dict[str, Any]:
        return {"balance": self.balance.to_dict(), "cadence": self.cadence.to_dict()}


def _as_frame(summaries: pd.DataFrame | Iterable[RunSummary]) -> pd.DataFrame:
    df = summaries if isinstance(summaries, pd.DataFrame) else summaries_frame(summaries)
    if df.empty:  # an athlete with no runs yet: the same columns, no rows -> insufficient_data
        return pd.DataFrame(columns=[f.name for f in dataclasses.fields(RunSummary)])
    return df


def _run_ids(df: pd.DataFrame) -> list[Any]:
    if "run_id" in df.columns:
        return [None if pd.isna(v) else v for v in df["run_id"].tolist()]
    return list(range(len(df)))


def _dates(df: pd.DataFrame) -> list[date | None]:
    if "start_time" not in df.columns:
        return [None] * len(df)
    ts = pd.to_datetime(df["start_time"], utc=True)
    return [None if pd.isna(t) else t.date() for t in ts]


def assess_trend(
    summaries: pd.DataFrame | Iterable[RunSummary],
    *,
    metric: str = "balance",
    settings: TrendSettings = DEFAULT_TREND,
    sensor: str | None | bool = None,
    surface: str | None = None,
    pace_group: str | None = None,
) -> TrendAssessment:
    """Assess the GCT-balance trend (or, with metric="cadence", pace-adjusted cadence).

    `summaries`: one row per run (summaries_frame of RunSummary objects, or any DataFrame with
    start_time, run_id, d [or balance_median], balance_minutes, sensor, surface, pace_band,
    speed_median_mps; for cadence: cadence_at_reference or cadence_median + speed_median_mps,
    clean_minutes). The stratum (sensor of the latest run, most common surface and pace group)
    is chosen automatically unless given.
    """
    prep = prepare_series(
        summaries,
        metric=metric,
        settings=settings,
        sensor=sensor,
        surface=surface,
        pace_group=pace_group,
    )
    trace = prep.detect(settings)
    return _assessment(prep, trace, settings)


@dataclass
class PreparedSeries:
    """The comparable runs of one metric, in time order, with the values the detector sees."""

    metric: str
    runs: pd.DataFrame
    values: npt.NDArray[np.float64]
    stratum: dict[str, Any]
    minutes_col: str
    min_shift: float
    te_floor: float
    te_prior: float
    speed_slope: float | None
    notes: list[str]
    has_balance_sensor: bool = False

    def detect(self, settings: TrendSettings = DEFAULT_TREND) -> DetectorTrace:
        """detect_shifts over these values, with this series' shift size and noise floor."""
        return detect_shifts(
            self.values,
            min_shift=self.min_shift,
            te_floor=self.te_floor,
            te_prior=self.te_prior,
            settings=settings,
        )


def prepare_series(
    summaries: pd.DataFrame | Iterable[RunSummary],
    *,
    metric: str = "balance",
    settings: TrendSettings = DEFAULT_TREND,
    sensor: str | None | bool = None,
    surface: str | None = None,
    pace_group: str | None = None,
) -> PreparedSeries:
    """Select the comparable runs and compute the per-run values (speed/pace-adjusted)."""
    if metric not in ("balance", "cadence"):
        raise ValueError("metric must be 'balance' or 'cadence'")
    s = settings
    df = _as_frame(summaries).copy()
    notes: list[str] = []
    is_bal = metric == "balance"
    if is_bal:
        if "d" not in df.columns and "balance_median" in df.columns:
            df["d"] = pd.to_numeric(df["balance_median"], errors="coerce") - 50.0
        value_col, minutes_col = "d", "balance_minutes"
        if minutes_col not in df.columns:
            minutes_col = "clean_minutes"
        min_shift, te_floor, te_prior = s.min_shift_pp, s.te_floor_pp, s.te_prior_pp
        chosen_sensor = True if sensor is None else sensor
    else:
        value_col, minutes_col = "_cad_value", "clean_minutes"
        min_shift, te_floor, te_prior = s.min_shift_spm, s.te_floor_spm, s.te_prior_spm
        chosen_sensor = False if sensor is None else sensor
        df[value_col] = _cadence_values(df, notes)

    runs, stratum = comparable_runs(
        df,
        value_col=value_col,
        sensor=chosen_sensor,
        surface=surface,
        pace_group=pace_group,
        min_clean_minutes=s.min_clean_minutes,
        minutes_col=minutes_col,
        pace_groups=s.pace_groups,
    )
    values = pd.to_numeric(runs[value_col], errors="coerce").to_numpy(float, na_value=np.nan)
    if is_bal and len(values) == 0:
        has_any = "has_balance" in df.columns and bool(df["has_balance"].fillna(False).any())
        notes.append("not enough clean balance data" if has_any else NO_BALANCE_FLAG)

    slope_used: float | None = None
    if is_bal and s.speed_adjust and len(values) >= s.min_runs and "speed_median_mps" in runs:
        spd = pd.to_numeric(runs["speed_median_mps"], errors="coerce").to_numpy(
            float, na_value=np.nan
        )
        if np.isfinite(spd).sum() >= s.min_runs:
            q10, q90 = np.nanquantile(spd, [0.1, 0.9])
            slope, _ = theil_sen(spd, values)
            if np.isfinite(slope) and abs(slope) >= s.speed_slope_min and q90 - q10 >= 0.2:
                ref = float(np.nanmedian(spd))
                values = values - slope * (np.where(np.isfinite(spd), spd, ref) - ref)
                slope_used = float(slope)
                notes.append(
                    f"balance compared at {ref:.2f} m/s (d changes {slope:+.2f} pp per m/s)"
                )

    has_sensor = bool(
        is_bal and "has_balance" in df.columns and df["has_balance"].astype("object").eq(True).any()
    ) or (is_bal and len(values) > 0)
    return PreparedSeries(
        metric,
        runs,
        values,
        stratum,
        minutes_col,
        min_shift,
        te_floor,
        te_prior,
        slope_used,
        notes,
        has_sensor,
    )


def _cadence_values(df: pd.DataFrame, notes: list[str]) -> pd.Series:
    """Pace-adjusted cadence per run: the summaries' own value, else a fit on the summaries."""
    if "cadence_at_reference" in df.columns:
        v = pd.to_numeric(df["cadence_at_reference"], errors="coerce")
        if v.notna().sum() >= max(1, int(0.8 * v.size)):
            return v
    if {"cadence_median", "speed_median_mps"} <= set(df.columns):
        try:
            fit = fit_cadence_speed(df)
        except ValueError:
            return pd.Series(np.nan, index=df.index)
        notes.append(
            f"cadence compared at {fit.reference_speed_mps:.2f} m/s "
            f"({fit.slope_spm_per_mps:.1f} spm per m/s, {fit.method})"
        )
        cad = pd.to_numeric(df["cadence_median"], errors="coerce").to_numpy(float, na_value=np.nan)
        spd = pd.to_numeric(df["speed_median_mps"], errors="coerce").to_numpy(
            float, na_value=np.nan
        )
        return pd.Series(fit.at_reference(cad, spd), index=df.index)
    return pd.Series(np.nan, index=df.index)


def _assessment(prep: PreparedSeries, trace: DetectorTrace, s: TrendSettings) -> TrendAssessment:
    metric, runs, values, stratum = prep.metric, prep.runs, prep.values, prep.stratum
    minutes_col, slope_used, min_shift = prep.minutes_col, prep.speed_slope, prep.min_shift
    notes = list(prep.notes)
    is_bal = metric == "balance"
    n = len(values)
    ids, dates = _run_ids(runs), _dates(runs)
    minutes = float(pd.to_numeric(runs[minutes_col], errors="coerce").fillna(0).sum()) if n else 0.0

    def support(idx: Iterable[int]) -> list[dict[str, Any]]:
        return [
            {"run_id": ids[k], "date": dates[k], "value": round(float(values[k]), 3)} for k in idx
        ]

    def zone(v: float | None) -> str | None:
        if v is None:
            return None
        return zone_of_d(v) if is_bal else cadence_zone(v)

    last = n - 1
    code = int(trace.state[last]) if n else _STATE_INSUFFICIENT
    names = {
        _STATE_INSUFFICIENT: INSUFFICIENT,
        _STATE_STABLE: STABLE,
        _STATE_RETURNING: RETURNING,
        _STATE_UP: SHIFTED_LEFT if is_bal else ROSE,
        _STATE_DOWN: SHIFTED_RIGHT if is_bal else DROPPED,
    }
    current = float(np.median(values[-s.current_runs :])) if n else None
    base_level = te = mdc95 = magnitude = None
    since: date | None = None
    direction: str | None = None
    if code == _STATE_INSUFFICIENT:
        supporting = support(range(n))
        notes.append(f"{n} comparable runs; {s.min_runs} needed for a baseline")
    else:
        base_level, te = float(trace.baseline[last]), float(trace.te[last])
        mdc95 = MDC95_FACTOR * te
        first = int(trace.since[last])
        if first >= 0:
            since = dates[first]
            episode = range(first, n)
            if code in (_STATE_UP, _STATE_DOWN):
                current = float(np.median(values[max(first, n - s.current_runs) :]))
            supporting = support(episode)
            up = float(np.median(values[first:])) > base_level
            direction = ("left" if up else "right") if is_bal else ("rose" if up else "dropped")
        else:
            supporting = support(range(max(0, n - s.current_runs), n))
        magnitude = None if current is None else current - base_level
        if code == _STATE_STABLE:
            notes.append(
                f"latest runs within the athlete's noise (MDC95 {mdc95:.2f}, "
                f"relevance limit {min_shift:g})"
            )
    episodes: list[dict[str, Any]] = []
    alarm = (trace.state == _STATE_UP) | (trace.state == _STATE_DOWN)
    starts = np.flatnonzero(alarm & ~np.concatenate([[False], alarm[:-1]]) & (trace.since >= 0))
    for k in starts:  # loop over episodes
        first = int(trace.since[k])
        if episodes and episodes[-1]["_first"] == first:
            continue  # returning -> shifted again within the same episode
        stop = k + 1
        while stop < n and trace.since[stop] == first:
            stop += 1
        val = float(np.median(values[first:stop]))
        episodes.append(
            {
                "_first": first,
                "since": dates[first],
                "confirmed": dates[int(k)],
                "direction": names[int(trace.state[k])],
                "value": round(val, 3),
                "zone": zone(val),
            }
        )
    for ep in episodes:
        ep.pop("_first")
    if n and is_bal and current is not None and abs(current) > 0.7:
        notes.append("current estimate is outside Garmin's green zone")
    return TrendAssessment(
        metric="gct_balance" if is_bal else "cadence",
        unit="pp" if is_bal else "spm",
        state=names[code],
        magnitude=magnitude,
        since=since,
        supporting_runs=supporting,
        baseline_level=base_level,
        te=te,
        mdc95=mdc95,
        current=current,
        current_zone=zone(current),
        n_runs=n,
        clean_minutes=minutes,
        sensor=stratum.get("sensor"),
        surface=stratum.get("surface"),
        pace_group=stratum.get("pace_group"),
        shift_direction=direction,
        speed_slope=slope_used,
        episodes=episodes,
        has_balance_sensor=prep.has_balance_sensor,
        notes=notes,
    )


def assess_cadence_trend(
    summaries: pd.DataFrame | Iterable[RunSummary], **kwargs: Any
) -> TrendAssessment:
    """Pace-adjusted cadence trend: insufficient_data / stable / dropped / rose / returning."""
    return assess_trend(summaries, metric="cadence", **kwargs)


def assess_athlete(
    summaries: pd.DataFrame | Iterable[RunSummary], *, settings: TrendSettings = DEFAULT_TREND
) -> Assessment:
    """Both verdicts for the planner (balance on the latest sensor, cadence on any sensor)."""
    df = _as_frame(summaries)
    return Assessment(
        balance=assess_trend(df, settings=settings),
        cadence=assess_trend(df, metric="cadence", settings=settings),
    )
