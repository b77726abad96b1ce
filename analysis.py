"""From the store to decisions: an athlete's run summaries, trend verdicts, plan inputs.

This is wiring between the store and the pure layers (metrics, planner); it reads only.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd

from evenstride.metrics.trend import assess_athlete
from evenstride.planner import Assessment, AthleteProfile, CoachOverrides
from evenstride.planner.from_metrics import planner_assessment
from evenstride.store import Store

HARD_MIN_DURATION_S = 75 * 60  # a run this long counts as a long run ...
HARD_DURATION_FACTOR = 1.5  # ... or one 1.5x the athlete's median duration
HARD_PACE_BANDS = ("tempo", "fast")


def summaries(store: Store, athlete: str, *, since: date | None = None) -> pd.DataFrame:
    """The athlete's stored run summaries as the DataFrame metrics.trend expects (by start)."""
    rows = []
    for run in store.list_runs(athlete):
        summary = dict(run.get("summary") or {})
        if not summary or summary.get("duplicate_of"):
            continue
        summary["run_id"] = summary.get("run_id") or f"{run['activity_id']}#{run['session_index']}"
        summary["activity_id"] = run["activity_id"]
        summary["source"] = run.get("source")
        rows.append(summary)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["start_time"] = pd.to_datetime(df["start_time"], utc=True)
    if since is not None:
        df = df[df["start_time"] >= pd.Timestamp(since, tz="UTC")]
    return df.sort_values("start_time", kind="stable").reset_index(drop=True)


def hard_run_dates(df: pd.DataFrame, *, today: date, horizon_days: int = 7 * 8) -> list[date]:
    """Past hard runs (long, tempo/fast) and their weekly pattern projected into the plan horizon.

    Only past activities are known, so a weekday that held a hard run in at least two of the last
    four weeks is assumed to hold one every week ahead (the usual long-run Sunday).
    """
    if df.empty:
        return []
    median = float(df["duration_s"].median() or 0.0)
    limit = (
        min(HARD_MIN_DURATION_S, HARD_DURATION_FACTOR * median) if median else HARD_MIN_DURATION_S
    )
    hard = df[
        (df["duration_s"] >= limit)
        | df.get("pace_band", pd.Series(dtype=str)).isin(HARD_PACE_BANDS)
    ]
    days = sorted({t.date() for t in hard["start_time"]})
    recent = [d for d in days if today - timedelta(days=28) <= d < today]
    weekdays = {
        w for w in {d.weekday() for d in recent} if sum(d.weekday() == w for d in recent) >= 2
    }
    future = [
        today + timedelta(days=i)
        for i in range(horizon_days)
        if (today + timedelta(days=i)).weekday() in weekdays
    ]
    return days + future


def profile_of(
    store: Store, athlete: str, *, today: date
) -> tuple[AthleteProfile, CoachOverrides | None]:
    """The athlete's profile (with defaults) and the coach's overrides, from the store."""
    row = store.get_athlete(athlete) or {}
    p: dict[str, Any] = dict(row.get("profile") or {})
    start = p.get("program_start")
    profile = AthleteProfile(
        athlete=athlete,
        start_date=date.fromisoformat(start) if start else today,
        experience=p.get("experience", "beginner"),
        sessions_per_week=p.get("sessions_per_week"),
        weekdays=tuple(p.get("weekdays") or ()),
        equipment=frozenset(p.get("equipment") or ("bodyweight",)),
        units=p.get("units", "metric"),
    )
    raw = p.get("overrides") or {}
    overrides = None
    if raw:
        overrides = CoachOverrides(
            focus_side=raw.get("focus_side"),
            phase=raw.get("phase"),
            swaps=dict(raw.get("swaps") or {}),
            dose=tuple(raw["dose"]) if raw.get("dose") else None,
            modules=dict(raw.get("modules") or {}),
        )
    return profile, overrides


def plan_inputs(
    store: Store, athlete: str, *, today: date
) -> tuple[Assessment, AthleteProfile, CoachOverrides | None, list[date]]:
    """Everything build_plan needs, read from the store."""
    df = summaries(store, athlete)
    assessment = planner_assessment(assess_athlete(df))
    profile, overrides = profile_of(store, athlete, today=today)
    return assessment, profile, overrides, hard_run_dates(df, today=today)
