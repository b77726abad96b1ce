"""Planner rules: bands, dose, phases, deload, regression, overrides, modules, explanation."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from evenstride.planner import (
    Assessment,
    AthleteProfile,
    CoachOverrides,
    ConfirmedBand,
    Plan,
    RunEvidence,
    UnknownExerciseError,
    band_for,
    build_plan,
    rules_tables,
)
from evenstride.planner import rules as R
from evenstride.planner.catalog import (
    fit_category_id,
    fit_exercise_name,
    is_category_only,
    validate_exercise,
)
from evenstride.planner.library import EXERCISES, exercise
from evenstride.planner.structure import session_step_count

START = date(2025, 1, 6)  # a Monday
ALL_EQUIPMENT = frozenset({"band", "dumbbells", "box_bench"})
D_FOR_BAND = {"green": 0.4, "orange": 1.6, "red": 3.1}


def assessment(d: float | None = 1.6, **kw) -> Assessment:
    runs = tuple(RunEvidence(f"run-{i}", START - timedelta(days=3 * i), d) for i in range(6))
    base = dict(
        d=d,
        zone=band_for(d) if d is not None else None,
        te=0.3,
        mdc=0.83,
        state="stable",
        supporting_runs=runs,
        comparable_runs=8,
        clean_minutes=320.0,
        sensor="HRM-Pro",
        has_balance_sensor=True,
    )
    base.update(kw)
    return Assessment(**base)


def profile(experience: str = "experienced", **kw) -> AthleteProfile:
    base = dict(athlete="ann", experience=experience, start_date=START, equipment=ALL_EQUIPMENT)
    base.update(kw)
    return AthleteProfile(**base)


def day_of_week(week: int) -> date:
    return START + timedelta(days=7 * (week - 1))


def main_steps(session):
    return next(b for b in session.blocks if b.kind == "main").steps


def block(session, kind):
    return next((b for b in session.blocks if b.kind == kind), None)


# ---- bands -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("d", "band"),
    [
        (0.0, "green"),
        (0.7, "green"),
        (-0.74, "green"),
        (0.75, "orange"),
        (-0.8, "orange"),
        (2.2, "orange"),
        (2.24, "orange"),
        (2.25, "red"),
        (-5.0, "red"),
    ],
)
def test_band_follows_garmin_zones_on_displayed_value(d, band):
    assert band_for(d) == band


# ---- dose x phase x experience x sessions per week ---------------------------------------
PHASE_WEEK = {1: 2, 2: 5, 3: 10}  # weeks that are no deload week for either experience


@pytest.mark.parametrize("band", ["green", "orange", "red"])
@pytest.mark.parametrize("phase", [1, 2, 3])
@pytest.mark.parametrize("experience", ["beginner", "experienced"])
@pytest.mark.parametrize("per_week", [None, 2, 3])
def test_dose_phase_and_sessions_follow_the_tables(band, phase, experience, per_week):
    week = PHASE_WEEK[phase]
    plan = build_plan(
        assessment(D_FOR_BAND[band]),
        profile(experience, sessions_per_week=per_week),
        today=day_of_week(week),
        weeks=1,
    )
    expected_per_week = per_week or {"beginner": 2, "experienced": 3}[experience]
    assert len(plan.sessions) == expected_per_week
    row = R.dose_for(band, experience)
    expected_phase = 2 if band == "red" and phase == 3 else phase
    focus = None if band == "green" else "left"
    assert plan.focus_side == focus
    for s in plan.sessions:
        assert (s.week, s.phase, s.deload) == (week, expected_phase, False)
        per_side = [st for st in main_steps(s) if st.side != "both"]
        assert per_side, "every session has unilateral work"
        for first, second in zip(per_side[::2], per_side[1::2], strict=True):
            assert first.exercise == second.exercise
            assert (first.sets, second.sets) == (row.focus_sets, row.other_sets)
            if focus:
                assert (first.side, second.side) == ("left", "right")
        assert (block(s, "accessory") is not None) == row.accessory_block
        if band == "red":
            assert all(st.exercise.category != "PLYO" for st in main_steps(s))
            assert any("physiotherapist" in n for n in s.notes)
    ids = plan.explanation.rule_ids()
    assert ("RED-NO-PLYO" in ids) == (band == "red")
    assert ("ACCESSORY-FOCUS" in ids) == row.accessory_block


@pytest.mark.parametrize(
    ("week", "name"),
    [
        (1, "control"),
        (4, "control"),
        (5, "strength"),
        (8, "strength"),
        (9, "power"),
        (12, "power"),
        (13, "control"),
        (21, "power"),
    ],
)
def test_phase_table_by_week_since_start(week, name):
    phase, _, level = R.scheduled_phase(week)
    assert R.phase_row(phase).name == name
    assert level == (1 if week <= 12 else 2)


def test_second_cycle_uses_advanced_variants_and_more_reps():
    first = build_plan(assessment(), profile(), today=day_of_week(2), weeks=1)
    second = build_plan(assessment(), profile(), today=day_of_week(14), weeks=1)
    keys1 = {st.exercise.key for s in first.sessions for st in main_steps(s)}
    keys2 = {st.exercise.key for s in second.sessions for st in main_steps(s)}
    assert "partial_single_leg_squat" in keys1 and "one_legged_squat" in keys2
    reps1 = {st.reps for s in first.sessions for st in main_steps(s) if st.reps}
    reps2 = {st.reps for s in second.sessions for st in main_steps(s) if st.reps}
    assert reps1 == {10} and reps2 == {12}
    assert second.level == 2 and "PHASE-LEVEL" in second.explanation.rule_ids()


# ---- focus side --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"comparable_runs": 4}, "DATA-INSUFFICIENT"),
        ({"has_balance_sensor": False}, "DATA-INSUFFICIENT"),
        ({"d": None, "zone": None}, "DATA-INSUFFICIENT"),
        ({"d": 0.6, "zone": "green"}, "FOCUS-NONE-GREEN"),
    ],
)
def test_no_focus_side_without_support_or_inside_green(change, why):
    plan = build_plan(replace(assessment(1.6), **change), profile(), today=START, weeks=1)
    assert plan.focus_side is None
    assert why in plan.explanation.rule_ids()
    assert "DOSE-SYMMETRIC" in plan.explanation.rule_ids()
    for s in plan.sessions:
        per_side = [st for st in main_steps(s) if st.side != "both"]
        assert {st.sets for st in per_side} == {3}
        assert block(s, "accessory") is None


def test_right_side_longer_contact_gives_right_focus():
    plan = build_plan(assessment(-1.6), profile(), today=START, weeks=1)
    assert plan.focus_side == "right"
    assert all(main_steps(s)[0].side == "right" for s in plan.sessions)


def test_band_change_waits_for_the_detector():
    history = (ConfirmedBand(START - timedelta(days=30), "orange", 1.5),)
    a = assessment(3.0, zone="red", confirmed_bands=history)
    plan = build_plan(a, profile(), today=START, weeks=1)
    assert plan.band == "orange"
    assert {"BAND-CONFIRMED", "BAND-PENDING"} <= set(plan.explanation.rule_ids())
    first, second = main_steps(plan.sessions[0])[:2]
    assert (first.sets, second.sets) == (3, 2)
    confirmed = history + (ConfirmedBand(START - timedelta(days=2), "red", 3.0),)
    plan = build_plan(replace(a, confirmed_bands=confirmed), profile(), today=START, weeks=1)
    assert plan.band == "red"
    first, second = main_steps(plan.sessions[0])[:2]
    assert (first.sets, second.sets) == (3, 1)


# ---- deload ------------------------------------------------------------------------------
@pytest.mark.parametrize(("experience", "deload_week"), [("beginner", 3), ("experienced", 4)])
def test_deload_week_drops_one_set_and_adds_no_new_exercise(experience, deload_week):
    before = build_plan(
        assessment(), profile(experience), today=day_of_week(deload_week - 1), weeks=1
    )
    deload = build_plan(assessment(), profile(experience), today=day_of_week(deload_week), weeks=1)
    assert all(s.deload for s in deload.sessions)
    assert not any(s.deload for s in before.sessions)
    for b, d in zip(before.sessions, deload.sessions, strict=True):
        assert [st.exercise for st in main_steps(d)] == [st.exercise for st in main_steps(b)]
        assert [st.notes for st in main_steps(d)] == [st.notes for st in main_steps(b)]
        assert [st.sets for st in main_steps(d)] == [max(1, st.sets - 1) for st in main_steps(b)]
    assert "DELOAD" in deload.explanation.rule_ids()


def test_beginner_deload_at_phase_boundary_keeps_previous_exercises():
    week9 = build_plan(assessment(), profile("beginner"), today=day_of_week(9), weeks=1)
    assert all(s.deload and s.phase == 2 for s in week9.sessions)
    week10 = build_plan(assessment(), profile("beginner"), today=day_of_week(10), weeks=1)
    assert all(not s.deload and s.phase == 3 for s in week10.sessions)


def test_eyes_closed_variant_from_week_three_of_control():
    plan = build_plan(assessment(), profile(), today=START, weeks=4)
    balance = {
        s.week: st.notes
        for s in plan.sessions
        for st in main_steps(s)
        if st.exercise.key == "single_leg_balance"
    }
    assert "eyes closed" not in balance[2] and "eyes closed" in balance[3]


# ---- regression / progression driven by the detector -------------------------------------
def test_worsening_during_phase_two_steps_back_one_phase():
    worse = assessment(2.0, state="shifted_left", magnitude=1.2, since=day_of_week(6))
    plan = build_plan(worse, profile(), today=day_of_week(7), weeks=3)
    assert {s.phase for s in plan.sessions} == {1}
    assert "TREND-REGRESS" in plan.explanation.rule_ids()
    assert all(
        "reduce range or load" in (st.notes or "") for s in plan.sessions for st in main_steps(s)
    )
    steady = build_plan(assessment(2.0), profile(), today=day_of_week(7), weeks=3)
    assert [s.phase for s in steady.sessions] == [2] * 6 + [3] * 3
    assert "TREND-PROGRESS" in steady.explanation.rule_ids()


def test_worsening_in_phase_one_holds_phase_one():
    worse = assessment(-2.0, state="shifted_right", magnitude=-1.1, since=day_of_week(3))
    plan = build_plan(worse, profile(), today=day_of_week(5), weeks=2)
    assert {s.phase for s in plan.sessions} == {1}


@pytest.mark.parametrize(
    ("state", "magnitude", "since_week", "tr"),
    [
        ("returning", -0.9, 6, "TREND-PROGRESS"),  # improving
        ("shifted_right", -1.2, 6, "TREND-PROGRESS"),  # shift toward symmetry for d > 0
        ("shifted_left", 0.5, 6, "TREND-PROGRESS"),  # smaller than the MDC
        ("shifted_left", 1.2, -2, "TREND-PRE-PROGRAM"),  # before the program started
    ],
)
def test_no_regression_unless_worse_beyond_mdc_during_program(state, magnitude, since_week, tr):
    a = assessment(2.0, state=state, magnitude=magnitude, since=day_of_week(since_week))
    plan = build_plan(a, profile(), today=day_of_week(7), weeks=1)
    assert {s.phase for s in plan.sessions} == {2}
    assert tr in plan.explanation.rule_ids()


# ---- coach overrides, equipment, modules -------------------------------------------------
def test_coach_overrides_focus_phase_dose_swaps_and_modules():
    overrides = CoachOverrides(
        focus_side="right",
        phase=3,
        dose=(4, 2),
        swaps={"single_leg_hops": "PLYO/BOX_JUMP", "single_leg_rdl": "bulgarian_split_squat"},
        modules={"asymmetric_pattern": True},
    )
    plan = build_plan(assessment(1.6), profile(), today=START, weeks=1, overrides=overrides)
    assert plan.focus_side == "right" and {s.phase for s in plan.sessions} == {3}
    s = plan.sessions[0]
    per_side = [st for st in main_steps(s) if st.side != "both"]
    assert per_side[0].side == "right" and (per_side[0].sets, per_side[1].sets) == (4, 2)
    keys = {st.exercise.key for st in main_steps(s)}
    assert "coach:PLYO/BOX_JUMP" in keys and "single_leg_rdl" not in keys
    assert block(s, "asymmetric_pattern") is not None
    assert {"FOCUS-COACH", "PHASE-COACH", "DOSE-COACH", "SWAP-COACH", "MODULE-ASYMMETRIC"} <= set(
        plan.explanation.rule_ids()
    )


def test_coach_swap_to_unknown_exercise_raises():
    overrides = CoachOverrides(swaps={"reverse_lunge": "LUNGE/MOONWALK_LUNGE"})
    with pytest.raises(UnknownExerciseError, match="MOONWALK_LUNGE"):
        build_plan(assessment(), profile(), today=START, overrides=overrides)


def test_missing_equipment_gets_listed_substitutes():
    bare = profile(equipment=frozenset())
    plan = build_plan(assessment(), bare, today=day_of_week(5), weeks=8)
    for s in plan.sessions:
        for b in s.blocks:
            for st in b.steps:
                assert set(exercise(st.exercise.key).equipment) <= {"bodyweight"}
    texts = " ".join(r.text for r in plan.explanation.rules if r.id == "EQUIP-SUB")
    assert "Single-leg Romanian deadlift with dumbbell needs dumbbells" in texts
    assert "Low single-leg drop jump needs box_bench" in texts


def test_modules_follow_cadence_and_coach():
    base = build_plan(assessment(), profile(), today=START, weeks=1)
    assert all(block(s, "foot_ankle") is None for s in base.sessions)
    assert all(block(s, "asymmetric_pattern") is None for s in base.sessions)
    low = build_plan(
        assessment(cadence_low_for_pace=True, cadence_state="dropped"), profile(), today=START
    )
    assert all(block(s, "foot_ankle") is not None for s in low.sessions)
    assert all(any("metronome" in n for n in s.notes) for s in low.sessions)
    off = build_plan(
        assessment(cadence_low_for_pace=True),
        profile(),
        today=START,
        overrides=CoachOverrides(modules={"foot_ankle": False}),
    )
    assert all(block(s, "foot_ankle") is None for s in off.sessions)


def test_every_session_fits_garmins_step_limit_with_everything_on():
    overrides = CoachOverrides(modules={"asymmetric_pattern": True, "foot_ankle": True})
    for week in (1, 5, 9):
        plan = build_plan(assessment(3.0), profile(), today=day_of_week(week), overrides=overrides)
        assert all(session_step_count(s) <= R.MAX_GARMIN_STEPS for s in plan.sessions)


# ---- explanation -------------------------------------------------------------------------
def test_explanation_lists_evidence_rules_and_caveats():
    a = assessment(1.6, state="shifted_left", magnitude=1.0, since=START - timedelta(days=10))
    plan = build_plan(a, profile(), today=START, weeks=2, hard_run_dates=[START + timedelta(3)])
    e = plan.explanation
    assert e.evidence.d == 1.6 and e.evidence.band_used == "orange" and e.evidence.mdc == 0.83
    assert e.evidence.state == "shifted_left" and e.evidence.comparable_runs == 8
    assert [r.id for r in e.evidence.runs] == [f"run-{i}" for i in range(6)]
    ids = e.rule_ids()
    for rule in (
        "BAND-INITIAL",
        "FOCUS-FROM-D",
        "DOSE-BAND",
        "FOCUS-FIRST",
        "PHASE-SCHEDULE",
        "SESSIONS-PER-WEEK",
        "SPACING-48H",
        "HARD-RUN-EVE",
        "TREND-PRE-PROGRAM",
    ):
        assert rule in ids
    assert all(r.id in R.RULES for r in e.rules)
    focus_rule = next(r for r in e.rules if r.id == "FOCUS-FROM-D")
    assert "coaching assumption" in focus_rule.text and "+1.6 pp" in focus_rule.text
    caveats = " ".join(e.caveats)
    assert "coaching assumption, not a proven fact" in caveats
    assert "not proven to change GCT balance" in caveats


def test_past_sessions_are_kept_as_they_were():
    first = build_plan(assessment(1.6), profile(), today=START, weeks=2)
    past = [s for s in first.sessions if s.date < START + timedelta(days=5)]
    later = START + timedelta(days=5)
    changed = build_plan(assessment(-3.0), profile(), today=later, weeks=2, past_sessions=past)
    assert [s for s in changed.sessions if s.date < later] == past
    assert all(s.focus_side == "right" for s in changed.sessions if s.date >= later)
    assert "PAST-KEPT" in changed.explanation.rule_ids()
    week1 = [s for s in changed.sessions if s.week == 1]
    assert len(week1) == 3


# ---- tables ------------------------------------------------------------------------------
def test_rules_tables_are_rows_a_coach_can_read():
    tables = rules_tables()
    for name in (
        "bands",
        "dose",
        "phases",
        "rep_schemes",
        "phase_library",
        "deload",
        "trends",
        "modules",
        "sessions_per_week",
        "exercises",
        "rule_ids",
        "calendar",
    ):
        assert tables[name] and all(isinstance(row, dict) for row in tables[name])
    dose = {
        (r["band"], r["experience"]): (r["focus_sets"], r["other_sets"]) for r in tables["dose"]
    }
    assert dose == {
        ("green", "beginner"): (2, 2),
        ("green", "experienced"): (3, 3),
        ("orange", "beginner"): (3, 2),
        ("orange", "experienced"): (3, 2),
        ("red", "beginner"): (3, 1),
        ("red", "experienced"): (3, 1),
    }
    assert {(r["experience"], r["every_nth_week"]) for r in tables["deload"]} == {
        ("beginner", 3),
        ("experienced", 4),
    }
    rdl = next(r for r in tables["exercises"] if r["key"] == "single_leg_rdl")
    assert (rdl["fit_category"], rdl["fit_exercise_name"]) == (8, 14)


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.key)
def test_every_library_exercise_is_known_to_garmin_and_fit(ex):
    validate_exercise(ex.category, ex.name)
    assert isinstance(fit_category_id(ex.category), int)
    assert fit_exercise_name(ex.category, ex.name) is not None or is_category_only(
        ex.category, ex.name
    )
    for sub in ex.substitutes:
        assert exercise(sub).per_side == ex.per_side or not ex.per_side


def test_every_table_key_exists_in_the_library():
    keys = [s.key for s in R.PHASE_LIBRARY] + [
        s.advanced_key for s in R.PHASE_LIBRARY if s.advanced_key
    ]
    keys += [k for k, _ in R.WARMUP + R.ACCESSORY + R.COOLDOWN]
    keys += [k for m in R.MODULES for k, _, _ in m.exercises]
    for key in keys:
        exercise(key)
    for phase in (1, 2, 3):
        for letter in "ABC":
            assert any(s.phase == phase and letter in s.sessions for s in R.PHASE_LIBRARY)


def test_plan_json_round_trip_through_the_model():
    plan = build_plan(assessment(), profile(), today=START)
    assert Plan.from_json(plan.to_json()) == plan
