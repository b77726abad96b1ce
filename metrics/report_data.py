"""What a report shows, as plain data: verdicts, coverage, per-run points, weekly aggregates.

Pure functions on pandas (no store, no I/O), so the same numbers feed the terminal summary, the
HTML report, JSON/CSV exports and a notebook::

    from evenstride.metrics.report_data import report_data, runs_frame
    rep = report_data(runs_frame(store.list_runs("default")), athlete="default")
    rep.balance.state, rep.latest, rep.coverage, rep.weekly, rep.runs

The plots need the detector's own view of the series (which runs were comparable, the rolling
baseline and its limits at each run), so `report_data` runs the same `prepare_series` +
`detect_shifts` that `assess_trend` runs, and keeps the run-by-run trace next to the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from evenstride.metrics import columns as C
from evenstride.metrics.baseline import MDC95_FACTOR
from evenstride.metrics.clean import DEFAULT_CLEAN, CleanSettings, clean_samples
from evenstride.metrics.summary import (
    NO_BALANCE_FLAG,
    CadenceSpeedFit,
    RunSummary,
    _json_safe,
    fit_cadence_speed,
    summaries_frame,
)
from evenstride.metrics.trend import (
    DEFAULT_TREND,
    TrendAssessment,
    TrendSettings,
    assess_trend,
    prepare_series,
)
from evenstride.metrics.zones import zone_of_d

STATE_NAMES = ("insufficient_data", "stable", "shifted_left", "shifted_right", "returning")
"""Detector state codes (DetectorTrace.state) as names, for the per-run balance table."""

RUN_COLUMNS = (
    "athlete", "run_id", "start_time", "date", "source", "device", "sensor", "file_name",
    "sub_sport", "surface", "pace_band", "duration_s", "distance_m", "running_minutes",
    "clean_minutes", "balance_minutes", "has_balance", "balance_pct", "d", "zone",
    "cadence_median", "cadence_at_reference", "speed_median_mps", "gct_median_ms",
    "balance_comparable", "detector_d", "detector_state", "baseline_d", "mdc95", "notes",
)  # fmt: skip
"""Columns of `ReportData.runs` (and of `evenstride report --csv`)."""


# --------------------------------------------------------------------------- input shaping


def runs_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Store run rows (`Store.list_runs`) -> one flat row per run, the input of `report_data`.

    The run's `summary` JSON (RunSummary.to_dict() plus ingest extras) is spread into columns;
    the row's own identity columns (athlete, source, device, sha256, activity_id, session_index
    and file_name when the caller joined it in) are kept beside it.
    """
    out = []
    for row in rows:
        summary = dict(row.get("summary") or {})
        flat = {**summary}
        for key in (
            "athlete", "source", "source_id", "device", "sha256", "activity_id",
            "session_index", "file_name", "status", "sensor", "sub_sport",
        ):  # fmt: skip
            if key in row:
                flat[key] = row[key]
        if flat.get("start_time") is None and row.get("start_time") is not None:
            flat["start_time"] = row["start_time"]
        if flat.get("run_id") is None:
            flat["run_id"] = f"{row.get('activity_id')}#{row.get('session_index')}"
        out.append(flat)
    df = pd.DataFrame(out)
    if len(df) and "start_time" in df.columns:
        df["start_time"] = pd.to_datetime(df["start_time"], utc=True, format="ISO8601")
        df = df.sort_values("start_time", kind="stable").reset_index(drop=True)
    return df


def _as_frame(runs: pd.DataFrame | Iterable[RunSummary]) -> pd.DataFrame:
    df = runs.copy() if isinstance(runs, pd.DataFrame) else summaries_frame(runs)
    if len(df) and "start_time" in df.columns:
        df["start_time"] = pd.to_datetime(df["start_time"], utc=True, format="ISO8601")
        df = df.sort_values("start_time", kind="stable").reset_index(drop=True)
    return df


def _num(df: pd.DataFrame, col: str) -> np.ndarray:
    if col not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[col], errors="coerce").to_numpy(float, na_value=np.nan)


# --------------------------------------------------------------------------- result types


@dataclass
class Coverage:
    """How much data is behind the verdicts: the first thing to check before trusting them."""

    runs: int
    runs_with_balance: int
    comparable_balance_runs: int
    comparable_cadence_runs: int
    runs_below_min_minutes: int  # runs with balance but under TrendSettings.min_clean_minutes
    min_clean_minutes: float
    running_minutes: float
    clean_minutes: float
    balance_minutes: float
    sensors: list[str]  # balance sensors (chest strap / pod identities), most recent last
    devices: list[str]  # recording devices (watches), most recent last
    sources: list[str]
    first_run: date | None
    last_run: date | None


@dataclass
class LatestBalance:
    """The latest run that carried GCT balance: its d and Garmin zone."""

    run_id: str | None
    date: date | None
    balance_pct: float
    d: float
    zone: str | None
    comparable: bool  # counted by the detector (same sensor/surface/pace group, enough minutes)


@dataclass
class RunDetail:
    """One run's balance over time and against speed, in `window_s` windows of running samples.

    Built from the per-record data (re-read from the archived raw file), downsampled so that an
    hour-long run is ~120 points instead of 3600, with the clean samples marked.
    """

    run_id: str | None
    start_time: pd.Timestamp | None
    window_s: float
    elapsed_min: list[float]  # window centre, minutes of running time
    balance_pct: list[float]  # median balance of the window
    speed_mps: list[float]  # median speed of the window (NaN when unknown)
    clean: list[bool]  # the window is mostly clean samples (after warm-up, level, steady)

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(self.__dict__)


@dataclass
class ReportData:
    """Everything one athlete's report shows (terminal, HTML, JSON), as plain data."""

    athlete: str | None
    balance: TrendAssessment
    cadence: TrendAssessment
    coverage: Coverage
    latest: LatestBalance | None
    runs: pd.DataFrame  # one row per run, RUN_COLUMNS, by start time
    weekly: pd.DataFrame  # week_start, runs, minutes, balance_runs, median_d
    cadence_fit: CadenceSpeedFit | None
    sync: dict[str, str] = field(default_factory=dict)  # source -> last sync cursor (ISO time)
    last_import: datetime | None = None
    since: date | None = None
    detail: RunDetail | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def has_balance(self) -> bool:
        """Any run with GCT balance at all (else every form says "no balance sensor data")."""
        return self.coverage.runs_with_balance > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the whole report (runs and weekly as lists of records)."""
        fit = self.cadence_fit
        return _json_safe(
            {
                "athlete": self.athlete,
                "since": self.since,
                "balance": self.balance.to_dict(),
                "cadence": self.cadence.to_dict(),
                "coverage": self.coverage.__dict__,
                "latest": None if self.latest is None else self.latest.__dict__,
                "cadence_fit": None if fit is None else fit.__dict__,
                "sync": self.sync,
                "last_import": self.last_import,
                "weekly": self.weekly.to_dict("records"),
                "runs": runs_records(self.runs),
                "detail": None if self.detail is None else self.detail.to_dict(),
                "notes": self.notes,
            }
        )


def runs_records(runs: pd.DataFrame) -> list[dict[str, Any]]:
    """The per-run table as JSON-safe dicts (NaN -> None, timestamps -> ISO text)."""
    recs = runs.astype(object).where(runs.notna(), None).to_dict("records")
    return _json_safe(recs)


# --------------------------------------------------------------------------- builders


def _unique_recent(values: Iterable[Any]) -> list[str]:
    """Distinct non-empty strings in order of their last appearance (most recent last)."""
    last: dict[str, int] = {}
    for k, v in enumerate(values):
        if isinstance(v, str) and v:
            last[v] = k
    return sorted(last, key=last.__getitem__)


def weekly_aggregates(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs, minutes and median d per ISO week (Monday, UTC), empty weeks included.

    Empty weeks stay in so that a plot shows the gaps instead of joining distant weeks.
    """
    cols = ["week_start", "runs", "minutes", "balance_runs", "median_d"]
    if not len(runs) or "start_time" not in runs.columns:
        return pd.DataFrame(columns=cols)
    ts = pd.to_datetime(runs["start_time"], utc=True)
    ok = ts.notna().to_numpy()
    if not ok.any():
        return pd.DataFrame(columns=cols)
    days = ts[ok].dt.tz_localize(None).dt.normalize()
    week = (days - pd.to_timedelta(days.dt.day_of_week, unit="D")).to_numpy()
    minutes = _num(runs, "running_minutes")[ok]
    fallback = _num(runs, "duration_s")[ok] / 60.0
    minutes = np.where(np.isfinite(minutes), minutes, fallback)
    d = _num(runs, "d")[ok]
    frame = pd.DataFrame({"week_start": week, "minutes": np.nan_to_num(minutes), "d": d})
    g = frame.groupby("week_start", sort=True)
    agg = pd.DataFrame(
        {
            "runs": g.size(),
            "minutes": g["minutes"].sum(),
            "balance_runs": g["d"].count(),
            "median_d": g["d"].median(),
        }
    )
    full = pd.date_range(agg.index.min(), agg.index.max(), freq="7D")
    agg = agg.reindex(full)
    agg["runs"] = agg["runs"].fillna(0).astype(int)
    agg["balance_runs"] = agg["balance_runs"].fillna(0).astype(int)
    agg["minutes"] = agg["minutes"].fillna(0.0).round(1)
    agg["median_d"] = agg["median_d"].round(3)
    agg.index.name = "week_start"
    out = agg.reset_index()
    out["week_start"] = [t.date() for t in out["week_start"]]
    return out[cols]


def _balance_trace(
    df: pd.DataFrame, settings: TrendSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per input row: comparable flag, detector value, state code, baseline d, MDC95 (NaN/-1)."""
    n = len(df)
    comparable = np.zeros(n, dtype=bool)
    value = np.full(n, np.nan)
    state = np.full(n, -1, dtype=np.int64)
    base = np.full(n, np.nan)
    mdc = np.full(n, np.nan)
    if not n:
        return comparable, value, state, base, mdc
    prep = prepare_series(df.assign(_row=np.arange(n)), metric="balance", settings=settings)
    if not len(prep.values):
        return comparable, value, state, base, mdc
    trace = prep.detect(settings)
    rows = prep.runs["_row"].to_numpy(dtype=np.int64)
    comparable[rows] = True
    value[rows] = prep.values
    state[rows] = trace.state
    base[rows] = trace.baseline
    mdc[rows] = MDC95_FACTOR * trace.te
    return comparable, value, state, base, mdc


def _notes_of(df: pd.DataFrame) -> list[str]:
    if "flags" not in df.columns:
        return [""] * len(df)
    return ["; ".join(f) if isinstance(f, list | tuple) else "" for f in df["flags"].tolist()]


def _text_col(df: pd.DataFrame, col: str) -> list[Any]:
    if col not in df.columns:
        return [None] * len(df)
    return [v if isinstance(v, str) else None for v in df[col].astype(object).tolist()]


def report_data(
    runs: pd.DataFrame | Iterable[RunSummary],
    *,
    athlete: str | None = None,
    settings: TrendSettings = DEFAULT_TREND,
    sync: Mapping[str, str] | None = None,
    last_import: datetime | None = None,
    since: date | None = None,
) -> ReportData:
    """Build one athlete's report data from per-run summaries (pure; deterministic).

    `runs`: `runs_frame(store.list_runs(athlete))`, `summaries_frame([...])`, any DataFrame with
    RunSummary columns, or RunSummary objects. `sync` (source -> last sync cursor) and
    `last_import` are passed through for display; `since` says the series was cut at that date
    (the detector then only sees runs from it on).
    """
    df = _as_frame(runs)
    n = len(df)
    balance = assess_trend(df, metric="balance", settings=settings)
    cadence = assess_trend(df, metric="cadence", settings=settings)
    comparable, det_value, det_state, det_base, det_mdc = _balance_trace(df, settings)

    d = _num(df, "d")
    if "balance_median" in df.columns:
        bal = _num(df, "balance_median")
        d = np.where(np.isfinite(d), d, bal - 50.0)
    has_bal = (
        df["has_balance"].astype(object).eq(True).to_numpy()
        if "has_balance" in df.columns
        else np.isfinite(d)
    )
    starts = pd.to_datetime(df["start_time"], utc=True) if "start_time" in df.columns else None
    dates = [None] * n if starts is None else [None if pd.isna(t) else t.date() for t in starts]
    bal_min = np.nan_to_num(_num(df, "balance_minutes"))
    table = pd.DataFrame(
        {
            "athlete": _text_col(df, "athlete") if "athlete" in df.columns else [athlete] * n,
            "run_id": _text_col(df, "run_id"),
            "start_time": starts if starts is not None else [None] * n,
            "date": dates,
            "source": _text_col(df, "source"),
            "device": _text_col(df, "device"),
            "sensor": _text_col(df, "sensor"),
            "file_name": _text_col(df, "file_name"),
            "sub_sport": _text_col(df, "sub_sport"),
            "surface": _text_col(df, "surface"),
            "pace_band": _text_col(df, "pace_band"),
            "duration_s": _num(df, "duration_s"),
            "distance_m": _num(df, "distance_m"),
            "running_minutes": _num(df, "running_minutes"),
            "clean_minutes": _num(df, "clean_minutes"),
            "balance_minutes": _num(df, "balance_minutes"),
            "has_balance": has_bal,
            "balance_pct": d + 50.0,
            "d": d,
            "zone": [zone_of_d(v) for v in d],
            "cadence_median": _num(df, "cadence_median"),
            "cadence_at_reference": _num(df, "cadence_at_reference"),
            "speed_median_mps": _num(df, "speed_median_mps"),
            "gct_median_ms": _num(df, "gct_median_ms"),
            "balance_comparable": comparable,
            "detector_d": det_value,
            "detector_state": [STATE_NAMES[s] if s >= 0 else None for s in det_state],
            "baseline_d": det_base,
            "mdc95": det_mdc,
            "notes": _notes_of(df),
        },
        columns=list(RUN_COLUMNS),
    )

    with_d = np.flatnonzero(np.isfinite(d))
    latest = None
    if len(with_d):
        k = int(with_d[-1])
        latest = LatestBalance(
            run_id=table["run_id"].iat[k],
            date=dates[k],
            balance_pct=float(d[k] + 50.0),
            d=float(d[k]),
            zone=zone_of_d(float(d[k])),
            comparable=bool(comparable[k]),
        )
    known = [t for t in dates if t is not None]
    coverage = Coverage(
        runs=n,
        runs_with_balance=int(np.sum(has_bal)),
        comparable_balance_runs=int(balance.n_runs),
        comparable_cadence_runs=int(cadence.n_runs),
        runs_below_min_minutes=int(np.sum(np.isfinite(d) & (bal_min < settings.min_clean_minutes))),
        min_clean_minutes=settings.min_clean_minutes,
        running_minutes=round(float(np.nansum(_num(df, "running_minutes"))), 1),
        clean_minutes=round(float(np.nansum(_num(df, "clean_minutes"))), 1),
        balance_minutes=round(float(bal_min.sum()), 1),
        sensors=_unique_recent(_text_col(df, "sensor")),
        devices=_unique_recent(_text_col(df, "device")),
        sources=_unique_recent(_text_col(df, "source")),
        first_run=min(known) if known else None,
        last_run=max(known) if known else None,
    )
    fit: CadenceSpeedFit | None = None
    if n:
        try:
            fit = fit_cadence_speed(df)
        except ValueError:
            fit = None
    notes: list[str] = []
    if not coverage.runs_with_balance and n:
        notes.append(f"{NO_BALANCE_FLAG}: cadence trends only (GCT balance needs a chest strap "
                     "or running-dynamics pod)")  # fmt: skip
    elif coverage.runs_below_min_minutes and balance.state == "insufficient_data":
        notes.append(
            f"{coverage.runs_below_min_minutes} run(s) with balance have less than "
            f"{settings.min_clean_minutes:g} clean minutes (after the {DEFAULT_CLEAN.warmup_s / 60:g}"
            "-min warm-up) and do not count toward the baseline"
        )
    return ReportData(
        athlete=athlete,
        balance=balance,
        cadence=cadence,
        coverage=coverage,
        latest=latest,
        runs=table,
        weekly=weekly_aggregates(df),
        cadence_fit=fit,
        sync=dict(sync or {}),
        last_import=last_import,
        since=since,
        notes=notes,
    )


def run_detail(
    records: pd.DataFrame,
    *,
    run_id: str | None = None,
    window_s: float = 30.0,
    settings: CleanSettings = DEFAULT_CLEAN,
) -> RunDetail | None:
    """One run's balance per `window_s` of running time (medians), with speed and clean flags.

    None when the run has no balance. Windows are over running time (the cleaner's clock), so
    pauses do not make empty windows; a window is "clean" when most of its weight is clean.
    """
    if C.GCT_BALANCE not in records.columns or not len(records):
        return None
    cs = clean_samples(records, settings)
    bal = pd.to_numeric(records[C.GCT_BALANCE], errors="coerce").to_numpy(float, na_value=np.nan)
    lo, hi = settings.balance_range_pct
    bal = np.where((bal > lo) & (bal < hi), bal, np.nan)
    spd = (
        pd.to_numeric(records[C.SPEED], errors="coerce").to_numpy(float, na_value=np.nan)
        if C.SPEED in records.columns
        else np.full(len(records), np.nan)
    )
    keep = cs.running & np.isfinite(bal)
    if not keep.any():
        return None
    # running time at each sample: cumulative weight of running samples
    run_t = np.cumsum(np.where(cs.running, cs.weight_s, 0.0))
    win = np.floor(run_t[keep] / window_s).astype(np.int64)
    frame = pd.DataFrame(
        {
            "win": win,
            "bal": bal[keep],
            "spd": spd[keep],
            "clean": cs.clean[keep].astype(float),
        }
    )
    g = frame.groupby("win", sort=True)
    agg = g.agg(bal=("bal", "median"), spd=("spd", "median"), clean=("clean", "mean"))
    start = None
    if C.TIMESTAMP in records.columns:
        start = pd.Timestamp(pd.to_datetime(records[C.TIMESTAMP].iloc[0], utc=True))
    return RunDetail(
        run_id=run_id,
        start_time=start,
        window_s=window_s,
        elapsed_min=[round((w + 0.5) * window_s / 60.0, 3) for w in agg.index],
        balance_pct=[round(float(v), 3) for v in agg["bal"]],
        speed_mps=[float(v) if np.isfinite(v) else math.nan for v in agg["spd"]],
        clean=[bool(c >= 0.5) for c in agg["clean"]],
    )
