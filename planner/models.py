"""The planner's data: what goes in (assessment, profile, overrides) and what comes out (a plan).

Everything is a frozen dataclass of plain values so a plan can be compared, hashed, stored as JSON
and rendered by pure functions without any of them knowing where the numbers came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from .serialize import canonical_json, from_json

Side = Literal["left", "right", "both"]
LegSide = Literal["left", "right"]
Band = Literal["green", "orange", "red"]
Experience = Literal["beginner", "experienced"]
DetectorState = Literal["insufficient_data", "stable", "shifted_left", "shifted_right", "returning"]
CadenceState = Literal["insufficient_data", "stable", "dropped", "rose", "returning"]
BlockKind = Literal["warmup", "main", "accessory", "foot_ankle", "asymmetric_pattern", "cooldown"]
Equipment = Literal["bodyweight", "band", "dumbbells", "box_bench"]
Units = Literal["metric", "imperial"]

EQUIPMENT: tuple[Equipment, ...] = ("bodyweight", "band", "dumbbells", "box_bench")
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunEvidence:
    """One run that supports the assessment (shown in the plan's explanation)."""

    id: str
    date: date
    d: float | None


@dataclass(frozen=True)
class ConfirmedBand:
    """A band the trend detector confirmed (beyond the athlete's MDC) from ``since`` on."""

    since: date
    band: Band
    d: float | None = None


@dataclass(frozen=True)
class Assessment:
    """What the metrics side knows about the athlete, in the planner's own vocabulary.

    ``d`` is GCT balance left % minus 50 (percentage points): positive means the left foot stays on
    the ground longer. ``zone`` is Garmin's colour for the robust estimate; ``confirmed_bands`` is
    the detector's history, because a band change only counts once the detector confirmed it.
    """

    d: float | None
    zone: Band | None = None
    te: float | None = None
    mdc: float | None = None
    state: DetectorState = "insufficient_data"
    magnitude: float | None = None
    since: date | None = None
    confirmed_bands: tuple[ConfirmedBand, ...] = ()
    supporting_runs: tuple[RunEvidence, ...] = ()
    comparable_runs: int = 0
    clean_minutes: float = 0.0
    sensor: str | None = None
    has_balance_sensor: bool = False
    cadence_state: CadenceState = "insufficient_data"
    cadence_low_for_pace: bool = False


@dataclass(frozen=True)
class AthleteProfile:
    """Per-athlete settings; ``sessions_per_week`` None means "the default for the experience"."""

    athlete: str
    start_date: date
    experience: Experience = "beginner"
    sessions_per_week: int | None = None
    weekdays: tuple[int, ...] = ()
    equipment: frozenset[Equipment] = frozenset({"bodyweight"})
    units: Units = "metric"

    def __post_init__(self) -> None:
        days = tuple(_weekday_number(w) for w in self.weekdays)
        object.__setattr__(self, "weekdays", days)
        object.__setattr__(self, "equipment", frozenset(self.equipment) | {"bodyweight"})
        unknown = set(self.equipment) - set(EQUIPMENT)
        if unknown:
            raise ValueError(f"unknown equipment {sorted(unknown)}; known: {list(EQUIPMENT)}")
        if self.sessions_per_week is not None and not 1 <= self.sessions_per_week <= 3:
            raise ValueError("sessions_per_week must be 1, 2 or 3")


def _weekday_number(value: int | str) -> int:
    if isinstance(value, int) and 0 <= value <= 6:
        return value
    if isinstance(value, str) and value[:3].lower() in WEEKDAY_NAMES:
        return WEEKDAY_NAMES.index(value[:3].lower())
    raise ValueError(f"not a weekday: {value!r} (use 0=Monday..6=Sunday or mon..sun)")


@dataclass(frozen=True)
class CoachOverrides:
    """What a coach may force per athlete; every field None/empty means "follow the rules"."""

    focus_side: LegSide | Literal["none"] | None = None
    phase: int | None = None
    swaps: tuple[tuple[str, str], ...] = ()
    dose: tuple[int, int] | None = None
    modules: tuple[tuple[str, bool], ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.swaps, dict):
            object.__setattr__(self, "swaps", tuple(sorted(self.swaps.items())))
        if isinstance(self.modules, dict):
            object.__setattr__(self, "modules", tuple(sorted(self.modules.items())))
        if self.phase is not None and self.phase not in (1, 2, 3):
            raise ValueError("phase override must be 1, 2 or 3")
        if self.dose is not None:
            focus, other = self.dose
            if focus < 1 or other < 0:
                raise ValueError("dose override needs focus sets >= 1 and other sets >= 0")


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExerciseRef:
    """An exercise as Garmin knows it (category + exerciseName) plus the name people read."""

    key: str
    category: str
    name: str
    display: str


@dataclass(frozen=True)
class Step:
    """One exercise for one side: ``sets`` rounds of ``reps`` (or ``duration_s``), then rest."""

    exercise: ExerciseRef
    side: Side
    sets: int
    reps: int | None = None
    duration_s: int | None = None
    rest_s: int = 0
    tempo: str | None = None
    notes: str | None = None


@dataclass(frozen=True)
class Block:
    kind: BlockKind
    title: str
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Session:
    date: date
    name: str
    week: int
    phase: int
    level: int
    deload: bool
    focus_side: LegSide | None
    blocks: tuple[Block, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FiredRule:
    id: str
    text: str


@dataclass(frozen=True)
class Evidence:
    """The numbers the plan was built from, copied so the plan explains itself later."""

    d: float | None
    zone: Band | None
    band_used: Band | None
    te: float | None
    mdc: float | None
    state: DetectorState
    magnitude: float | None
    since: date | None
    runs: tuple[RunEvidence, ...]
    comparable_runs: int
    clean_minutes: float
    sensor: str | None
    has_balance_sensor: bool
    cadence_state: CadenceState
    cadence_low_for_pace: bool


@dataclass(frozen=True)
class Explanation:
    evidence: Evidence
    rules: tuple[FiredRule, ...]
    caveats: tuple[str, ...]

    def rule_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.id for r in self.rules))


@dataclass(frozen=True)
class Plan:
    """A whole program window: pure data, rendered elsewhere."""

    athlete: str
    generated_on: date
    week: int
    phase: int
    level: int
    focus_side: LegSide | None
    band: Band | None
    units: Units
    sessions: tuple[Session, ...]
    explanation: Explanation
    schema: int = field(default=1)

    def to_json(self) -> str:
        return canonical_json(self)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return from_json(cls, text)
