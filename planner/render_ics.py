"""iCalendar export: one all-day VEVENT per session, with UIDs that stay put across re-exports.

The UID comes from the athlete and the session date (at most one strength session a day), not
from the content: a changed session must replace its calendar entry, and a content-derived UID
would add a second one instead. The content hash travels in X-EVENSTRIDE-CONTENT-HASH and the
description so a changed session is recognisable. DTSTAMP is the plan's date, so exporting the
same plan twice gives the same bytes.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, time, timedelta

from icalendar import Calendar, Event

from .fingerprint import content_hash, slug, tag
from .models import Plan, Session
from .text import amount, side_label

PRODID = "-//evenstride//strength planner//EN"


def session_uid(athlete: str, session: Session) -> str:
    key = f"{athlete}|{session.date.isoformat()}".encode()
    digest = hashlib.sha256(key).hexdigest()[:12]
    return f"{slug(athlete)}-{session.date.isoformat()}-{digest}@evenstride"


def session_description(session: Session) -> str:
    lines = list(session.notes)
    for block in session.blocks:
        lines.append("")
        lines.append(block.title)
        for step in block.steps:
            extra = f" ({step.tempo})" if step.tempo else ""
            lines.append(
                f"- {step.exercise.display}, {side_label(step, session.focus_side)}: "
                f"{step.sets} x {amount(step)}, rest {step.rest_s} s{extra}"
            )
    return "\n".join(lines)


def plan_to_ics(plan: Plan) -> bytes:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", f"evenstride strength - {plan.athlete}")
    stamp = datetime.combine(plan.generated_on, time(0), tzinfo=UTC)
    for session in plan.sessions:
        h = content_hash(plan.athlete, session)
        event = Event()
        event.add("uid", session_uid(plan.athlete, session))
        event.add("dtstamp", stamp)
        event.add("dtstart", session.date)
        event.add("dtend", session.date + timedelta(days=1))
        event.add("summary", f"{session.name} {tag(h)}")
        event.add("description", session_description(session))
        event.add("categories", ["evenstride", "strength"])
        event.add("transp", "TRANSPARENT")
        event.add("x-evenstride-content-hash", h)
        cal.add_component(event)
    return cal.to_ical()
