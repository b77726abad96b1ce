"""Garmin's colour zones for GCT balance (and cadence), as pure vectorised functions.

Garmin Connect colours GCT balance by how far it is from 50 % on either side: green <= 50.7 %,
orange 50.8-52.2 %, red > 52.2 % (and the mirror 49.3 / 47.8 on the right side). See
shared/research/anchors.md §0.3 and §1.2 (Runalyze hard-codes the same numbers with a 0.1 slip on
the right side; we use Garmin's symmetric limits).

Quantisation: the FIT field has 0.01 % resolution but Garmin shows one decimal, so values such as
50.74 or 50.75 fall in the 0.1-wide gap between the published limits. We classify a value by the
zone its one-decimal display falls in (round half up on |d|): the boundaries are therefore the gap
midpoints, |d| < 0.75 pp is green, 0.75 <= |d| < 2.25 pp is orange, |d| >= 2.25 pp is red. Every
value Garmin itself shows as 50.7 is green and every value it shows as 50.8 is orange.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

GREEN = "green"
ORANGE = "orange"
RED = "red"
ZONES = (GREEN, ORANGE, RED)

GREEN_LIMIT_PP = 0.75
"""|d| below this is green (Garmin: <= 50.7 % either side; midpoint of the 50.7/50.8 gap)."""
ORANGE_LIMIT_PP = 2.25
"""|d| below this (and >= GREEN_LIMIT_PP) is orange (Garmin: 50.8-52.2 %); at or above it, red."""

ZONE_KEYS = ("green", "orange_left", "orange_right", "red_left", "red_right")
"""Keys of the per-side time-in-zone dictionaries (left = more contact time on the left foot)."""

_EPS = 1e-9  # float noise guard: 50.75 - 50 must be exactly 0.75 (it is in binary, but be safe)

# Garmin cadence colour bands (steps/min), anchors.md §1.2: purple > 185, blue 174-185,
# green 163-173, orange 151-162, red < 151.
CADENCE_ZONES = ((185.5, "purple"), (173.5, "blue"), (162.5, "green"), (150.5, "orange"))


def zone_code(d: npt.ArrayLike) -> npt.NDArray[np.int8]:
    """0 = green, 1 = orange, 2 = red for deviations d = balance - 50 (pp); -1 for NaN."""
    a = np.abs(np.asarray(d, dtype=float))
    code = np.where(a + _EPS < GREEN_LIMIT_PP, 0, np.where(a + _EPS < ORANGE_LIMIT_PP, 1, 2))
    return np.where(np.isnan(a), -1, code).astype(np.int8)


def zone_of_d(d: float | None) -> str | None:
    """Garmin zone name of one deviation d (pp from 50 %); None when d is unknown."""
    if d is None:
        return None
    a = abs(float(d))  # the scalar form of zone_code (same float64 comparisons)
    if a != a or a == float("inf"):
        return None
    return ZONES[0 if a + _EPS < GREEN_LIMIT_PP else 1 if a + _EPS < ORANGE_LIMIT_PP else 2]


def zone_of_balance(balance_left_pct: float | None) -> str | None:
    """Garmin zone name of one GCT-balance value (% left)."""
    if balance_left_pct is None:
        return None
    return zone_of_d(balance_left_pct - 50.0)


def side_of_d(d: float | None) -> str | None:
    """'left' when the left foot has the larger contact share (d > 0), 'right' when d < 0."""
    if d is None or not np.isfinite(d) or d == 0:
        return None
    return "left" if d > 0 else "right"


def zone_keys(d: npt.ArrayLike) -> npt.NDArray[np.int8]:
    """Index into ZONE_KEYS per sample (green / orange_left / orange_right / red_left / red_right).

    -1 for NaN. Exactly 50.0 counts as green whatever the side.
    """
    d = np.asarray(d, dtype=float)
    code = zone_code(d)
    left = d > 0
    key = np.where(code == 0, 0, np.where(code == 1, np.where(left, 1, 2), np.where(left, 3, 4)))
    return np.where(code < 0, -1, key).astype(np.int8)


def cadence_zone(spm: float | None) -> str | None:
    """Garmin's cadence colour band for a steps/min value (1-spm display resolution)."""
    if spm is None or not np.isfinite(spm):
        return None
    for limit, name in CADENCE_ZONES:
        if spm >= limit:
            return name
    return "red"
