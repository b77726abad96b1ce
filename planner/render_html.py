"""Self-contained HTML rendering (inline CSS, every value escaped) for sharing with a coach."""

from __future__ import annotations

from html import escape

from .models import Plan, Session
from .text import amount, evidence_lines, headline, side_label

CSS = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1rem;width:100%}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}.focus{font-weight:bold}.caveat{color:#7a4b00}
"""


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _session(session: Session) -> list[str]:
    out = [f"<section><h3>{_e(session.date.strftime('%a %Y-%m-%d'))}: {_e(session.name)}</h3>"]
    out.append(
        f"<p>Week {session.week}, phase {session.phase}, level {session.level}"
        + (", deload" if session.deload else "")
        + "</p>"
    )
    out.append("<ul>" + "".join(f"<li>{_e(n)}</li>" for n in session.notes) + "</ul>")
    for block in session.blocks:
        out.append(
            f"<h4>{_e(block.title)}</h4><table><tr><th>Exercise</th><th>Side</th>"
            "<th>Sets</th><th>Reps / time</th><th>Rest</th><th>Tempo</th><th>Notes</th></tr>"
        )
        for s in block.steps:
            cls = ' class="focus"' if s.side == session.focus_side else ""
            out.append(
                f"<tr{cls}><td>{_e(s.exercise.display)}</td>"
                f"<td>{_e(side_label(s, session.focus_side))}</td><td>{s.sets}</td>"
                f"<td>{_e(amount(s))}</td><td>{s.rest_s} s</td>"
                f"<td>{_e(s.tempo)}</td><td>{_e(s.notes)}</td></tr>"
            )
        out.append("</table>")
    out.append("</section>")
    return out


def plan_to_html(plan: Plan) -> str:
    e = plan.explanation
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Strength plan for {_e(plan.athlete)}</title><style>{CSS}</style></head><body>",
        f"<h1>Strength plan for {_e(plan.athlete)}</h1><p>{_e(headline(plan))}.</p>",
        "<h2>Sessions</h2>",
    ]
    for session in plan.sessions:
        out += _session(session)
    out.append("<h2>Why this plan</h2><h3>Evidence</h3><table>")
    out += [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in evidence_lines(e.evidence)]
    out.append("</table><h3>Rules that fired</h3><ul>")
    out += [f"<li><code>{_e(r.id)}</code>: {_e(r.text)}</li>" for r in e.rules]
    out.append("</ul><h3>Caveats</h3><ul>")
    out += [f'<li class="caveat">{_e(c)}</li>' for c in e.caveats]
    out.append("</ul></body></html>")
    return "\n".join(out) + "\n"
