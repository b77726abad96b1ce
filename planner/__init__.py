"""Planner: assessment -> program -> sessions, as pure data."""

from .build import build_plan
from .catalog import UnknownExerciseError, validate_exercise
from .fingerprint import MARKER, content_hash
from .models import (
    Assessment,
    AthleteProfile,
    Block,
    CoachOverrides,
    ConfirmedBand,
    Evidence,
    ExerciseRef,
    Explanation,
    FiredRule,
    Plan,
    RunEvidence,
    Session,
    Step,
)
from .render_fit import fit_workout, fit_workouts
from .render_garmin import garmin_workout_payloads, workout_json
from .render_html import plan_to_html
from .render_ics import plan_to_ics
from .render_json import plan_from_json, plan_to_json
from .render_markdown import plan_to_markdown
from .rules import band_for, rules_tables

__all__ = [
    "MARKER",
    "Assessment",
    "AthleteProfile",
    "Block",
    "CoachOverrides",
    "ConfirmedBand",
    "Evidence",
    "ExerciseRef",
    "Explanation",
    "FiredRule",
    "Plan",
    "RunEvidence",
    "Session",
    "Step",
    "UnknownExerciseError",
    "band_for",
    "build_plan",
    "content_hash",
    "fit_workout",
    "fit_workouts",
    "garmin_workout_payloads",
    "plan_from_json",
    "plan_to_html",
    "plan_to_ics",
    "plan_to_json",
    "plan_to_markdown",
    "rules_tables",
    "validate_exercise",
    "workout_json",
]
