"""Turn an assessment + profile + coach overrides into the plan's decisions, citing each rule.

Each function returns its answer together with the :class:`FiredRule` entries that produced it,
so the plan's explanation is a by-product of deciding, not a separate narrative that could drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from . import rules as R
from .models import (
    Assessment,
    AthleteProfile,
    Band,
    CoachOverrides,
    FiredRule,
    LegSide,
)


def fired(rule_id: str, detail: str) -> FiredRule:
    return FiredRule(rule_id, f"{R.RULES[rule_id]} {detail}".strip())


def program_week(profile: AthleteProfile, day: date) -> int:
    """1-based week since the program's start date (week 1 for days before it)."""
    return max(1, (day - profile.start_date).days // 7 + 1)


def week_start(profile: AthleteProfile, week: int) -> date:
    return profile.start_date + timedelta(days=7 * (week - 1))


@dataclass(frozen=True)
class Decisions:
    band: Band | None
    focus: LegSide | None
    focus_sets: int
    other_sets: int
    accessory: bool
    plyometrics: bool
    physio: bool
    trend: str
    regress_to_phase: int | None
    modules: frozenset[str]
    rules: tuple[FiredRule, ...]


def _fmt(d: float | None) -> str:
    return "n/a" if d is None else f"{d:+.1f} pp"


def dosing_band(a: Assessment, today: date) -> tuple[Band | None, list[FiredRule]]:
    """The band that drives the dose: the last one the detector confirmed (never a single run)."""
    current = a.zone if a.zone is not None else (R.band_for(a.d) if a.d is not None else None)
    confirmed = [c for c in a.confirmed_bands if c.since <= today]
    if not confirmed:
        if current is None:
            return None, []
        return current, [fired("BAND-INITIAL", f"Band {current} (d = {_fmt(a.d)}).")]
    last = max(confirmed, key=lambda c: c.since)
    out = [fired("BAND-CONFIRMED", f"Band {last.band}, confirmed since {last.since}.")]
    if current is not None and current != last.band:
        out.append(fired("BAND-PENDING", f"The latest estimate is {current}; {last.band} is kept."))
    return last.band, out


def _data_sufficient(a: Assessment) -> bool:
    return a.has_balance_sensor and a.comparable_runs >= R.MIN_COMPARABLE_RUNS and a.d is not None


def focus_side(
    a: Assessment, band: Band | None, overrides: CoachOverrides
) -> tuple[LegSide | None, Band | None, list[FiredRule]]:
    """Focus side plus the band to dose with (None when the data does not support one)."""
    out: list[FiredRule] = []
    supported = _data_sufficient(a)
    if not supported:
        sensor = "a balance sensor" if a.has_balance_sensor else "no balance sensor"
        out.append(
            fired("DATA-INSUFFICIENT", f"Here: {sensor}, {a.comparable_runs} comparable runs.")
        )
    if overrides.focus_side == "none":
        out.append(fired("FOCUS-COACH", "Coach: no focus side."))
        return None, (band if supported else None), out
    if overrides.focus_side in ("left", "right"):
        out.append(fired("FOCUS-COACH", f"Coach: focus {overrides.focus_side.upper()}."))
        use = band if supported and band not in (None, "green") else R.COACH_FOCUS_DEFAULT_BAND
        return overrides.focus_side, use, out
    if not supported:
        return None, None, out
    assert a.d is not None
    if band == "green" or band is None:
        out.append(fired("FOCUS-NONE-GREEN", f"d = {_fmt(a.d)}."))
        return None, band, out
    side: LegSide = "left" if a.d > 0 else "right"
    out.append(fired("FOCUS-FROM-D", f"d = {_fmt(a.d)}, band {band}: focus {side.upper()}."))
    return side, band, out


def dose(
    band: Band | None,
    focus: LegSide | None,
    experience: str,
    overrides: CoachOverrides,
) -> tuple[tuple[int, int], R.DoseRow, list[FiredRule]]:
    """Sets per side (focus, other) and the dose row whose extras apply."""
    symmetric = R.dose_for("green", experience)  # type: ignore[arg-type]
    row = R.dose_for(band, experience) if band is not None else symmetric  # type: ignore[arg-type]
    out: list[FiredRule] = []
    if focus is None:
        row = symmetric if band != "red" else row
        sets = (symmetric.focus_sets, symmetric.other_sets)
        out.append(fired("DOSE-SYMMETRIC", f"{sets[0]}:{sets[1]} sets ({experience})."))
    else:
        sets = (row.focus_sets, row.other_sets)
        out.append(
            fired("DOSE-BAND", f"Band {row.band}, {experience}: {sets[0]}:{sets[1]} focus:other.")
        )
        out.append(fired("FOCUS-FIRST", f"{focus.upper()} first."))
    if overrides.dose is not None:
        sets = overrides.dose
        out.append(fired("DOSE-COACH", f"{sets[0]}:{sets[1]} focus:other."))
    return sets, row, out


def trend(a: Assessment, profile: AthleteProfile) -> tuple[str, int | None, list[FiredRule]]:
    """Classify the detector state; for a worsening during the program, the phase to drop to."""
    mdc = "n/a" if a.mdc is None else f"{a.mdc:.2f} pp"
    if a.state == "insufficient_data" or a.d is None:
        kind = "no_evidence"
    elif a.state == "stable":
        kind = "steady"
    elif a.state == "returning":
        kind = "improved"
    else:
        direction = 1 if a.state == "shifted_left" else -1
        beyond = a.magnitude is None or a.mdc is None or abs(a.magnitude) > a.mdc
        away = direction * a.d > 0
        kind = "worsened" if beyond and away else ("steady" if not beyond else "improved")
    if kind == "worsened" and (a.since is None or a.since < profile.start_date):
        kind = "pre_program"
    detail = f"Detector {a.state}, shift {_fmt(a.magnitude)}, MDC {mdc}, since {a.since}."
    if kind == "pre_program":
        return kind, None, [fired("TREND-PRE-PROGRAM", detail)]
    if kind != "worsened":
        return kind, None, [fired("TREND-PROGRESS", f"Trend {kind}. {detail}")]
    assert a.since is not None
    phase_then, _, _ = R.scheduled_phase(program_week(profile, a.since))
    back = R.trend_row("worsened").phases_back
    target = max(1, phase_then - back)
    action = "hold phase 1" if phase_then == 1 else f"step back to phase {target}"
    text = f"Worsened in phase {phase_then}: {action}, reduce range or load. {detail}"
    return kind, target, [fired("TREND-REGRESS", text)]


def modules(a: Assessment, overrides: CoachOverrides) -> tuple[frozenset[str], list[FiredRule]]:
    on = {m.module for m in R.MODULES if m.default_on}
    out: list[FiredRule] = []
    if a.cadence_low_for_pace:
        on.add("foot_ankle")
    if a.cadence_state == "dropped":
        on.add("cadence_cue")
    for name, enabled in overrides.modules:
        if name not in {m.module for m in R.MODULES}:
            raise ValueError(f"unknown module {name!r}; known: {[m.module for m in R.MODULES]}")
        (on.add if enabled else on.discard)(name)
    who = dict(overrides.modules)
    if "foot_ankle" in on:
        why = "coach" if who.get("foot_ankle") else "cadence low for pace"
        out.append(fired("MODULE-FOOT-ANKLE", f"On ({why})."))
    if "asymmetric_pattern" in on:
        out.append(fired("MODULE-ASYMMETRIC", "On."))
    if "cadence_cue" in on:
        out.append(fired("CADENCE-CUE", f"Cadence state {a.cadence_state}."))
    return frozenset(on), out


def decide(
    a: Assessment, profile: AthleteProfile, overrides: CoachOverrides, today: date
) -> Decisions:
    band, band_rules = dosing_band(a, today)
    focus, dose_band, focus_rules = focus_side(a, band, overrides)
    (f_sets, o_sets), row, dose_rules = dose(dose_band, focus, profile.experience, overrides)
    kind, regress_to, trend_rules = trend(a, profile)
    mods, module_rules = modules(a, overrides)
    extra: list[FiredRule] = []
    accessory = row.accessory_block and focus is not None
    if accessory:
        extra.append(fired("ACCESSORY-FOCUS", f"{focus.upper() if focus else ''} only."))
    if not row.plyometrics:
        extra.append(fired("RED-NO-PLYO", ""))
    if row.physio_check:
        extra.append(fired("RED-PHYSIO", ""))
    return Decisions(
        band=dose_band,
        focus=focus,
        focus_sets=f_sets,
        other_sets=o_sets,
        accessory=accessory,
        plyometrics=row.plyometrics,
        physio=row.physio_check,
        trend=kind,
        regress_to_phase=regress_to,
        modules=mods,
        rules=tuple(band_rules + focus_rules + dose_rules + extra + trend_rules + module_rules),
    )


@dataclass(frozen=True)
class WeekPlan:
    week: int
    phase: int
    week_in_phase: int
    level: int
    deload: bool
    content_week: int


def week_plan(
    week: int,
    d: Decisions,
    profile: AthleteProfile,
    overrides: CoachOverrides,
) -> tuple[WeekPlan, list[FiredRule]]:
    """Phase, level and deload for one program week, after regression, red-band and coach rules."""
    out: list[FiredRule] = []
    dl = R.deload_row(profile.experience)
    deload = week % dl.every_nth_week == 0
    content_week = week - 1 if deload and week > 1 else week
    phase, in_phase, level = R.scheduled_phase(content_week)
    out.append(fired("PHASE-SCHEDULE", f"Week {week}: phase {phase} ({R.phase_row(phase).name})."))
    if level > 1:
        out.append(fired("PHASE-LEVEL", f"Week {week}: level {level}."))
    if deload:
        out.append(
            fired(
                "DELOAD",
                f"Week {week} is a deload week ({profile.experience}: every "
                f"{dl.every_nth_week}th); exercises of week {content_week}.",
            )
        )
    if overrides.phase is not None:
        phase, in_phase = overrides.phase, 1
        out.append(fired("PHASE-COACH", f"Phase {phase}."))
    else:
        if d.regress_to_phase is not None and phase > d.regress_to_phase:
            row = R.phase_row(d.regress_to_phase)
            phase, in_phase = row.phase, row.last_week - row.first_week + 1
        if not d.plyometrics and phase == 3:
            phase, in_phase = 2, 4
    return WeekPlan(week, phase, in_phase, level, deload, content_week), out
