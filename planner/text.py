"""Small wording helpers shared by the human-readable renderers (Markdown, HTML, iCalendar)."""

from __future__ import annotations

from .models import Evidence, Plan, Side, Step

SIDE_LABEL: dict[Side, str] = {"left": "LEFT", "right": "RIGHT", "both": "both"}


def side_label(step: Step, focus: str | None) -> str:
    label = SIDE_LABEL[step.side]
    return f"{label} (focus)" if step.side == focus else label


def amount(step: Step) -> str:
    """'8 reps' or '30 s' (per set, per side)."""
    if step.reps is not None:
        return f"{step.reps} reps"
    return f"{step.duration_s} s"


def pp(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:+.{digits}f} pp"


def evidence_lines(e: Evidence) -> list[tuple[str, str]]:
    """(label, value) pairs describing the evidence, in reading order."""
    runs = ", ".join(f"{r.id} {r.date} ({pp(r.d)})" for r in e.runs) or "none listed"
    return [
        ("d = GCT balance left % - 50", pp(e.d)),
        ("Garmin zone of the estimate", e.zone or "n/a"),
        ("Band used for the dose", e.band_used or "none (no focus side)"),
        ("Typical error (TE)", "n/a" if e.te is None else f"{e.te:.2f} pp"),
        ("MDC95", "n/a" if e.mdc is None else f"{e.mdc:.2f} pp"),
        ("Trend detector", e.state),
        ("Confirmed shift", f"{pp(e.magnitude)} since {e.since}" if e.since else pp(e.magnitude)),
        ("Comparable runs", str(e.comparable_runs)),
        ("Clean minutes", f"{e.clean_minutes:.0f}"),
        ("Sensor", e.sensor or ("none" if not e.has_balance_sensor else "unknown")),
        (
            "Cadence (pace-adjusted)",
            e.cadence_state + (", low for pace" if e.cadence_low_for_pace else ""),
        ),
        ("Supporting runs", runs),
    ]


def headline(plan: Plan) -> str:
    focus = plan.focus_side.upper() if plan.focus_side else "none"
    return (
        f"Week {plan.week}, phase {plan.phase}, level {plan.level}; focus side {focus}; "
        f"band {plan.band or 'n/a'}"
    )
