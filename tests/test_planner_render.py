"""Renderers: Markdown, HTML, JSON, iCalendar, FIT workout files and Garmin Connect JSON."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta

import pytest
from garmin_fit_sdk import Decoder, Stream
from garminconnect.exercises import EXERCISES
from icalendar import Calendar

from evenstride.planner import (
    MARKER,
    Assessment,
    AthleteProfile,
    CoachOverrides,
    ExerciseRef,
    Plan,
    RunEvidence,
    UnknownExerciseError,
    build_plan,
    content_hash,
    fit_workout,
    fit_workouts,
    garmin_workout_payloads,
    plan_from_json,
    plan_to_html,
    plan_to_ics,
    plan_to_json,
    plan_to_markdown,
)
from evenstride.planner.catalog import fit_category_id, fit_exercise_name

START = date(2025, 1, 6)
TODAY = START + timedelta(days=28)  # week 5: strength phase
CATALOGUE = {(e["category"], e["exercise"]) for e in EXERCISES}


def left_shifted() -> Assessment:
    """An athlete whose trend shifted to the left: d = +1.8 pp (orange), detector-confirmed."""
    runs = tuple(RunEvidence(f"run-{i}", TODAY - timedelta(days=2 * i + 1), 1.8) for i in range(7))
    return Assessment(
        d=1.8,
        zone="orange",
        te=0.28,
        mdc=0.78,
        state="shifted_left",
        magnitude=1.1,
        since=START - timedelta(days=20),
        supporting_runs=runs,
        comparable_runs=9,
        clean_minutes=410.0,
        sensor="HRM-Pro Plus",
        has_balance_sensor=True,
    )


def athlete(name: str = "Ann Example", experience: str = "experienced") -> AthleteProfile:
    return AthleteProfile(
        athlete=name,
        experience=experience,
        start_date=START,
        weekdays=("tue", "thu", "sat"),
        equipment=frozenset({"band", "dumbbells", "box_bench"}),
    )


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build_plan(left_shifted(), athlete(), today=TODAY, weeks=2)


def all_plans() -> list[Plan]:
    """Plans across phases, deloads and modules, so renderers meet every structure."""
    out = []
    for week in (1, 5, 8, 9):
        out.append(
            build_plan(
                left_shifted(),
                athlete(),
                today=START + timedelta(days=7 * (week - 1)),
                weeks=1,
                overrides=CoachOverrides(modules={"foot_ankle": True, "asymmetric_pattern": True}),
            )
        )
    out.append(build_plan(replace(left_shifted(), d=0.2, zone="green"), athlete(), today=START))
    return out


# ---- decoding helpers (independent of the renderers) -------------------------------------
def decode_fit(data: bytes) -> dict:
    messages, errors = Decoder(Stream.from_byte_array(bytearray(data))).read()
    assert errors == []
    return messages


def fit_side(step: dict) -> str:
    name = step.get("wkt_step_name", "")
    for side in ("LEFT", "RIGHT"):
        if name.startswith(side):
            return side.lower()
    return "both"


def execute_fit(steps: list[dict]) -> list[dict]:
    """Run the FIT step list like a watch: follow repeat steps, return exercise steps done."""
    done, i, counters = [], 0, {}
    while i < len(steps):
        s = steps[i]
        if s["duration_type"] == "repeat_until_steps_cmplt":
            counters[i] = counters.get(i, 1) + 1
            if counters[i] <= s["target_value"]:
                i = s["duration_value"]
                continue
            counters[i] = 1
        elif s.get("intensity") != "rest":
            done.append(s)
        i += 1
    return done


def flatten_garmin(steps: list[dict]) -> list[dict]:
    out = []
    for s in steps:
        out.append(s)
        if s["type"] == "RepeatGroupDTO":
            out.extend(flatten_garmin(s["workoutSteps"]))
    return out


def execute_garmin(steps: list[dict]) -> list[dict]:
    done = []
    for s in steps:
        if s["type"] == "RepeatGroupDTO":
            for _ in range(s["numberOfIterations"]):
                done.extend(execute_garmin(s["workoutSteps"]))
        elif s["stepType"]["stepTypeKey"] != "rest":
            done.append(s)
    return done


def garmin_side(step: dict) -> str:
    text = step.get("description", "")
    for side in ("LEFT", "RIGHT"):
        if text.startswith(f"{side} leg"):
            return side.lower()
    return "both"


def planned_sets(session) -> Counter:
    return Counter(
        {
            (s.exercise.category, s.exercise.name, s.exercise.display, s.side, b.kind): s.sets
            for b in session.blocks
            for s in b.steps
        }
    )


# ---- key acceptance ----------------------------------------------------------------------
def test_left_shift_puts_more_unilateral_sets_on_the_left_first_everywhere(plan):
    assert plan.focus_side == "left"
    # Markdown: every unilateral exercise shows LEFT (focus) first with more sets than RIGHT.
    md = plan_to_markdown(plan)
    for session in plan.sessions:
        main = next(b for b in session.blocks if b.kind == "main")
        pairs = [s for s in main.steps if s.side != "both"]
        for left, right in zip(pairs[::2], pairs[1::2], strict=True):
            row_l = f"| {left.exercise.display} | LEFT (focus) | {left.sets} |"
            row_r = f"| {right.exercise.display} | RIGHT | {right.sets} |"
            assert left.sets > right.sets
            assert row_l in md and row_r in md and md.index(row_l) < md.index(row_r)
    # FIT: executed like a watch, the left leg does more sets and always starts each exercise.
    for session in plan.sessions:
        executed = execute_fit(decode_fit(fit_workout(plan, session))["workout_step_mesgs"])
        _assert_left_first_and_more(
            [(s["exercise_category"], s.get("exercise_name"), fit_side(s)) for s in executed]
        )
    # Garmin JSON: same when the repeat groups are expanded.
    for payload in garmin_workout_payloads(plan):
        steps = payload["workout"]["workoutSegments"][0]["workoutSteps"]
        executed = execute_garmin(steps)
        _assert_left_first_and_more(
            [(s["category"], s["exerciseName"], garmin_side(s)) for s in executed]
        )


def _assert_left_first_and_more(executed: list[tuple]) -> None:
    per_side = Counter(executed)
    first_side: dict[tuple, str] = {}
    for cat, name, side in executed:
        if side != "both":
            first_side.setdefault((cat, name), side)
    assert first_side, "some unilateral work"
    for (cat, name), side in first_side.items():
        assert side == "left"
        assert per_side[(cat, name, "left")] > per_side[(cat, name, "right")]


# ---- Markdown and HTML -------------------------------------------------------------------
def test_markdown_has_sessions_evidence_rules_and_caveats(plan):
    md = plan_to_markdown(plan)
    assert md.startswith("# Strength plan for Ann Example")
    assert "focus side LEFT; band orange" in md
    for session in plan.sessions:
        assert f"{session.date.strftime('%a %Y-%m-%d')}: {session.name}" in md
    assert "| d = GCT balance left % - 50 | +1.8 pp |" in md
    assert "| MDC95 | 0.78 pp |" in md and "| Trend detector | shifted_left |" in md
    first_run = plan.explanation.evidence.runs[0]
    assert f"{first_run.id} {first_run.date} (+1.8 pp)" in md
    for rule in plan.explanation.rules:
        assert f"`{rule.id}`" in md
    assert "coaching assumption, not a proven fact" in md
    assert "not proven to change GCT balance" in md
    assert "**Warm-up**" in md and "**Cool-down**" in md and "**Accessory (focus side)**" in md


def test_html_is_self_contained_and_escaped():
    tricky = build_plan(left_shifted(), athlete("<script>alert('x')</script> & Co"), today=TODAY)
    page = plan_to_html(tricky)
    assert page.startswith("<!DOCTYPE html>")
    assert (
        "<script>" not in page
        and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; Co" in page
    )
    assert "http://" not in page and "https://" not in page and "<link" not in page
    assert page.count("<section>") == len(tricky.sessions)
    assert 'class="focus"' in page and "not proven to change GCT balance" in page


# ---- JSON --------------------------------------------------------------------------------
def test_json_round_trips_and_is_stable():
    for p in all_plans():
        text = plan_to_json(p)
        assert plan_from_json(text) == p
        assert Plan.from_json(p.to_json()) == p
        assert json.loads(text)["schema"] == 1
        assert plan_to_json(plan_from_json(text)) == text
    again = build_plan(left_shifted(), athlete(), today=TODAY, weeks=2)
    assert plan_to_json(again) == plan_to_json(
        build_plan(left_shifted(), athlete(), today=TODAY, weeks=2)
    )


def test_json_rejects_wrong_types(plan):
    data = json.loads(plan.to_json())
    data["sessions"][0]["blocks"][0]["steps"][0]["side"] = "middle"
    with pytest.raises(ValueError):
        Plan.from_json(json.dumps(data))


# ---- iCalendar ---------------------------------------------------------------------------
def test_ics_has_one_event_per_session_with_stable_uids(plan):
    cal = Calendar.from_ical(plan_to_ics(plan))
    events = cal.walk("VEVENT")
    assert len(events) == len(plan.sessions)
    uids = [str(e["UID"]) for e in events]
    assert len(set(uids)) == len(uids)
    for event, session in zip(events, plan.sessions, strict=True):
        assert event.decoded("DTSTART") == session.date
        assert event.decoded("DTEND") == session.date + timedelta(days=1)
        assert session.name in str(event["SUMMARY"])
        assert str(event["X-EVENSTRIDE-CONTENT-HASH"]) == content_hash(plan.athlete, session)
        assert "LEFT (focus)" in str(event["DESCRIPTION"])
    assert plan_to_ics(plan) == plan_to_ics(
        build_plan(left_shifted(), athlete(), today=TODAY, weeks=2)
    )
    # Content changes (now right-shifted): same dates -> same UIDs, so a re-import updates.
    changed = build_plan(replace(left_shifted(), d=-1.8), athlete(), today=TODAY, weeks=2)
    events2 = Calendar.from_ical(plan_to_ics(changed)).walk("VEVENT")
    assert [str(e["UID"]) for e in events2] == uids
    assert [str(e["X-EVENSTRIDE-CONTENT-HASH"]) for e in events2] != [
        str(e["X-EVENSTRIDE-CONTENT-HASH"]) for e in events
    ]


# ---- FIT ---------------------------------------------------------------------------------
def test_fit_round_trip_step_by_step():
    for p in all_plans():
        files = fit_workouts(p)
        assert len(files) == len(p.sessions)
        for session in p.sessions:
            m = decode_fit(fit_workout(p, session))
            (file_id,) = m["file_id_mesgs"]
            (workout,) = m["workout_mesgs"]
            steps = m["workout_step_mesgs"]
            assert file_id["type"] == "workout"
            assert (workout["sport"], workout["sub_sport"]) == ("training", "strength_training")
            assert workout["num_valid_steps"] == len(steps)
            assert content_hash(p.athlete, session) in workout["wkt_description"]
            assert [s["message_index"] for s in steps] == list(range(len(steps)))
            for i, s in enumerate(steps):
                if s["duration_type"] == "repeat_until_steps_cmplt":
                    assert 0 <= s["duration_value"] < i and s["target_value"] >= 2
                    assert steps[i - 1]["duration_type"] != "repeat_until_steps_cmplt"
                elif s["intensity"] == "rest":
                    assert s["duration_type"] == "time" and s["duration_value"] >= 1000
                else:
                    assert s["duration_type"] in ("reps", "time")
            # every planned set is executed exactly once, with the right FIT enums and dose
            executed = execute_fit(steps)
            got = Counter()
            want = planned_sets(session)
            lookup = {(k[0], k[1], k[2], k[3]): k for k in want}
            for s in executed:
                match = [
                    k
                    for k in lookup
                    if fit_category_id(k[0]) == _category_id(s)
                    and fit_exercise_name(k[0], k[1]) == s.get("exercise_name")
                    and k[2][:30] in s["wkt_step_name"]
                    and fit_side(s) == k[3]
                ]
                assert len(match) >= 1, s
                got[lookup[match[0]]] += 1
                step = _plan_step(session, match[0])
                if step.reps is not None:
                    assert (s["duration_type"], s["duration_value"]) == ("reps", step.reps)
                else:
                    assert (s["duration_type"], s["duration_value"]) == (
                        "time",
                        step.duration_s * 1000,
                    )
            assert got == want


def _category_id(step: dict) -> int:
    value = step["exercise_category"]
    return value if isinstance(value, int) else fit_category_id(value.upper())


def _plan_step(session, key):
    return next(
        s
        for b in session.blocks
        for s in b.steps
        if (s.exercise.category, s.exercise.name, s.exercise.display, s.side) == key
    )


def test_fit_first_main_exercise_structure(plan):
    """Orange 3:2 -> one LEFT-only round, then 2 x (LEFT, RIGHT, rest) as a repeat step."""
    session = plan.sessions[0]
    steps = decode_fit(fit_workout(plan, session))["workout_step_mesgs"]
    first_main = next(i for i, s in enumerate(steps) if s.get("intensity") == "active")
    left, rest, left2, right, rest2, repeat = steps[first_main : first_main + 6]
    assert left["wkt_step_name"].startswith("LEFT") and left2["wkt_step_name"].startswith("LEFT")
    assert right["wkt_step_name"].startswith("RIGHT")
    assert left["exercise_category"] == "deadlift" and left["exercise_name"] == 14
    assert (left["duration_type"], left["duration_value"]) == ("reps", 6)
    assert rest["intensity"] == rest2["intensity"] == "rest"
    assert repeat["duration_type"] == "repeat_until_steps_cmplt"
    assert (repeat["duration_value"], repeat["target_value"]) == (left2["message_index"], 2)


def test_category_only_exercise_has_no_fit_exercise_name():
    power = build_plan(left_shifted(), athlete(), today=START + timedelta(days=63), weeks=1)
    bounding = [
        s
        for session in power.sessions
        for s in decode_fit(fit_workout(power, session))["workout_step_mesgs"]
        if s.get("wkt_step_name", "").endswith(("Bounding", "Single-leg hops"))
    ]
    assert bounding and all("exercise_name" not in s for s in bounding)
    assert all(s["exercise_category"] == "plyo" for s in bounding)


# ---- Garmin Connect JSON -----------------------------------------------------------------
def test_garmin_json_shape_and_catalogue():
    for p in all_plans():
        payloads = garmin_workout_payloads(p)
        assert [x["date"] for x in payloads] == [s.date.isoformat() for s in p.sessions]
        for payload, session in zip(payloads, p.sessions, strict=True):
            h = content_hash(p.athlete, session)
            assert payload["marker"] == MARKER and payload["content_hash"] == h
            w = payload["workout"]
            assert w["sportType"]["sportTypeId"] == 5
            assert MARKER in w["workoutName"] and payload["tag"] in w["description"]
            (segment,) = w["workoutSegments"]
            assert segment["sportType"]["sportTypeId"] == 5
            flat = flatten_garmin(segment["workoutSteps"])
            assert [s["stepOrder"] for s in flat] == list(range(1, len(flat) + 1))
            assert len(flat) <= 50
            for s in flat:
                if s["type"] == "RepeatGroupDTO":
                    assert s["stepType"]["stepTypeKey"] == "repeat"
                    assert s["endCondition"]["conditionTypeKey"] == "iterations"
                    assert s["numberOfIterations"] >= 2
                    assert s["endConditionValue"] == s["numberOfIterations"]
                    exercises = [x for x in s["workoutSteps"] if "category" in x]
                    if len(exercises) == 2 and session.focus_side:
                        sides = [garmin_side(x) for x in exercises]
                        assert sides == [
                            session.focus_side,
                            "right" if sides[0] == "left" else "left",
                        ]
                elif s["stepType"]["stepTypeKey"] == "rest":
                    assert "category" not in s and s["endCondition"]["conditionTypeKey"] == "time"
                else:
                    assert (s["category"], s["exerciseName"]) in CATALOGUE
                    assert s["endCondition"]["conditionTypeKey"] in ("reps", "time")
            executed = Counter(
                (x["category"], x["exerciseName"], garmin_side(x))
                for x in execute_garmin(segment["workoutSteps"])
            )
            want = Counter()
            for (cat, name, _display, side, _kind), sets in planned_sets(session).items():
                want[(cat, name, side)] += sets
            assert executed == want


def test_payloads_skip_past_sessions_and_hash_tracks_content(plan):
    later = plan.sessions[2].date
    replanned = build_plan(
        left_shifted(), athlete(), today=later, weeks=2, past_sessions=plan.sessions[:2]
    )
    payloads = garmin_workout_payloads(replanned)
    assert all(p["date"] >= later.isoformat() for p in payloads)
    before = {p["date"]: p["content_hash"] for p in garmin_workout_payloads(plan)}
    after = {p["date"]: p["content_hash"] for p in payloads}
    assert all(after[d] == before[d] for d in after if d in before)
    changed = build_plan(
        replace(left_shifted(), d=3.0, zone="red"), athlete(), today=TODAY, weeks=2
    )
    assert {p["content_hash"] for p in garmin_workout_payloads(changed)}.isdisjoint(before.values())


def test_unknown_exercise_is_rejected_before_anything_is_produced(plan):
    bogus = ExerciseRef("bogus", "SQUAT", "MOONWALK_SQUAT", "Moonwalk squat")
    session = plan.sessions[-1]
    blocks = list(session.blocks)
    main = next(i for i, b in enumerate(blocks) if b.kind == "main")
    steps = list(blocks[main].steps)
    steps[0] = replace(steps[0], exercise=bogus)
    blocks[main] = replace(blocks[main], steps=tuple(steps))
    broken = replace(plan, sessions=plan.sessions[:-1] + (replace(session, blocks=tuple(blocks)),))
    with pytest.raises(UnknownExerciseError, match="SQUAT/MOONWALK_SQUAT"):
        garmin_workout_payloads(broken)
    with pytest.raises(UnknownExerciseError, match="MOONWALK_SQUAT"):
        fit_workout(broken, broken.sessions[-1])
