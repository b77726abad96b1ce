"""Planner calendar: 48 h spacing, never the eve of a hard run, preferred weekdays, past days."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from evenstride.planner import Assessment, AthleteProfile, RunEvidence, build_plan
from evenstride.planner.schedule import pick_days

START = date(2025, 3, 3)  # a Monday
RUNS = tuple(RunEvidence(f"r{i}", START - timedelta(days=i + 1), 1.5) for i in range(6))
ASSESSMENT = Assessment(
    d=1.5,
    zone="orange",
    te=0.3,
    mdc=0.8,
    state="stable",
    supporting_runs=RUNS,
    comparable_runs=8,
    clean_minutes=300.0,
    sensor="HRM-Pro",
    has_balance_sensor=True,
)


def profile(experience="experienced", weekdays=(), per_week=None) -> AthleteProfile:
    return AthleteProfile(
        athlete="cal",
        experience=experience,
        start_date=START,
        weekdays=weekdays,
        sessions_per_week=per_week,
        equipment=frozenset({"band", "dumbbells", "box_bench"}),
    )


def gaps(days):
    return [(b - a).days for a, b in zip(days, days[1:], strict=False)]


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    experience=st.sampled_from(["beginner", "experienced"]),
    weekdays=st.lists(st.integers(0, 6), max_size=4, unique=True),
    hard=st.lists(st.integers(0, 34), max_size=10, unique=True),
    offset=st.integers(0, 6),
)
def test_spacing_and_hard_run_eves_always_hold(experience, weekdays, hard, offset):
    hard_dates = {START + timedelta(days=h) for h in hard}
    today = START + timedelta(days=offset)
    plan = build_plan(
        ASSESSMENT,
        profile(experience, tuple(weekdays)),
        today=today,
        weeks=4,
        hard_run_dates=hard_dates,
    )
    days = [s.date for s in plan.sessions]
    assert days == sorted(days) and all(d >= today for d in days)
    assert all(g >= 2 for g in gaps(days)), "at least 48 h between unilateral days"
    assert not any(d + timedelta(days=1) in hard_dates for d in days), "never the eve of a hard run"
    per_week = {"beginner": 2, "experienced": 3}[experience]
    for week in {s.week for s in plan.sessions}:
        assert len([s for s in plan.sessions if s.week == week]) <= per_week


def test_preferred_weekdays_are_used_when_possible():
    plan = build_plan(ASSESSMENT, profile("experienced", ("tue", "thu", "sat")), today=START)
    assert {s.date.strftime("%a") for s in plan.sessions} == {"Tue", "Thu", "Sat"}
    assert len(plan.sessions) == 12
    rule = next(r for r in plan.explanation.rules if r.id == "WEEKDAYS-PREFERRED")
    assert "12 of 12" in rule.text


def test_preferred_day_before_a_hard_run_moves_elsewhere():
    saturday_long_runs = [START + timedelta(days=5 + 7 * w) for w in range(4)]
    plan = build_plan(
        ASSESSMENT,
        profile("beginner", ("tue", "fri")),
        today=START,
        hard_run_dates=saturday_long_runs,
    )
    days = [s.date for s in plan.sessions]
    assert all(d.strftime("%a") != "Fri" for d in days)
    assert all(d.strftime("%a") == "Tue" for d in days[::2])
    assert len(days) == 8 and all(g >= 2 for g in gaps(days))
    assert "HARD-RUN-EVE" in plan.explanation.rule_ids()


def test_default_spacing_is_even_without_preferences():
    beginner = build_plan(ASSESSMENT, profile("beginner"), today=START, weeks=2)
    assert [s.date.strftime("%a") for s in beginner.sessions] == ["Mon", "Thu", "Mon", "Thu"]
    experienced = build_plan(ASSESSMENT, profile("experienced"), today=START, weeks=1)
    assert [s.date.strftime("%a") for s in experienced.sessions] == ["Mon", "Wed", "Fri"]


def test_spacing_counts_sessions_of_the_previous_week():
    first = build_plan(
        ASSESSMENT, profile("experienced", ("sun", "tue", "thu")), today=START, weeks=1
    )
    assert [s.date.strftime("%a") for s in first.sessions] == ["Tue", "Thu", "Sun"]
    two = build_plan(
        ASSESSMENT, profile("experienced", ("sun", "mon", "wed")), today=START, weeks=2
    )
    days = [s.date for s in two.sessions]
    assert all(g >= 2 for g in gaps(days))


def test_crowded_week_schedules_fewer_sessions_and_says_so():
    hard = [START + timedelta(days=i) for i in (1, 5, 6, 7)]  # only Tue, Wed, Thu are allowed
    plan = build_plan(ASSESSMENT, profile("experienced"), today=START, weeks=1, hard_run_dates=hard)
    days = [s.date for s in plan.sessions]
    assert all(d + timedelta(days=1) not in hard for d in days)
    assert [d.strftime("%a") for d in days] == ["Tue", "Thu"]
    assert "WEEK-SHORT" in plan.explanation.rule_ids()


def test_past_sessions_count_toward_their_week_and_spacing():
    first = build_plan(ASSESSMENT, profile("experienced"), today=START, weeks=2)
    done = [s for s in first.sessions if s.date <= START + timedelta(days=2)]  # Mon, Wed
    today = START + timedelta(days=3)  # Thursday
    again = build_plan(ASSESSMENT, profile("experienced"), today=today, weeks=2, past_sessions=done)
    week1 = [s for s in again.sessions if s.week == 1]
    assert week1[:2] == done and len(week1) == 3
    assert all(g >= 2 for g in gaps([s.date for s in again.sessions]))


def test_pick_days_is_deterministic_and_respects_taken_days():
    week = [START + timedelta(days=i) for i in range(7)]
    picked = pick_days(
        week, 3, hard_runs=frozenset(), taken=[START - timedelta(days=1)], preferred_weekdays=()
    )
    assert picked == (
        START + timedelta(days=1),
        START + timedelta(days=3),
        START + timedelta(days=5),
    )
    assert picked == pick_days(
        week, 3, hard_runs=frozenset(), taken=[START - timedelta(days=1)], preferred_weekdays=()
    )


def test_program_start_in_the_future_begins_at_week_one():
    plan = build_plan(ASSESSMENT, profile(), today=START - timedelta(days=10), weeks=1)
    assert plan.week == 1 and plan.sessions[0].date == START
