"""Pick strength days inside one program week, around hard runs and earlier sessions.

Hard rules: at least 48 h (two calendar days) between unilateral days, never the day before a
hard run. Soft preferences, in order: the athlete's preferred weekdays, not on a hard-run day
itself, days spread about evenly (gaps up to 7 // n days count), then the earliest dates (so
the result is deterministic).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from itertools import combinations

from . import rules as R

MIN_DAYS_APART = R.MIN_HOURS_BETWEEN_UNILATERAL_DAYS // 24


def allowed(day: date, hard_runs: frozenset[date], taken: Iterable[date]) -> bool:
    """True when a strength day here breaks no hard rule."""
    eve = any(
        day + timedelta(days=k) in hard_runs
        for k in range(1, 1 + R.NO_SESSION_DAYS_BEFORE_HARD_RUN)
    )
    return not eve and all(abs((day - t).days) >= MIN_DAYS_APART for t in taken)


def _spaced(days: tuple[date, ...]) -> bool:
    return all((b - a).days >= MIN_DAYS_APART for a, b in zip(days, days[1:], strict=False))


def _spread(combo: tuple[date, ...], taken: tuple[date, ...], ideal: int) -> int:
    """Smallest gap (to the previous session too), capped at the even spacing 7 // n."""
    earlier = [t for t in taken if t < combo[0]]
    days = ((max(earlier),) if earlier else ()) + combo
    gaps = [(b - a).days for a, b in zip(days, days[1:], strict=False)] or [ideal]
    return min(min(gaps), ideal)


def pick_days(
    candidates: list[date],
    wanted: int,
    *,
    hard_runs: frozenset[date],
    taken: Iterable[date],
    preferred_weekdays: tuple[int, ...],
) -> tuple[date, ...]:
    """Up to ``wanted`` days from ``candidates``; fewer only when the hard rules leave no room."""
    taken = tuple(taken)
    ok = sorted(d for d in candidates if allowed(d, hard_runs, taken))
    preferred = set(preferred_weekdays)
    for n in range(min(wanted, len(ok)), 0, -1):
        best: tuple[tuple[int, int, int, tuple[int, ...]], tuple[date, ...]] | None = None
        for combo in combinations(ok, n):
            if not _spaced(combo):
                continue
            score = (
                sum(d.weekday() in preferred for d in combo),
                -sum(d in hard_runs for d in combo),
                _spread(combo, taken, ideal=7 // max(wanted, 1)),
                tuple(-d.toordinal() for d in combo),
            )
            if best is None or score > best[0]:
                best = (score, combo)
        if best is not None:
            return best[1]
    return ()
