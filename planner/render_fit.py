"""FIT workout files (one per session) written with garmin-fit-sdk's Encoder.

Layout: file_id (type workout) -> workout (sport training / sub_sport strength_training) ->
workout_step messages. A repeat step (duration_type repeat_until_steps_cmplt) follows the steps
it repeats: duration_value = message_index to jump back to, target_value = total repetitions.
Quirks of the SDK encoder: sub-field names (duration_reps, repeat_steps...) are ignored, so the
main fields duration_value/target_value are written, with time in milliseconds; exercise_name has
no enum type, so the integer from the FIT profile is written (omitted for category-only
exercises such as PLYO "Bounding", which the step name labels instead).
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from garmin_fit_sdk import Encoder, Profile

from .catalog import fit_category_id, fit_exercise_name, validate_sessions
from .fingerprint import content_hash, slug, tag
from .models import Plan, Session, Step
from .structure import rounds

MESG = {k.lower(): v for k, v in Profile["mesg_num"].items()}
INTENSITY = {"warmup": "warmup", "cooldown": "cooldown"}  # every other block: active
NAME_LIMIT = 50


def step_name(step: Step, focus: str | None) -> str:
    if step.side == "both":
        return step.exercise.display[:NAME_LIMIT]
    mark = "*" if step.side == focus else ""
    return f"{step.side.upper()}{mark} {step.exercise.display}"[:NAME_LIMIT]


def _exercise_mesg(step: Step, index: int, kind: str, focus: str | None) -> dict[str, Any]:
    ex = step.exercise
    mesg: dict[str, Any] = {
        "mesg_num": MESG["workout_step"],
        "message_index": index,
        "wkt_step_name": step_name(step, focus),
        "target_type": "open",
        "intensity": INTENSITY.get(kind, "active"),
        "exercise_category": fit_category_id(ex.category),
    }
    if step.reps is not None:
        mesg.update(duration_type="reps", duration_value=step.reps)
    else:
        mesg.update(duration_type="time", duration_value=int((step.duration_s or 0) * 1000))
    name = fit_exercise_name(ex.category, ex.name)
    if name is not None:
        mesg["exercise_name"] = name
    notes = " - ".join(p for p in (step.tempo, step.notes) if p)
    side = "" if step.side == "both" else f"{step.side.upper()} leg. "
    if side or notes:
        mesg["notes"] = (side + notes)[:100]
    return mesg


def session_steps(session: Session) -> list[dict[str, Any]]:
    """The workout_step messages of one session, message_index in order."""
    mesgs: list[dict[str, Any]] = []
    for block in session.blocks:
        for r in rounds(block):
            first = len(mesgs)
            for step in r.steps:
                mesgs.append(_exercise_mesg(step, len(mesgs), block.kind, session.focus_side))
            if r.rest_s > 0:
                mesgs.append(
                    {
                        "mesg_num": MESG["workout_step"],
                        "message_index": len(mesgs),
                        "duration_type": "time",
                        "duration_value": r.rest_s * 1000,
                        "target_type": "open",
                        "intensity": "rest",
                    }
                )
            if r.iterations > 1:
                mesgs.append(
                    {
                        "mesg_num": MESG["workout_step"],
                        "message_index": len(mesgs),
                        "duration_type": "repeat_until_steps_cmplt",
                        "duration_value": first,
                        "target_type": "open",
                        "target_value": r.iterations,
                    }
                )
    return mesgs


def fit_workout(plan: Plan, session: Session) -> bytes:
    """One session as a FIT workout file (bytes), deterministic for the same plan."""
    validate_sessions([session])
    h = content_hash(plan.athlete, session)
    steps = session_steps(session)
    encoder = Encoder()
    encoder.write_mesg(
        {
            "mesg_num": MESG["file_id"],
            "type": "workout",
            "manufacturer": "development",
            "product": 0,
            "serial_number": int(h[:8], 16) or 1,
            "time_created": datetime.combine(plan.generated_on, time(12), tzinfo=UTC),
        }
    )
    encoder.write_mesg(
        {
            "mesg_num": MESG["workout"],
            "wkt_name": f"{session.name} {session.date.isoformat()}"[:NAME_LIMIT],
            "sport": "training",
            "sub_sport": "strength_training",
            "num_valid_steps": len(steps),
            "wkt_description": f"{tag(h)} {plan.athlete}"[: NAME_LIMIT * 2],
        }
    )
    for mesg in steps:
        encoder.write_mesg(mesg)
    return encoder.close()


def fit_workouts(plan: Plan, *, include_past: bool = False) -> dict[str, bytes]:
    """File name -> FIT bytes for each session from ``plan.generated_on`` on."""
    out = {}
    for session in plan.sessions:
        if include_past or session.date >= plan.generated_on:
            name = f"{session.date.isoformat()}_{slug(plan.athlete)}_{slug(session.name)}.fit"
            out[name] = fit_workout(plan, session)
    return out
