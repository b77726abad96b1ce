"""build_plan: assessment + profile + calendar -> a Plan (pure data with its explanation)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date, timedelta

from . import rules as R
from .catalog import catalogue_name, validate_exercise, validate_sessions
from .decide import Decisions, WeekPlan, decide, fired, program_week, week_plan, week_start
from .library import Exercise, exercise
from .models import (
    Assessment,
    AthleteProfile,
    Block,
    BlockKind,
    CoachOverrides,
    Evidence,
    Explanation,
    FiredRule,
    LegSide,
    Plan,
    Session,
    Side,
    Step,
)
from .schedule import allowed, pick_days
from .structure import session_step_count

BLOCK_TITLES: dict[BlockKind, str] = {
    "warmup": "Warm-up",
    "main": "Main unilateral block",
    "accessory": "Accessory (focus side)",
    "foot_ankle": "Foot & ankle",
    "asymmetric_pattern": "Asymmetric pattern (top-down)",
    "cooldown": "Cool-down",
}
# Dropped first (from the end of the block) when a session exceeds Garmin's step limit.
TRIM_ORDER: tuple[BlockKind, ...] = ("asymmetric_pattern", "foot_ankle", "accessory", "cooldown")


def _other(side: LegSide) -> LegSide:
    return "right" if side == "left" else "left"


class _Context:
    """Per-plan lookups and the list of rules that fired while building sessions."""

    def __init__(self, profile: AthleteProfile, overrides: CoachOverrides, d: Decisions):
        self.profile = profile
        self.overrides = overrides
        self.d = d
        self.swaps = dict(overrides.swaps)
        self.rules: list[FiredRule] = []

    def resolve(self, key: str) -> Exercise:
        """Coach swap first, then walk substitutes until the athlete has the equipment."""
        target = self.swaps.get(key)
        if target is not None:
            ex = self._swap_target(key, target)
            self.rules.append(fired("SWAP-COACH", f"{exercise(key).display} -> {ex.display}."))
            return ex
        ex = exercise(key)
        chain = [ex]
        while not set(ex.equipment) <= self.profile.equipment:
            missing = sorted(set(ex.equipment) - self.profile.equipment)
            options = [exercise(k) for k in ex.substitutes]
            if not options:
                raise ValueError(f"{ex.key} needs {missing} and lists no substitute")
            nxt = next(
                (o for o in options if set(o.equipment) <= self.profile.equipment), options[-1]
            )
            self.rules.append(
                fired("EQUIP-SUB", f"{ex.display} needs {', '.join(missing)}: {nxt.display}.")
            )
            ex = nxt
            chain.append(ex)
            if len(chain) > 10:
                raise ValueError(f"substitute loop for {key}")
        return ex

    def _swap_target(self, key: str, target: str) -> Exercise:
        base = exercise(key)
        if "/" not in target:
            return exercise(target)
        category, name = target.split("/", 1)
        validate_exercise(category, name)
        display = catalogue_name(category, name) or target
        return Exercise(
            f"coach:{category}/{name}", display, category, name, base.per_side, base.timed
        )


def _minus_deload(sets: int, wp: WeekPlan, profile: AthleteProfile) -> int:
    if not wp.deload or sets == 0:
        return sets
    row = R.deload_row(profile.experience)
    return max(row.min_sets, sets - row.sets_removed)


def _scheme(context: str, kind: str, ex: Exercise) -> R.RepScheme:
    kind = "hold" if ex.timed else ("stable" if kind == "hold" else kind)
    row = R.rep_scheme(context, kind) or R.rep_scheme("phase1", kind)
    if row is None:
        raise KeyError(f"no rep scheme for {context}/{kind}")
    return row


def _step(
    ex: Exercise, side: Side, sets: int, scheme: R.RepScheme, level: int, notes: str | None
) -> Step:
    """One step dosed from the rep scheme: reps, or a hold for timed exercises."""
    reps: int | None = None
    duration_s: int | None = None
    if ex.timed:
        duration_s = scheme.hold_level1_s if level == 1 else scheme.hold_level2_s
    else:
        reps = scheme.reps_level1 if level == 1 else scheme.reps_level2
    return Step(
        ex.ref(),
        side,
        sets,
        reps=reps,
        duration_s=duration_s,
        rest_s=scheme.rest_s,
        tempo=scheme.tempo,
        notes=notes,
    )


def _notes(*parts: str | None) -> str | None:
    text = "; ".join(p for p in parts if p)
    return text or None


def _sides(ex: Exercise, focus: LegSide | None) -> tuple[Side, ...]:
    if not ex.per_side:
        return ("both",)
    first: LegSide = focus or "left"
    return (first, _other(first))


def _main_block(ctx: _Context, wp: WeekPlan, letter: str) -> Block:
    d = ctx.d
    regress = "reduce range or load" if d.regress_to_phase is not None else None
    focus_sets = _minus_deload(d.focus_sets, wp, ctx.profile)
    other_sets = _minus_deload(d.other_sets, wp, ctx.profile)
    steps: list[Step] = []
    for slot in R.PHASE_LIBRARY:
        if slot.phase != wp.phase or letter not in slot.sessions:
            continue
        key = slot.advanced_key if wp.level > 1 and slot.advanced_key else slot.key
        ex = ctx.resolve(key)
        scheme = _scheme(f"phase{wp.phase}", slot.kind, ex)
        variant = None
        if slot.variant_from_week and wp.week_in_phase >= slot.variant_from_week:
            variant = slot.variant_note
            ctx.rules.append(fired("VARIANT", f"{ex.display}: {variant} (week {wp.week})."))
        notes = _notes(variant, ex.cue, regress)
        for i, side in enumerate(_sides(ex, d.focus)):
            first = focus_sets if i == 0 else other_sets
            sets = max(1, other_sets) if side == "both" else first
            if sets:
                steps.append(_step(ex, side, sets, scheme, wp.level, notes))
    if wp.phase >= 2:
        ctx.rules.append(fired("TEMPO-CONTRAST", "Written in each step's tempo."))
    return Block("main", BLOCK_TITLES["main"], tuple(steps))


def _simple_block(
    ctx: _Context,
    kind: BlockKind,
    items: Iterable[tuple[str, str, str]],
    wp: WeekPlan,
    skip: set[str],
) -> Block:
    """Warm-up, accessory, modules and cool-down: fixed sets from the rep-scheme table."""
    steps: list[Step] = []
    for key, scheme_kind, side_rule in items:
        ex = ctx.resolve(key)
        if ex.key in skip:
            continue
        skip.add(ex.key)
        scheme = _scheme(kind, scheme_kind, ex)
        sets = _minus_deload(scheme.sets or 1, wp, ctx.profile) if kind == "accessory" else 1
        if side_rule == "focus":
            sides: tuple[Side, ...] = (ctx.d.focus,) if ctx.d.focus else ()
        elif side_rule == "per_side":
            sides = _sides(ex, ctx.d.focus)
        else:
            sides = (side_rule,)  # type: ignore[assignment]
        steps += [_step(ex, side, sets, scheme, wp.level, _notes(ex.cue)) for side in sides]
    return Block(kind, BLOCK_TITLES[kind], tuple(steps))


def _session_notes(ctx: _Context, wp: WeekPlan) -> tuple[str, ...]:
    d = ctx.d
    notes = [f"Phase {wp.phase} ({R.phase_row(wp.phase).name}): {R.phase_row(wp.phase).aim}."]
    if d.focus:
        notes.append(
            f"Focus side {d.focus.upper()}: it works first and gets {d.focus_sets} sets to "
            f"{d.other_sets} on the other leg."
        )
    if wp.deload:
        notes.append("Deload week: one set fewer, no new exercises.")
    if d.regress_to_phase is not None:
        notes.append("Asymmetry worsened beyond your noise level: reduce range or load.")
    if d.physio:
        notes.append(
            "Your asymmetry is in Garmin's red band: consider a check by a physiotherapist."
        )
    if "cadence_cue" in d.modules:
        notes.append(R.CADENCE_CUE)
    return tuple(notes)


def _trim_to_budget(ctx: _Context, session: Session) -> Session:
    dropped: list[str] = []
    while session_step_count(session) > R.MAX_GARMIN_STEPS:
        for kind in TRIM_ORDER:
            block = next((b for b in session.blocks if b.kind == kind and b.steps), None)
            if block is not None:
                last = block.steps[-1].exercise
                keep = tuple(s for s in block.steps if s.exercise != last)
                dropped.append(last.display)
                blocks = tuple(replace(b, steps=keep) if b is block else b for b in session.blocks)
                session = replace(session, blocks=tuple(b for b in blocks if b.steps))
                break
        else:
            raise ValueError(f"session on {session.date} cannot fit {R.MAX_GARMIN_STEPS} steps")
    if dropped:
        ctx.rules.append(fired("STEP-BUDGET", f"{session.date}: dropped {', '.join(dropped)}."))
    return session


def _session(ctx: _Context, day: date, letter: str, wp: WeekPlan) -> Session:
    d = ctx.d
    seen: set[str] = set()
    warmup = _simple_block(ctx, "warmup", [(k, kd, "both") for k, kd in R.WARMUP], wp, set())
    main = _main_block(ctx, wp, letter)
    seen.update(s.exercise.key for s in main.steps)
    blocks = [warmup, main]
    if d.accessory:
        items = [(k, kd, "focus") for k, kd in R.ACCESSORY]
        blocks.append(_simple_block(ctx, "accessory", items, wp, seen))
    for module in R.MODULES:
        if module.module in d.modules and module.exercises:
            kind: BlockKind = module.module  # type: ignore[assignment]
            blocks.append(_simple_block(ctx, kind, module.exercises, wp, seen))
    cooldown = [(k, kd, "both") for k, kd in R.COOLDOWN]
    blocks.append(_simple_block(ctx, "cooldown", cooldown, wp, set()))
    name = f"Single-leg {R.phase_row(wp.phase).name} {letter}" + (" (deload)" if wp.deload else "")
    session = Session(
        date=day,
        name=name,
        week=wp.week,
        phase=wp.phase,
        level=wp.level,
        deload=wp.deload,
        focus_side=d.focus,
        blocks=tuple(b for b in blocks if b.steps),
        notes=_session_notes(ctx, wp),
    )
    return _trim_to_budget(ctx, session)


def _evidence(a: Assessment, band: str | None) -> Evidence:
    return Evidence(
        d=a.d,
        zone=a.zone,
        band_used=band,
        te=a.te,
        mdc=a.mdc,
        state=a.state,  # type: ignore[arg-type]
        magnitude=a.magnitude,
        since=a.since,
        runs=a.supporting_runs,
        comparable_runs=a.comparable_runs,
        clean_minutes=a.clean_minutes,
        sensor=a.sensor,
        has_balance_sensor=a.has_balance_sensor,
        cadence_state=a.cadence_state,
        cadence_low_for_pace=a.cadence_low_for_pace,
    )


def _dedupe(rules: list[FiredRule]) -> tuple[FiredRule, ...]:
    return tuple(dict.fromkeys(rules))


def build_plan(
    assessment: Assessment,
    profile: AthleteProfile,
    *,
    today: date,
    weeks: int = 4,
    hard_run_dates: Iterable[date] = (),
    overrides: CoachOverrides | None = None,
    past_sessions: Iterable[Session] | None = None,
) -> Plan:
    """Plan ``weeks`` program weeks from the week containing ``today`` (or the start date).

    Sessions dated before ``today`` are never generated: those given in ``past_sessions`` that fall
    in the window are kept exactly as they were and count toward their week's sessions.
    """
    if weeks < 1:
        raise ValueError("weeks must be >= 1")
    overrides = overrides or CoachOverrides()
    d = decide(assessment, profile, overrides, today)
    ctx = _Context(profile, overrides, d)
    hard = frozenset(hard_run_dates)
    per_week = profile.sessions_per_week or R.default_sessions_per_week(profile.experience)
    ctx.rules.append(fired("SESSIONS-PER-WEEK", f"{per_week} per week ({profile.experience})."))
    first_day = max(today, profile.start_date)
    first_week = program_week(profile, first_day)
    past = sorted((s for s in past_sessions or () if s.date < today), key=lambda s: s.date)
    taken = [s.date for s in past]
    sessions: list[Session] = []
    week_rules: list[FiredRule] = []
    eves: list[date] = []
    on_preferred = 0
    for week in range(first_week, first_week + weeks):
        start = week_start(profile, week)
        days = [start + timedelta(days=i) for i in range(7)]
        kept = [s for s in past if start <= s.date < start + timedelta(days=7)]
        if kept:
            week_rules.append(fired("PAST-KEPT", f"Week {week}: {len(kept)} kept as they were."))
        sessions.extend(kept)
        candidates = [day for day in days if day >= first_day]
        eves += [c for c in candidates if not allowed(c, hard, ())]
        wanted = max(0, per_week - len(kept))
        chosen = pick_days(
            candidates, wanted, hard_runs=hard, taken=taken, preferred_weekdays=profile.weekdays
        )
        if len(chosen) < wanted and candidates:
            week_rules.append(fired("WEEK-SHORT", f"Week {week}: {len(chosen)} of {wanted}."))
        wp, wrules = week_plan(week, d, profile, overrides)
        if chosen:
            week_rules.extend(wrules)
        for i, day in enumerate(chosen):
            letter = R.SESSION_LETTERS[(len(kept) + i) % len(R.SESSION_LETTERS)]
            sessions.append(_session(ctx, day, letter, wp))
            on_preferred += day.weekday() in profile.weekdays
        taken.extend(chosen)
    new = [s for s in sessions if s.date >= today]
    ctx.rules.append(fired("SPACING-48H", f"{len(new)} sessions scheduled."))
    if eves:
        listed = ", ".join(str(e) for e in sorted(set(eves)))
        ctx.rules.append(fired("HARD-RUN-EVE", f"Excluded: {listed}."))
    if profile.weekdays:
        ctx.rules.append(
            fired("WEEKDAYS-PREFERRED", f"{on_preferred} of {len(new)} on preferred weekdays.")
        )
    validate_sessions(sessions)
    wp0, _ = week_plan(first_week, d, profile, overrides)
    explanation = Explanation(
        evidence=_evidence(assessment, d.band),
        rules=_dedupe(list(d.rules) + week_rules + ctx.rules),
        caveats=(R.CAVEAT_FOCUS, R.CAVEAT_EVIDENCE),
    )
    return Plan(
        athlete=profile.athlete,
        generated_on=today,
        week=first_week,
        phase=wp0.phase,
        level=wp0.level,
        focus_side=d.focus,
        band=d.band,
        units=profile.units,
        sessions=tuple(sorted(sessions, key=lambda s: s.date)),
        explanation=explanation,
    )
