"""Garmin Connect strength-workout JSON (sportTypeId 5), built with garminconnect's own models.

Per-side steps sit inside repeat groups (focus side first); each step's ``description`` says
"LEFT leg"/"RIGHT leg" because neither Garmin Connect nor FIT has a side field. Every exercise is
checked against garminconnect's catalogue before any JSON is produced, since Garmin silently
blanks unknown names. The name and description carry evenstride's marker and the session's
content hash, so the push can find its own workouts and tell whether one changed.
"""

from __future__ import annotations

from typing import Any

from garminconnect.workout import (
    ExecutableStep,
    RepeatGroup,
    SportType,
    StepType,
    StrengthWorkout,
    WorkoutSegment,
    create_repeat_group,
    create_strength_exercise_step,
    create_strength_rest_step,
    create_strength_timed_step,
)

from .catalog import validate_sessions
from .fingerprint import MARKER, content_hash, tag
from .models import Block, Plan, Session, Step
from .structure import Round, rounds

SECONDS_PER_REP = 4  # only for estimatedDurationInSecs
DESCRIPTION_LIMIT = 250  # keep well under Garmin's (undocumented) description length
STEP_TYPES = {
    "warmup": {"stepTypeId": StepType.WARMUP, "stepTypeKey": "warmup", "displayOrder": 1},
    "cooldown": {"stepTypeId": StepType.COOLDOWN, "stepTypeKey": "cooldown", "displayOrder": 2},
}
STRENGTH_SPORT = {
    "sportTypeId": SportType.STRENGTH_TRAINING,
    "sportTypeKey": "strength_training",
    "displayOrder": 5,
}


def step_description(step: Step, focus: str | None) -> str:
    """'LEFT leg (focus side) - Single-leg RDL - tempo ...' as shown on the watch."""
    if step.side == "both":
        head = step.exercise.display
    else:
        mark = " (focus side)" if step.side == focus else ""
        head = f"{step.side.upper()} leg{mark} - {step.exercise.display}"
    parts = [head, step.tempo, step.notes]
    return " - ".join(p for p in parts if p)[:DESCRIPTION_LIMIT]


def _exercise_step(step: Step, order: int, kind: str, focus: str | None) -> ExecutableStep:
    common = {
        "category": step.exercise.category,
        "step_order": order,
        "exercise_name": step.exercise.name,
        "description": step_description(step, focus),
    }
    if step.reps is not None:
        made = create_strength_exercise_step(reps=step.reps, **common)
    else:
        made = create_strength_timed_step(duration_seconds=step.duration_s or 0, **common)
    if kind in STEP_TYPES:
        made = made.model_copy(update={"stepType": dict(STEP_TYPES[kind])})
    return made


def _round(
    r: Round, order: int, kind: str, focus: str | None
) -> tuple[list[ExecutableStep | RepeatGroup], int]:
    """Steps for one round and the next free stepOrder (orders follow document order)."""
    group_order = order
    if r.iterations > 1:
        order += 1
    inner: list[ExecutableStep | RepeatGroup] = []
    for step in r.steps:
        inner.append(_exercise_step(step, order, kind, focus))
        order += 1
    if r.rest_s > 0:
        inner.append(create_strength_rest_step(r.rest_s, order))
        order += 1
    if r.iterations > 1:
        return [
            create_repeat_group(r.iterations, inner, group_order, skip_last_rest_step=True)
        ], order
    return inner, order


def _block_steps(
    block: Block, order: int, focus: str | None
) -> tuple[list[ExecutableStep | RepeatGroup], int]:
    out: list[ExecutableStep | RepeatGroup] = []
    for r in rounds(block):
        steps, order = _round(r, order, block.kind, focus)
        out.extend(steps)
    return out, order


def estimated_seconds(session: Session) -> int:
    total = 0
    for block in session.blocks:
        for r in rounds(block):
            work = sum(
                s.duration_s if s.reps is None else s.reps * SECONDS_PER_REP for s in r.steps
            )
            total += r.iterations * (work + r.rest_s)
    return int(total)


def workout_name(session: Session) -> str:
    return f"{MARKER} {session.date.isoformat()} {session.name}"


def workout_json(plan: Plan, session: Session) -> dict[str, Any]:
    """One session as a Garmin Connect strength workout (the body of POST /workout-service)."""
    validate_sessions([session])
    return _workout(session, content_hash(plan.athlete, session))


def _workout(session: Session, h: str) -> dict[str, Any]:
    """The workout JSON of an already validated session whose content hash is ``h``."""
    order = 1
    steps: list[ExecutableStep | RepeatGroup] = []
    for block in session.blocks:
        block_steps, order = _block_steps(block, order, session.focus_side)
        steps.extend(block_steps)
    focus = session.focus_side.upper() if session.focus_side else "none"
    description = (
        f"{tag(h)} {session.name}, week {session.week}, phase {session.phase}, focus {focus}. "
        + " ".join(session.notes)
    )[:DESCRIPTION_LIMIT]
    workout = StrengthWorkout(
        workoutName=workout_name(session),
        description=description,
        estimatedDurationInSecs=estimated_seconds(session),
        workoutSegments=[
            WorkoutSegment(segmentOrder=1, sportType=dict(STRENGTH_SPORT), workoutSteps=steps)
        ],
    )
    return workout.to_dict()


def garmin_workout_payloads(plan: Plan, *, include_past: bool = False) -> list[dict[str, Any]]:
    """For each session from ``plan.generated_on`` on: date, marker, hash, tag, name, workout.

    Every exercise of every included session is validated first, so an unknown name raises
    before any payload exists. Past sessions are left out unless asked for: the push must never
    touch them.
    """
    sessions = [s for s in plan.sessions if include_past or s.date >= plan.generated_on]
    validate_sessions(sessions)
    payloads = []
    for session in sessions:
        h = content_hash(plan.athlete, session)
        payloads.append(
            {
                "date": session.date.isoformat(),
                "marker": MARKER,
                "content_hash": h,
                "tag": tag(h),
                "workout_name": workout_name(session),
                "workout": _workout(session, h),
            }
        )
    return payloads
