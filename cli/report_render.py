"""Terminal rendering of a report (`evenstride report`): a short plain-text summary.

Plain text, no colours, so it reads the same in a terminal, a cron mail and a log. Strings that
came from outside (athlete names, device and sensor strings) are stripped of control characters
so a crafted name cannot move the cursor or rewrite the terminal.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from evenstride.cli.common import table
from evenstride.metrics.report_data import ReportData
from evenstride.metrics.summary import NO_BALANCE_FLAG
from evenstride.metrics.trend import TrendAssessment

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
WEEKS_SHOWN = 8

STATE_TEXT = {
    "insufficient_data": "not enough comparable runs yet",
    "stable": "stable (within the athlete's own noise)",
    "shifted_left": "SHIFTED toward the LEFT foot",
    "shifted_right": "SHIFTED toward the RIGHT foot",
    "returning": "returning toward the baseline",
    "dropped": "DROPPED (pace-adjusted)",
    "rose": "ROSE (pace-adjusted)",
}


def safe(value: Any) -> str:
    """Text of an outside value with control characters (escape sequences, newlines) removed."""
    return "" if value is None else _CONTROL.sub("", str(value))


def _date(value: date | datetime | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def _signed(v: float | None, unit: str, digits: int = 2) -> str:
    return "-" if v is None else f"{v:+.{digits}f} {unit}"


def _balance_lines(rep: ReportData) -> list[str]:
    b: TrendAssessment = rep.balance
    if not rep.has_balance:
        return [f"GCT balance   {NO_BALANCE_FLAG} (no chest strap or running-dynamics pod)"]
    lines = [f"GCT balance   {b.state}: {STATE_TEXT.get(b.state, b.state)}"]
    if b.shifted and b.since is not None:
        lines[-1] += f" since {b.since.isoformat()}"
    if rep.latest is not None:
        lt = rep.latest
        lines.append(
            f"  latest run  {_date(lt.date)}: {lt.balance_pct:.2f} %L, d {lt.d:+.2f} pp, "
            f"zone {lt.zone}" + ("" if lt.comparable else " (not a comparable run)")
        )
    if b.current is not None:
        lines.append(
            f"  current     d {b.current:+.2f} pp ({50 + b.current:.2f} %L), zone {b.current_zone}"
            f" (median of the latest comparable runs)"
        )
    if b.baseline_level is not None and b.te is not None and b.mdc95 is not None:
        lines.append(
            f"  baseline    d {b.baseline_level:+.2f} pp ({50 + b.baseline_level:.2f} %L), "
            f"TE {b.te:.2f} pp, MDC95 {b.mdc95:.2f} pp; change {_signed(b.magnitude, 'pp')}"
        )
    lines.append(
        f"  compared    {b.n_runs} runs ({b.surface or '-'}, {b.pace_group or '-'}, "
        f"sensor {safe(b.sensor) or '-'})"
    )
    for ep in b.episodes:
        lines.append(
            f"  episode     {ep['direction']} since {_date(ep['since'])}, confirmed "
            f"{_date(ep['confirmed'])}, d {ep['value']:+.2f} pp ({ep['zone']})"
        )
    return lines


def _cadence_lines(rep: ReportData) -> list[str]:
    c = rep.cadence
    lines = [f"Cadence       {c.state}: {STATE_TEXT.get(c.state, c.state)}"]
    if c.shifted and c.since is not None:
        lines[-1] += f" since {c.since.isoformat()}"
    fit = rep.cadence_fit
    at = f" at {fit.reference_speed_mps:.2f} m/s" if fit is not None else ""
    if c.current is not None:
        lines.append(f"  current     {c.current:.1f} spm{at} (zone {c.current_zone})")
    if c.baseline_level is not None and c.mdc95 is not None:
        lines.append(
            f"  baseline    {c.baseline_level:.1f} spm, MDC95 {c.mdc95:.1f} spm; "
            f"change {_signed(c.magnitude, 'spm', 1)} over {c.n_runs} runs"
        )
    if fit is not None:
        lines.append(
            f"  vs speed    {fit.slope_spm_per_mps:+.1f} spm per m/s ({fit.method}, {fit.n} runs)"
        )
    return lines


def render_text(rep: ReportData) -> str:
    """The terminal summary of one athlete's report."""
    cov = rep.coverage
    head = f"evenstride report: athlete {safe(rep.athlete) or '-'}"
    if rep.since is not None:
        head += f" (runs since {rep.since.isoformat()})"
    out = [head, "=" * min(len(head), 100)]
    if not cov.runs:
        out.append("no runs stored" + (" in this period" if rep.since else ""))
        return "\n".join(out)
    out += _balance_lines(rep)
    out += _cadence_lines(rep)
    sensors = ", ".join(safe(s) for s in cov.sensors) or "none"
    out.append(
        f"Coverage      {cov.runs} runs, {cov.runs_with_balance} with a balance sensor, "
        f"{cov.comparable_balance_runs} comparable; {cov.clean_minutes:.0f} clean minutes "
        f"({cov.balance_minutes:.0f} with balance)"
    )
    out.append(f"  sensors     {sensors}")
    if cov.devices:
        out.append(f"  devices     {', '.join(safe(d) for d in cov.devices)}")
    out.append(f"  runs        {_date(cov.first_run)} .. {_date(cov.last_run)}")
    syncs = ", ".join(f"{safe(k)} {safe(v)}" for k, v in sorted(rep.sync.items()))
    out.append(
        f"Last run      {_date(cov.last_run)}; last import {_date(rep.last_import)}; "
        f"last sync {syncs or 'never'}"
    )
    for note in dict.fromkeys([*rep.notes, *rep.balance.notes, *rep.cadence.notes]):
        out.append(f"  note        {safe(note)}")
    if len(rep.weekly):
        weeks = rep.weekly.tail(WEEKS_SHOWN)
        body = [
            (
                w.week_start.isoformat(),
                int(w.runs),
                f"{w.minutes:.0f}",
                "" if w.median_d != w.median_d else f"{w.median_d:+.2f}",
            )
            for w in weeks.itertuples()
        ]
        out += ["", f"Last {len(body)} weeks"]
        out.append(table(body, ("week of", "runs", "minutes", "median d (pp)")))
    return "\n".join(out)
