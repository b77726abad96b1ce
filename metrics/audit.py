"""The coach's audit: one row per athlete, ordered by how much the athlete needs attention.

Pure: rows are built from what the command gathered (run summaries, trend verdicts, the saved
plan, sync times); nothing here reads the store or the clock.

Concern order (most concerning first), compared key by key:

1. **tier**: a confirmed GCT-balance shift whose current estimate is in Garmin's red zone, then
   one in the orange zone, then a shift still in green; then "returning" (a shift coming
   back); then stable; then athletes without a verdict (too few runs, no balance sensor).
2. **zone** of the current estimate within the tier (red, orange, green, unknown): a stable
   athlete who lives in red is looked at before a stable athlete in green.
3. **magnitude relative to the athlete's own noise**, |shift| / MDC95, largest first (shifts
   and returning episodes only; a stable athlete's deviation is noise): a 1.6 pp shift means
   more for an athlete whose MDC is 0.5 pp than for one whose MDC is 1.5 pp.
4. **stale data**: more days since the last run first (no run at all counts as most stale):
   a silent athlete may be injured or have lost the sensor.
5. the athlete's name, for a stable order.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from evenstride.metrics.trend import (
    INSUFFICIENT,
    RETURNING,
    SHIFTED_LEFT,
    SHIFTED_RIGHT,
    STABLE,
    Assessment,
)

TIERS = ("red shift", "orange shift", "shift", "returning", "stable", "no verdict")
ZONE_RANK = {"red": 0, "orange": 1, "green": 2}
SERIES_MAX_RUNS = 60  # runs in the sparkline (about half a year of 2-3 runs a week)
COLUMNS = (
    "athlete", "concern", "zone", "d_pp", "state", "since", "magnitude_pp", "mdc_pp",
    "mdc_ratio", "cadence_state", "cadence_change_spm", "last_run", "days_since_run",
    "last_sync", "days_since_sync", "runs", "balance_share", "sensor", "plan_phase",
    "plan_week", "next_session_date", "next_session", "nightly_status", "last_run_title",
)  # fmt: skip


@dataclass
class AuditRow:
    """One athlete's line in the audit (every field JSON-friendly)."""

    athlete: str
    tier: int
    concern: str
    zone: str | None = None
    d_pp: float | None = None
    state: str = INSUFFICIENT
    since: date | None = None
    magnitude_pp: float | None = None
    mdc_pp: float | None = None
    mdc_ratio: float | None = None
    cadence_state: str | None = None
    cadence_change_spm: float | None = None
    last_run: date | None = None
    days_since_run: int | None = None
    last_sync: datetime | None = None
    days_since_sync: int | None = None
    runs: int = 0
    balance_runs: int = 0
    balance_share: float | None = None
    sensor: str | None = None
    plan_phase: int | None = None
    plan_week: int | None = None
    next_session_date: date | None = None
    next_session: str | None = None
    nightly_status: str | None = None
    last_run_title: str | None = None
    series: list[tuple[str, float]] = field(default_factory=list)  # (ISO date, d) per run

    def sort_key(self) -> tuple[Any, ...]:
        stale = self.days_since_run if self.days_since_run is not None else math.inf
        # a stable athlete's "magnitude" is noise: only shifts and returns rank by it
        ratio = (self.mdc_ratio or 0.0) if self.tier <= TIERS.index("returning") else 0.0
        return (
            self.tier,
            ZONE_RANK.get(self.zone or "", 3),
            -ratio,
            -stale,
            self.athlete.casefold(),
            self.athlete,
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("since", "last_run", "next_session_date"):
            out[key] = out[key].isoformat() if out[key] else None
        out["last_sync"] = self.last_sync.isoformat() if self.last_sync else None
        return out

    # ---- display texts (shared by the table, CSV-free renderers and the HTML)
    def state_text(self) -> str:
        return f"{self.state} since {self.since.isoformat()}" if self.since else self.state

    def magnitude_text(self) -> str:
        """'+1.6 pp = 3.4×MDC' (or just the pp when the MDC is unknown)."""
        if self.magnitude_pp is None:
            return ""
        text = f"{self.magnitude_pp:+.1f} pp"
        return text + (f" = {self.mdc_ratio:.1f}×MDC" if self.mdc_ratio is not None else "")

    def zone_text(self) -> str:
        if self.zone is None or self.d_pp is None:
            return self.zone or ""
        side = "L" if self.d_pp > 0 else "R" if self.d_pp < 0 else ""
        return f"{self.zone} ({abs(self.d_pp):.1f} pp {side})".replace(" )", ")")

    def cadence_text(self) -> str:
        if self.cadence_state is None:
            return ""
        if self.cadence_change_spm is None or self.cadence_state in (INSUFFICIENT, STABLE):
            return self.cadence_state
        return f"{self.cadence_state} {self.cadence_change_spm:+.1f} spm"

    def freshness_text(self) -> str:
        run = "no run" if self.days_since_run is None else f"run {self.days_since_run} d ago"
        sync = (
            "never synced"
            if self.days_since_sync is None
            else f"synced {self.days_since_sync} d ago"
        )
        return f"{run}, {sync}"

    def sensor_text(self) -> str:
        if not self.runs:
            return ""
        share = f"{round(100 * (self.balance_share or 0.0))}% of {self.runs} runs"
        return f"{share} ({self.sensor})" if self.sensor else share

    def plan_text(self) -> str:
        if self.plan_phase is None:
            return "no plan"
        return f"phase {self.plan_phase} week {self.plan_week}"

    def next_text(self) -> str:
        if self.next_session_date is None:
            return ""
        return f"{self.next_session_date.isoformat()} {self.next_session or ''}".strip()


def tier_of(verdict: Assessment | None) -> int:
    """Index into TIERS (see the module docstring)."""
    if verdict is None:
        return len(TIERS) - 1
    b = verdict.balance
    if b.state in (SHIFTED_LEFT, SHIFTED_RIGHT):
        return {"red": 0, "orange": 1}.get(b.current_zone or "", 2)
    if b.state == RETURNING:
        return 3
    if b.state == STABLE:
        return 4
    return 5


def _finite(x: Any, digits: int = 3) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return round(v, digits) if math.isfinite(v) else None


def _balance_series(runs: pd.DataFrame) -> list[tuple[str, float]]:
    """(date, d) of the latest runs with GCT balance, oldest first."""
    if runs.empty or "d" not in runs.columns or "start_time" not in runs.columns:
        return []
    d = pd.to_numeric(runs["d"], errors="coerce")
    ok = runs[np.isfinite(d.to_numpy(float, na_value=np.nan))]
    ts = pd.to_datetime(ok["start_time"], utc=True)
    values = pd.to_numeric(ok["d"], errors="coerce")
    pairs = [(t.date().isoformat(), round(float(v), 3)) for t, v in zip(ts, values, strict=True)]
    return pairs[-SERIES_MAX_RUNS:]


def _has_balance(runs: pd.DataFrame) -> int:
    if runs.empty:
        return 0
    if "has_balance" in runs.columns:
        return int(runs["has_balance"].astype("object").eq(True).sum())
    if "d" in runs.columns:
        return int(pd.to_numeric(runs["d"], errors="coerce").notna().sum())
    return 0


def _days(later: date, earlier: date | None) -> int | None:
    return None if earlier is None else max(0, (later - earlier).days)


def audit_row(
    athlete: str,
    verdict: Assessment | None,
    runs: pd.DataFrame,
    *,
    today: date,
    last_sync: datetime | None = None,
    plan: Any = None,
    nightly_status: str | None = None,
    last_run_title: str | None = None,
) -> AuditRow:
    """One athlete's row from their run summaries (analysis.summaries), verdict and plan."""
    tier = tier_of(verdict)
    row = AuditRow(athlete=athlete, tier=tier, concern=TIERS[tier])
    row.runs = len(runs)
    row.balance_runs = _has_balance(runs)
    row.balance_share = round(row.balance_runs / row.runs, 3) if row.runs else None
    row.series = _balance_series(runs)
    if not runs.empty and "start_time" in runs.columns:
        last = pd.to_datetime(runs["start_time"], utc=True).max()
        row.last_run = None if pd.isna(last) else last.date()
    row.days_since_run = _days(today, row.last_run)
    row.last_sync = last_sync
    row.days_since_sync = _days(today, last_sync.date()) if last_sync else None
    row.nightly_status, row.last_run_title = nightly_status, last_run_title
    if verdict is not None:
        b, c = verdict.balance, verdict.cadence
        row.state, row.since, row.sensor = b.state, b.since, b.sensor
        row.d_pp, row.zone = _finite(b.current), b.current_zone
        row.magnitude_pp, row.mdc_pp = _finite(b.magnitude), _finite(b.mdc95)
        if row.magnitude_pp is not None and row.mdc_pp:
            row.mdc_ratio = round(abs(row.magnitude_pp) / row.mdc_pp, 2)
        row.cadence_state, row.cadence_change_spm = c.state, _finite(c.magnitude)
    if plan is not None:
        row.plan_phase, row.plan_week = plan.phase, plan.week
        upcoming = sorted((s for s in plan.sessions if s.date >= today), key=lambda s: s.date)
        if upcoming:
            row.next_session_date, row.next_session = upcoming[0].date, upcoming[0].name
    return row


def order(rows: list[AuditRow]) -> list[AuditRow]:
    """Most concerning first (see the module docstring for the rule)."""
    return sorted(rows, key=AuditRow.sort_key)


def table_cells(row: AuditRow) -> tuple[str, ...]:
    """The terminal table's cells for one row (headers: TABLE_HEADERS)."""
    return (
        row.athlete,
        row.concern,
        row.zone_text(),
        row.state_text(),
        row.magnitude_text(),
        row.cadence_text(),
        row.freshness_text(),
        row.sensor_text(),
        row.plan_text(),
        row.next_text(),
    )


TABLE_HEADERS = (
    "athlete", "concern", "zone", "detector", "magnitude", "cadence", "freshness",
    "balance sensor", "plan", "next session",
)  # fmt: skip
