"""Translate the trend detector's verdict (metrics.trend) into the planner's Assessment.

Kept apart from both sides so neither depends on the other's vocabulary: metrics speaks of
TrendAssessment episodes, the planner of confirmed bands and supporting runs.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd

from evenstride.planner.models import Assessment, ConfirmedBand, RunEvidence
from evenstride.planner.rules import band_for


def _day(value: Any) -> date | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, date) and not isinstance(value, pd.Timestamp):
        return value if type(value) is date else value.date()
    return pd.Timestamp(value).date()


def planner_assessment(verdict: Any) -> Assessment:
    """`metrics.trend.Assessment` (balance + cadence verdicts) -> `planner.Assessment`."""
    balance, cadence = verdict.balance, verdict.cadence
    d = balance.current
    bands = tuple(
        ConfirmedBand(since=since, band=band_for(ep["value"]), d=ep["value"])
        for ep in balance.episodes
        if ep.get("value") is not None
        and (since := _day(ep.get("confirmed") or ep.get("since"))) is not None
    )
    runs = tuple(
        RunEvidence(id=str(r.get("run_id")), date=day, d=r.get("value"))
        for r in balance.supporting_runs
        if (day := _day(r.get("date"))) is not None
    )
    return Assessment(
        d=d,
        zone=band_for(d) if d is not None else None,
        te=balance.te,
        mdc=balance.mdc95,
        state=balance.state,
        magnitude=balance.magnitude,
        since=_day(balance.since),
        confirmed_bands=bands,
        supporting_runs=runs,
        comparable_runs=balance.n_runs,
        clean_minutes=float(balance.clean_minutes or 0.0),
        sensor=balance.sensor,
        has_balance_sensor=bool(balance.has_balance_sensor),
        cadence_state=cadence.state,
        cadence_low_for_pace=cadence.state == "dropped",
    )
