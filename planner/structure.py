"""How a block's steps become repeated rounds, shared by the FIT and Garmin Connect renderers.

A plan stores one :class:`Step` per exercise and side with its own set count (e.g. LEFT 3 sets,
RIGHT 2 sets). Watches want repeat groups, so the focus side's extra sets come first as their own
round, then the paired sets (focus side first in each pair). Both renderers use this one function
so the FIT file and the Garmin JSON cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

from .models import Block, Session, Step


@dataclass(frozen=True)
class Round:
    """``iterations`` times: the steps in order, then ``rest_s`` seconds of rest (0 = none)."""

    iterations: int
    steps: tuple[Step, ...]
    rest_s: int


def rounds(block: Block) -> list[Round]:
    out: list[Round] = []
    for _, group in groupby(block.steps, key=lambda s: s.exercise):
        steps = list(group)
        rest = max(s.rest_s for s in steps)
        if len(steps) != 2:
            out.extend(Round(s.sets, (s,), rest) for s in steps)
            continue
        first, second = steps
        shared = min(first.sets, second.sets)
        if first.sets > shared:
            out.append(Round(first.sets - shared, (first,), rest))
        if shared:
            out.append(Round(shared, (first, second), rest))
        if second.sets > shared:
            out.append(Round(second.sets - shared, (second,), rest))
    return out


def round_step_count(r: Round) -> int:
    """Workout steps a round needs: the repeat step (if repeated), its exercises and its rest."""
    return (1 if r.iterations > 1 else 0) + len(r.steps) + (1 if r.rest_s > 0 else 0)


def session_step_count(session: Session) -> int:
    return sum(round_step_count(r) for b in session.blocks for r in rounds(b))
