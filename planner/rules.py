"""The program's rules as tables (design/program.md), so a coach can read and question each number.

Nothing here decides anything: :mod:`evenstride.planner.decide` and
:mod:`evenstride.planner.build` look rows up. :func:`rules_tables` returns every table as rows
for ``evenstride plan --rules``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .catalog import fit_category_id, fit_exercise_name
from .library import EXERCISES
from .models import Band, BlockKind, Experience


# ---- bands (Garmin's GCT-balance zones, |d| in percentage points) ----------------------------
@dataclass(frozen=True)
class BandRow:
    band: Band
    max_abs_d: float | None  # inclusive, on |d| rounded to 0.1 pp as the watch shows it
    meaning: str


BANDS: tuple[BandRow, ...] = (
    BandRow("green", 0.7, "good symmetry (50.7 % L to 50.7 % R): maintenance"),
    BandRow(
        "orange", 2.2, "fair (50.8-52.2 %): extra sets and an accessory block for the focus side"
    ),
    BandRow("red", None, "poor (> 52.2 %): 3:1 sets, no plyometrics, suggest a physiotherapist"),
)


def band_for(d: float) -> Band:
    """Garmin zone of ``d`` after rounding |d| to 0.1 pp (half up), as the watch displays it."""
    shown = Decimal(str(abs(d))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    for row in BANDS:
        if row.max_abs_d is None or shown <= Decimal(str(row.max_abs_d)):
            return row.band
    raise AssertionError("the last band row is open-ended")


MIN_COMPARABLE_RUNS = 5  # fewer comparable runs with GCT balance -> no focus side


# ---- dose by band --------------------------------------------------------------------------
@dataclass(frozen=True)
class DoseRow:
    band: Band
    experience: Experience
    focus_sets: int
    other_sets: int
    accessory_block: bool
    plyometrics: bool
    physio_check: bool


DOSE: tuple[DoseRow, ...] = (
    DoseRow("green", "beginner", 2, 2, False, True, False),
    DoseRow("green", "experienced", 3, 3, False, True, False),
    DoseRow("orange", "beginner", 3, 2, True, True, False),
    DoseRow("orange", "experienced", 3, 2, True, True, False),
    DoseRow("red", "beginner", 3, 1, True, False, True),
    DoseRow("red", "experienced", 3, 1, True, False, True),
)
COACH_FOCUS_DEFAULT_BAND: Band = "orange"  # dose used when a coach sets a focus the data lacks


def dose_for(band: Band, experience: Experience) -> DoseRow:
    return next(r for r in DOSE if r.band == band and r.experience == experience)


# ---- phases --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhaseRow:
    phase: int
    name: str
    first_week: int
    last_week: int
    aim: str


PHASES: tuple[PhaseRow, ...] = (
    PhaseRow(1, "control", 1, 4, "movement quality, balance, no load"),
    PhaseRow(2, "strength", 5, 8, "light load, slow eccentrics (3-4 s down), holds at the bottom"),
    PhaseRow(3, "power", 9, 12, "reactive strength, short contacts, quiet landings"),
)
CYCLE_WEEKS = 12  # after week 12 the phases repeat at the next level


def phase_row(phase: int) -> PhaseRow:
    return next(r for r in PHASES if r.phase == phase)


def scheduled_phase(week: int) -> tuple[int, int, int]:
    """(phase, week within phase, level) for a program week (1-based)."""
    in_cycle = (week - 1) % CYCLE_WEEKS + 1
    level = (week - 1) // CYCLE_WEEKS + 1
    row = next(r for r in PHASES if r.first_week <= in_cycle <= r.last_week)
    return row.phase, in_cycle - row.first_week + 1, level


# ---- rep schemes ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RepScheme:
    context: str  # "phase1".."phase3" or a block kind
    kind: str  # stable | skilled | hold | plyo | heavy
    reps_level1: int | None
    reps_level2: int | None
    hold_level1_s: int | None
    hold_level2_s: int | None
    rest_s: int
    sets: int | None  # None: from the dose table
    tempo: str | None


TEMPO_CONTRAST = "fast drive up, controlled 3 s descent"
REP_SCHEMES: tuple[RepScheme, ...] = (
    RepScheme("phase1", "stable", 10, 12, None, None, 45, None, "smooth, 2 s down, 2 s up"),
    RepScheme("phase1", "hold", None, None, 30, 40, 30, None, None),
    RepScheme("phase2", "skilled", 6, 8, None, None, 90, None,
              f"{TEMPO_CONTRAST}, 2 s hold at the bottom"),
    RepScheme("phase2", "stable", 8, 10, None, None, 75, None,
              f"{TEMPO_CONTRAST}, 2 s hold at the bottom"),
    RepScheme("phase3", "plyo", 4, 6, None, None, 120, None, "short contacts, quiet landings"),
    RepScheme("phase3", "heavy", 6, 6, None, None, 120, None, TEMPO_CONTRAST),
    RepScheme("warmup", "stable", 10, 10, 30, 30, 0, 1, None),
    RepScheme("accessory", "stable", 12, 15, None, None, 30, 2, None),
    RepScheme("foot_ankle", "stable", 12, 15, None, None, 0, 1, None),
    RepScheme("foot_ankle", "hold", None, None, 20, 30, 0, 1, None),
    RepScheme("asymmetric_pattern", "stable", 5, 8, None, None, 0, 1, None),
    RepScheme("cooldown", "hold", None, None, 60, 60, 0, 1, None),
)  # fmt: skip


def rep_scheme(context: str, kind: str) -> RepScheme | None:
    return next((r for r in REP_SCHEMES if r.context == context and r.kind == kind), None)


# ---- exercises per phase and per session letter --------------------------------------------
@dataclass(frozen=True)
class PhaseSlot:
    phase: int
    key: str
    sessions: str  # letters of the week's sessions (A, B, C) that include it
    kind: str
    advanced_key: str | None = None  # used from level 2 (the second 12-week cycle) on
    variant_from_week: int | None = None  # week within the phase from which the variant applies
    variant_note: str | None = None


PHASE_LIBRARY: tuple[PhaseSlot, ...] = (
    PhaseSlot(1, "single_leg_balance", "AB", "hold", None, 3, "eyes closed"),
    PhaseSlot(1, "partial_single_leg_squat", "AC", "stable", "one_legged_squat"),
    PhaseSlot(1, "reverse_lunge", "BC", "stable"),
    PhaseSlot(1, "single_leg_hip_raise", "AC", "stable"),
    PhaseSlot(1, "side_plank", "AC", "hold"),
    PhaseSlot(1, "single_leg_calf_raise", "B", "stable"),
    PhaseSlot(1, "clamshell", "B", "stable"),
    PhaseSlot(2, "single_leg_rdl", "AC", "skilled"),
    PhaseSlot(2, "bulgarian_split_squat", "AC", "stable"),
    PhaseSlot(2, "nordic_lowering", "A", "skilled"),
    PhaseSlot(2, "weighted_step_up", "BC", "stable"),
    PhaseSlot(2, "box_pistol", "B", "skilled", "pistol_squat"),
    PhaseSlot(2, "weighted_calf_raise", "B", "stable"),
    PhaseSlot(3, "single_leg_hops", "AC", "plyo"),
    PhaseSlot(3, "lateral_leap_and_hop", "A", "plyo"),
    PhaseSlot(3, "single_leg_rdl", "AC", "heavy"),
    PhaseSlot(3, "split_jumps", "B", "plyo"),
    PhaseSlot(3, "single_leg_drop_jump", "B", "plyo"),
    PhaseSlot(3, "bounding", "BC", "plyo"),
    PhaseSlot(3, "bulgarian_split_squat", "B", "heavy"),
)

WARMUP: tuple[tuple[str, str], ...] = (
    ("hip_circles", "stable"),
    ("ankle_dorsiflexion_band", "stable"),
    ("thoracic_rotation", "stable"),
    ("leg_swings", "stable"),
)
ACCESSORY: tuple[tuple[str, str], ...] = (
    ("single_leg_hip_raise", "stable"),
    ("clamshell", "stable"),
    ("tibialis_raise", "stable"),
)
COOLDOWN: tuple[tuple[str, str], ...] = (
    ("calf_stretch", "hold"),
    ("hip_flexor_stretch", "hold"),
    ("hamstring_stretch", "hold"),
)


# ---- optional modules ----------------------------------------------------------------------
@dataclass(frozen=True)
class ModuleRow:
    module: BlockKind | str
    default_on: bool
    trigger: str
    exercises: tuple[tuple[str, str, str], ...]  # key, kind, side ("both", "left", "per_side")


MODULES: tuple[ModuleRow, ...] = (
    ModuleRow(
        "foot_ankle",
        False,
        "cadence low for the athlete's pace, or a coach turns it on",
        (
            ("short_foot_hold", "hold", "per_side"),
            ("toe_curls", "stable", "per_side"),
            ("tibialis_raise", "stable", "both"),
            ("single_leg_calf_raise", "stable", "per_side"),
        ),
    ),
    ModuleRow(
        "asymmetric_pattern",
        False,
        "a coach turns it on (top-down pattern of seed 002, left-side emphasis)",
        (
            ("rockback_breathing", "stable", "both"),
            ("hip_shift_90_90", "stable", "left"),
            ("split_squat_rotation", "stable", "per_side"),
            ("staggered_hinge_asym_arms", "stable", "per_side"),
        ),
    ),
    ModuleRow("cadence_cue", False, "pace-adjusted cadence dropped persistently", ()),
)
CADENCE_CUE = (
    "Cadence cue: on your next easy run, do 4 x 1 min with a metronome about 5 % above your "
    "usual cadence at that pace (the planner does not prescribe running workouts)."
)


# ---- calendar ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionsRow:
    experience: Experience
    sessions_per_week: int


SESSIONS_PER_WEEK: tuple[SessionsRow, ...] = (
    SessionsRow("beginner", 2),
    SessionsRow("experienced", 3),
)
SESSION_LETTERS = "ABC"
MIN_HOURS_BETWEEN_UNILATERAL_DAYS = 48  # sessions are whole days: at least 2 days apart
NO_SESSION_DAYS_BEFORE_HARD_RUN = 1  # never the day before a long run, intervals or a race
MAX_GARMIN_STEPS = 50  # Garmin Connect's reported per-workout step limit


def default_sessions_per_week(experience: Experience) -> int:
    return next(r.sessions_per_week for r in SESSIONS_PER_WEEK if r.experience == experience)


# ---- deload and regression -----------------------------------------------------------------
@dataclass(frozen=True)
class DeloadRow:
    experience: Experience
    every_nth_week: int
    sets_removed: int
    min_sets: int
    new_exercises: bool


DELOAD: tuple[DeloadRow, ...] = (
    DeloadRow("beginner", 3, 1, 1, False),
    DeloadRow("experienced", 4, 1, 1, False),
)


def deload_row(experience: Experience) -> DeloadRow:
    return next(r for r in DELOAD if r.experience == experience)


@dataclass(frozen=True)
class TrendRow:
    trend: str
    detector: str
    action: str
    phases_back: int


TRENDS: tuple[TrendRow, ...] = (
    TrendRow("worsened", "confirmed shift beyond MDC away from symmetry, during the program",
             "step back one phase from the phase it was confirmed in (hold in phase 1); "
             "reduce range or load", 1),
    TrendRow("improved", "returning, or a confirmed shift towards symmetry", "progress", 0),
    TrendRow("steady", "stable, or a shift smaller than the MDC", "progress", 0),
    TrendRow("no_evidence", "insufficient data", "progress on schedule", 0),
    TrendRow("pre_program", "worsening confirmed before the program started",
             "progress; the dose already reflects it", 0),
)  # fmt: skip


def trend_row(trend: str) -> TrendRow:
    return next(r for r in TRENDS if r.trend == trend)


# ---- rule catalogue (ids cited by every plan's explanation) --------------------------------
RULES: dict[str, str] = {
    "DATA-INSUFFICIENT": f"No focus side without a balance sensor and >= {MIN_COMPARABLE_RUNS} "
    "comparable runs with GCT balance.",
    "FOCUS-FROM-D": "Focus side = the side with the larger share of ground contact "
    "(d > 0 left, d < 0 right). A coaching assumption, not a proven fact.",
    "FOCUS-NONE-GREEN": "No focus side inside Garmin's green band (|d| <= 0.7 pp).",
    "FOCUS-COACH": "The coach's focus side overrides the rule.",
    "BAND-INITIAL": "With no confirmed band yet, the band of the robust estimate is the baseline.",
    "BAND-CONFIRMED": "The band used is the latest one the trend detector confirmed.",
    "BAND-PENDING": "A band change takes effect only once the detector confirms it.",
    "DOSE-BAND": "Unilateral sets focus:other come from the dose-by-band table.",
    "DOSE-SYMMETRIC": "Without a focus side both legs get the symmetric maintenance dose.",
    "DOSE-COACH": "The coach's set ratio overrides the dose table.",
    "FOCUS-FIRST": "The focus side always works first in each pair of steps.",
    "ACCESSORY-FOCUS": "Orange/red: one accessory block for the focus side.",
    "RED-NO-PLYO": "Red band: no progression into plyometrics (power phase held at strength).",
    "RED-PHYSIO": "Red band: the plan suggests a check by a physiotherapist.",
    "PHASE-SCHEDULE": "Phase by week since program start: control 1-4, strength 5-8, power 9-12.",
    "PHASE-LEVEL": "After week 12 the phases repeat one level up (harder variants, more reps).",
    "PHASE-COACH": "The coach's phase overrides the schedule.",
    "TREND-REGRESS": "Worsened beyond the MDC during the program: hold or step back one phase.",
    "TREND-PROGRESS": "Improved or steady (or no evidence): progress on schedule.",
    "TREND-PRE-PROGRAM": "A worsening confirmed before the program began does not regress it.",
    "DELOAD": "Deload every 4th week (3rd for beginners): one set fewer, no new exercises.",
    "TEMPO-CONTRAST": "Phases 2-3: fast concentric drive, controlled 3 s descent.",
    "VARIANT": "A harder variant (e.g. eyes closed) from a given week of the phase.",
    "SESSIONS-PER-WEEK": "Sessions per week: beginners 2, experienced 3 (or the profile's).",
    "SPACING-48H": "At least 48 h between unilateral strength days.",
    "HARD-RUN-EVE": "Never the day before a hard run (long run, intervals, race).",
    "WEEKDAYS-PREFERRED": "Preferred weekdays are used when the other rules allow.",
    "WEEK-SHORT": "Fewer sessions than wanted fit into the week.",
    "EQUIP-SUB": "An exercise needing missing equipment is replaced by its listed substitute.",
    "SWAP-COACH": "The coach swapped an exercise.",
    "MODULE-FOOT-ANKLE": "Foot & ankle module: cadence low for pace, or the coach asked.",
    "MODULE-ASYMMETRIC": "Asymmetric-pattern module (off by default): the coach turned it on.",
    "CADENCE-CUE": "Pace-adjusted cadence dropped persistently: metronome drill cue.",
    "PAST-KEPT": "Sessions in the past are never rewritten.",
    "STEP-BUDGET": f"A Garmin workout holds at most {MAX_GARMIN_STEPS} steps: lowest-priority "
    "optional items are dropped.",
}

CAVEAT_FOCUS = (
    "The focus-side rule (train the leg that stays on the ground longer first and more) is a "
    "coaching assumption, not a proven fact; a coach can override it."
)
CAVEAT_EVIDENCE = (
    "Strength training is not proven to change GCT balance: no study has measured GCT balance "
    "before and after a strength program (unilateral training does reduce jump asymmetry). "
    "Watch how your GCT balance responds over 6-10 weeks rather than expecting a correction."
)


# ---- rows for `evenstride plan --rules` ----------------------------------------------------
def _rows(table: tuple[Any, ...]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(r) for r in table]


def exercise_rows() -> list[dict[str, Any]]:
    """The exercise library with both Garmin Connect and FIT identifiers."""
    rows = []
    for e in EXERCISES:
        row = dataclasses.asdict(e)
        row["fit_category"] = fit_category_id(e.category)
        row["fit_exercise_name"] = fit_exercise_name(e.category, e.name)
        rows.append(row)
    return rows


def rules_tables() -> dict[str, list[dict[str, Any]]]:
    """Every rule table as a list of row dicts, in the order a coach would read them."""
    return {
        "bands": _rows(BANDS),
        "dose": _rows(DOSE),
        "phases": _rows(PHASES),
        "rep_schemes": _rows(REP_SCHEMES),
        "phase_library": _rows(PHASE_LIBRARY),
        "warmup": [{"key": k, "kind": kind} for k, kind in WARMUP],
        "accessory": [{"key": k, "kind": kind} for k, kind in ACCESSORY],
        "cooldown": [{"key": k, "kind": kind} for k, kind in COOLDOWN],
        "modules": _rows(MODULES),
        "sessions_per_week": _rows(SESSIONS_PER_WEEK),
        "calendar": [
            {"setting": "min_hours_between_unilateral_days",
             "value": MIN_HOURS_BETWEEN_UNILATERAL_DAYS},
            {"setting": "no_session_days_before_hard_run",
             "value": NO_SESSION_DAYS_BEFORE_HARD_RUN},
            {"setting": "min_comparable_runs_for_focus", "value": MIN_COMPARABLE_RUNS},
            {"setting": "max_garmin_steps", "value": MAX_GARMIN_STEPS},
        ],
        "deload": _rows(DELOAD),
        "trends": _rows(TRENDS),
        "exercises": exercise_rows(),
        "rule_ids": [{"id": k, "text": v} for k, v in RULES.items()],
    }  # fmt: skip
