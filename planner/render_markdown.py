"""Markdown rendering of a plan: the sessions first, then why (evidence, rules, caveats)."""

from __future__ import annotations

from .models import Plan, Session
from .text import amount, evidence_lines, headline, side_label


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def session_markdown(session: Session) -> list[str]:
    day = session.date.strftime("%a %Y-%m-%d")
    lines = [f"### {day}: {session.name}", ""]
    lines.append(
        f"Week {session.week}, phase {session.phase}, level {session.level}"
        + (", deload" if session.deload else "")
    )
    lines.append("")
    lines += [f"- {_cell(n)}" for n in session.notes]
    for block in session.blocks:
        lines += ["", f"**{block.title}**", ""]
        lines.append("| Exercise | Side | Sets | Reps / time | Rest | Tempo | Notes |")
        lines.append("|---|---|---|---|---|---|---|")
        for s in block.steps:
            lines.append(
                f"| {_cell(s.exercise.display)} | {side_label(s, session.focus_side)} | {s.sets} "
                f"| {amount(s)} | {s.rest_s} s | {_cell(s.tempo)} | {_cell(s.notes)} |"
            )
    lines.append("")
    return lines


def plan_to_markdown(plan: Plan) -> str:
    e = plan.explanation
    lines = [f"# Strength plan for {plan.athlete}", "", headline(plan) + ".", ""]
    lines += ["## Sessions", ""]
    for session in plan.sessions:
        lines += session_markdown(session)
    lines += ["## Why this plan", "", "### Evidence", "", "| | |", "|---|---|"]
    lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in evidence_lines(e.evidence)]
    lines += ["", "### Rules that fired", ""]
    lines += [f"- `{r.id}`: {_cell(r.text)}" for r in e.rules]
    lines += ["", "### Caveats", ""]
    lines += [f"- {c}" for c in e.caveats]
    return "\n".join(lines) + "\n"
