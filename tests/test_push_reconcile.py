"""The pure push reconciliation: desired sessions vs evenstride's workouts on Garmin -> actions."""

from __future__ import annotations

from datetime import date

import pytest

from evenstride.planner import UnknownExerciseError
from evenstride.planner.reconcile import (
    Desired,
    Remote,
    date_of,
    desired_from_payloads,
    hash_of,
    reconcile,
    remote_workouts,
    workout_exercises,
)

TODAY = date(2024, 4, 15)
D1, D2, D3 = date(2024, 4, 16), date(2024, 4, 18), date(2024, 4, 22)


def want(day: date, h: str) -> Desired:
    return Desired(day, h, f"[evenstride] {day} Session", {"workoutName": "x"})


def ours(wid: int, day: date, h: str, *sched: tuple[int, date]) -> Remote:
    return Remote(wid, f"[evenstride] {day} Session", h, day, tuple(sched))


def kinds(rec) -> list[tuple[str, str]]:
    return [(a.kind, a.date.isoformat()) for a in rec.actions]


def test_nothing_on_garmin_creates_every_session_in_date_order() -> None:
    rec = reconcile([want(D2, "b" * 16), want(D1, "a" * 16)], [], TODAY)
    assert kinds(rec) == [("create", "2024-04-16"), ("create", "2024-04-18")]
    assert [g.outcome for g in rec.groups] == ["created", "created"]


def test_everything_in_place_is_unchanged_with_no_action() -> None:
    rec = reconcile([want(D1, "a" * 16)], [ours(7, D1, "a" * 16, (70, D1))], TODAY)
    assert rec.actions == () and rec.groups[0].outcome == "unchanged"
    assert rec.groups[0].keeper == 7


def test_upload_without_schedule_is_scheduled_not_uploaded_again() -> None:
    rec = reconcile([want(D1, "a" * 16)], [ours(7, D1, "a" * 16)], TODAY)
    assert [(a.kind, a.workout_id) for a in rec.actions] == [("schedule", 7)]
    assert rec.groups[0].outcome == "created"


def test_lost_schedule_answer_twice_on_the_day_unschedules_the_extra() -> None:
    rec = reconcile([want(D1, "a" * 16)], [ours(7, D1, "a" * 16, (70, D1), (71, D1))], TODAY)
    assert [(a.kind, a.schedule_id) for a in rec.actions] == [("unschedule", 71)]
    assert rec.groups[0].outcome == "repaired"


def test_duplicate_upload_keeps_the_scheduled_one() -> None:
    remote = [ours(7, D1, "a" * 16), ours(8, D1, "a" * 16, (80, D1))]
    rec = reconcile([want(D1, "a" * 16)], remote, TODAY)
    assert [(a.kind, a.workout_id) for a in rec.actions] == [("delete", 7)]
    assert rec.groups[0].keeper == 8


def test_changed_session_is_created_before_the_old_one_is_removed() -> None:
    rec = reconcile([want(D1, "b" * 16)], [ours(7, D1, "a" * 16, (70, D1))], TODAY)
    assert [(a.kind, a.workout_id, a.schedule_id) for a in rec.actions] == [
        ("create", None, None),
        ("unschedule", 7, 70),
        ("delete", 7, None),
    ]
    assert rec.groups[0].outcome == "replaced"


def test_half_done_replacement_is_finished() -> None:
    remote = [ours(7, D1, "a" * 16, (70, D1)), ours(9, D1, "b" * 16)]  # new one not scheduled
    rec = reconcile([want(D1, "b" * 16)], remote, TODAY)
    assert [(a.kind, a.workout_id) for a in rec.actions] == [
        ("schedule", 9),
        ("unschedule", 7),
        ("delete", 7),
    ]
    assert rec.groups[0].outcome == "replaced"


def test_sessions_gone_from_the_plan_are_removed_past_ones_never() -> None:
    past = ours(3, date(2024, 4, 11), "p" * 16, (30, date(2024, 4, 11)))
    moved_to_past = ours(4, D2, "q" * 16, (40, date(2024, 4, 12)))  # the athlete did it early
    gone = ours(5, D3, "c" * 16, (50, D3))
    rec = reconcile([want(D1, "a" * 16)], [past, moved_to_past, gone], TODAY)
    assert kinds(rec) == [("create", "2024-04-16"), ("unschedule", "2024-04-22"),
                          ("delete", "2024-04-22")]  # fmt: skip
    assert [g.outcome for g in rec.groups] == ["created", "removed"]
    assert rec.skipped_past == (date(2024, 4, 11), D2)
    assert all(a.workout_id not in (3, 4) for a in rec.actions)


def test_a_session_the_athlete_moved_to_another_future_day_stays() -> None:
    rec = reconcile([want(D1, "a" * 16)], [ours(7, D1, "a" * 16, (70, D2))], TODAY)
    assert rec.actions == () and rec.groups[0].outcome == "unchanged"


def test_reading_garmin_finds_ours_by_marker_and_dedupes_calendar_items() -> None:
    workouts = [
        {"workoutId": 1, "workoutName": "Tempo 5k", "description": "mine"},
        {"workoutId": 2, "workoutName": "[evenstride] 2024-04-16 A",
         "description": "[evenstride:0123456789abcdef] A, week 1"},
        {"workoutId": 3, "workoutName": "renamed by the athlete",
         "description": "[evenstride:fedcba9876543210] B"},
    ]  # fmt: skip
    item = {"id": 20, "itemType": "workout", "workoutId": 2, "date": "2024-04-16"}
    calendar = [
        item,
        dict(item),  # the same entry again from the neighbouring month's view
        {"id": 10, "itemType": "workout", "workoutId": 1, "date": "2024-04-16"},
        {"id": 30, "itemType": "workout", "workoutId": 3, "date": "2024-04-19"},
        {"id": 40, "itemType": "workout", "workoutId": 4, "date": "2024-04-20",
         "title": "[evenstride] 2024-04-20 C"},  # a dangling entry of a deleted workout
        {"id": 99, "itemType": "activity", "date": "2024-04-16"},
    ]  # fmt: skip
    found = {r.workout_id: r for r in remote_workouts(workouts, calendar)}
    assert set(found) == {2, 3, 4}
    assert found[2].content_hash == "0123456789abcdef" and found[2].schedules == ((20, D1),)
    assert found[3].session_date == date(2024, 4, 19)  # no date in the name: the calendar's
    assert found[4].content_hash is None and found[4].session_date == date(2024, 4, 20)


def test_tag_and_name_parsing() -> None:
    assert hash_of("x", "[evenstride:0123456789abcdef] y") == "0123456789abcdef"
    assert hash_of("[evenstride] 2024-04-16 A", "") is None
    assert date_of("[evenstride] 2024-04-16 A") == D1 and date_of("[evenstride] 2024-02-30") is None


def test_every_exercise_of_the_json_is_validated_including_repeat_groups() -> None:
    step = {"type": "ExecutableStepDTO", "category": "PLANK", "exerciseName": "SIDE_PLANK"}
    bad = {"type": "ExecutableStepDTO", "category": "PLYO", "exerciseName": "BOUNDING"}
    workout = {"workoutSegments": [{"workoutSteps": [
        step, {"type": "RepeatGroupDTO", "workoutSteps": [dict(step), bad]},
        {"type": "ExecutableStepDTO", "stepType": {"stepTypeKey": "rest"}},
    ]}]}  # fmt: skip
    assert workout_exercises(workout) == [("PLANK", "SIDE_PLANK")] * 2 + [("PLYO", "BOUNDING")]
    payload = {"date": "2024-04-16", "content_hash": "a" * 16, "workout_name": "n",
               "workout": workout}  # fmt: skip
    with pytest.raises(UnknownExerciseError, match="PLYO/BOUNDING"):
        desired_from_payloads([payload], TODAY)
    past = dict(payload, date="2024-04-10")
    assert desired_from_payloads([past], TODAY) == []  # past sessions are not even looked at
