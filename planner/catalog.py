"""Check exercise names against Garmin's two vocabularies before anything is produced.

Garmin Connect silently blanks an ``exerciseName`` it does not know, and a FIT step with a wrong
enum shows the wrong exercise on the watch, so every name is checked here first: against
garminconnect's exercise catalogue (the web editor's picker) and garmin-fit-sdk's Profile.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from garmin_fit_sdk import Profile
from garminconnect.exercises import EXERCISES

from .models import Session


class UnknownExerciseError(ValueError):
    """An exercise (category/name) that Garmin Connect or the FIT profile does not know."""


@cache
def _catalogue() -> dict[tuple[str, str], str]:
    return {(e["category"], e["exercise"]): e["name"] for e in EXERCISES}


def catalogue_name(category: str, name: str) -> str | None:
    """Garmin Connect's display name for the pair, or None when the catalogue lacks it."""
    return _catalogue().get((category, name))


def is_category_only(category: str, name: str) -> bool:
    """Category-only entries (``PLYO/PLYO``) have no FIT exercise_name; a step name is used."""
    return category == name and fit_exercise_name(category, name) is None


def validate_exercise(category: str, name: str) -> None:
    """Raise :class:`UnknownExerciseError` unless both Garmin Connect and FIT know the exercise."""
    if catalogue_name(category, name) is None:
        raise UnknownExerciseError(
            f"{category}/{name} is not in Garmin Connect's exercise catalogue "
            "(garminconnect.exercises); Garmin would blank it"
        )
    fit_category_id(category)
    if fit_exercise_name(category, name) is None and category != name:
        raise UnknownExerciseError(f"{category}/{name} has no FIT exercise_name in the FIT profile")


def validate_all(pairs: list[tuple[str, str]]) -> None:
    """Validate many pairs and report every unknown one at once."""
    problems = []
    for category, name in dict.fromkeys(pairs):
        try:
            validate_exercise(category, name)
        except UnknownExerciseError as exc:
            problems.append(str(exc))
    if problems:
        raise UnknownExerciseError("; ".join(problems))


def validate_sessions(sessions: Iterable[Session]) -> None:
    """Validate every exercise of the sessions' steps, reporting every unknown one at once."""
    validate_all(
        [
            (st.exercise.category, st.exercise.name)
            for s in sessions
            for b in s.blocks
            for st in b.steps
        ]
    )


def fit_category_id(category: str) -> int:
    """FIT ``exercise_category`` enum value for a Garmin Connect category string."""
    wanted = category.lower()
    for value, label in Profile["types"]["exercise_category"].items():
        if label == wanted:
            return int(value)
    raise UnknownExerciseError(f"{category} is not a FIT exercise_category")


def fit_exercise_name(category: str, name: str) -> int | None:
    """FIT ``<category>_exercise_name`` value (GC ``_3_WAY_X`` is FIT ``3_way_x``), else None."""
    table = Profile["types"].get(f"{category.lower()}_exercise_name", {})
    wanted = name.lower().lstrip("_")
    for value, label in table.items():
        if label == wanted:
            return int(value)
    return None
