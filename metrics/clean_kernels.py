"""`clean_samples` in one compiled pass per run (numba), bit-identical to the numpy reference.

The numpy/pandas code in metrics.clean makes ~40 array calls per run and builds two pandas
objects for the altitude smoothing; on a typical import that overhead, not the arithmetic, is
the cost. These kernels do the same per-sample work in loops, one call per run. Every floating
point step repeats the reference's exact operation order so that results match to the bit:

* the rolling mean is pandas' Cython `roll_mean` (Kahan add/remove with separate compensations,
  the negative-value count via signbit, the run-of-equal-values rule of GH#42064) over the bounds
  pandas' `FixedWindowIndexer` gives a centred window with min_periods=1;
* `_interp_sorted` is numpy's C `arr_interp` (same index j as its binary search, which a forward
  walk finds on these sorted inputs; `slope*(x - xp[j]) + fp[j]`, the NaN retry from the right
  end, clamping to fp[0]/fp[-1]);
* the median (numba's np.median: the same middle value, or the same (a + b) / 2), the running
  maximum and the cumulative sum (sequential, as np.cumsum) give numpy's values on these
  NaN-free inputs.

The source functions are plain Python/numpy; they are compiled with njit(cache=True, nogil=True)
when numba is there and EVENSTRIDE_NO_JIT is not set (the public kernels are None otherwise and
metrics.clean keeps its numpy code). tests/test_clean_kernels.py holds them to the reference.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

try:  # pragma: no cover - exercised through metrics.clean
    if os.environ.get("EVENSTRIDE_NO_JIT"):
        raise ImportError("disabled by EVENSTRIDE_NO_JIT")
    from numba import njit
except ImportError:  # pragma: no cover
    njit = None


def _compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The compiled function, or the plain source: helpers stay callable from plain Python."""
    return njit(cache=True, nogil=True)(fn) if njit is not None else fn


# --------------------------------------------------------------------------- pandas roll_mean


def _roll_mean_centred_source(values, window):
    """`Series(values).rolling(window, center=True, min_periods=1).mean()` (pandas roll_mean)."""
    n = len(values)
    out = np.empty(n)
    offset = (window - 1) // 2  # FixedWindowIndexer, center=True
    nobs = 0
    neg_ct = 0
    sum_x = 0.0
    compensation_add = 0.0
    compensation_remove = 0.0
    prev_value = 0.0
    same = 0  # num_consecutive_same_value
    prev_s = 0
    prev_e = 0
    for i in range(n):
        raw_end = i + 1 + offset
        s = min(max(raw_end - window, 0), n)
        e = min(max(raw_end, 0), n)
        if i == 0 or s >= prev_e:
            # setup (a window that shares nothing with the previous one starts afresh)
            compensation_add = 0.0
            compensation_remove = 0.0
            sum_x = 0.0
            nobs = 0
            neg_ct = 0
            prev_value = values[s]
            same = 0
            first = s
        else:
            for j in range(prev_s, s):  # remove_mean
                val = values[j]
                if val == val:
                    nobs -= 1
                    y = -val - compensation_remove
                    t = sum_x + y
                    compensation_remove = t - sum_x - y
                    sum_x = t
                    if np.signbit(val):
                        neg_ct -= 1
            first = prev_e
        for j in range(first, e):  # add_mean
            val = values[j]
            if val == val:
                nobs += 1
                y = val - compensation_add
                t = sum_x + y
                compensation_add = t - sum_x - y
                sum_x = t
                if np.signbit(val):
                    neg_ct += 1
                if val == prev_value:
                    same += 1
                else:
                    same = 1
                prev_value = val
        if nobs >= 1:  # calc_mean with minp=1
            result = sum_x / nobs
            if same >= nobs:
                result = prev_value
            elif (neg_ct == 0 and result < 0) or (neg_ct == nobs and result > 0):
                result = 0.0  # all values of one sign: no rounding artefact of the other sign
        else:
            result = np.nan
        out[i] = result
        prev_s = s
        prev_e = e
    return out


_roll_mean_centred = _compiled(_roll_mean_centred_source)


# --------------------------------------------------------------------------- numpy interp


def _interp_sorted_source(keys, xp, fp):
    """`np.interp(keys, xp, fp)` (left/right None) for non-decreasing, NaN-free keys and xp.

    numpy's C `arr_interp` looks up j = the last index with xp[j] <= key (-1 below xp[0],
    len(xp) above xp[-1]) by a binary search from the previous j; on sorted xp every search path
    ends at that same j, so for sorted keys a forward walk finds it, without the search's
    branches. The arithmetic is numpy's: fp[j] when key == xp[j] or j is the last index,
    `slope*(key - xp[j]) + fp[j]` otherwise, retried from the right end if that is NaN.
    """
    m = len(xp)
    out = np.empty(len(keys))
    top = xp[m - 1]
    j = -1
    for i in range(len(keys)):
        key = keys[i]
        while j + 1 < m and xp[j + 1] <= key:
            j += 1
        if key > top:
            r = fp[m - 1]
        elif j == -1:
            r = fp[0]
        elif j == m - 1 or xp[j] == key:
            r = fp[j]
        else:
            slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
            r = slope * (key - xp[j]) + fp[j]
            if np.isnan(r):
                r = slope * (key - xp[j + 1]) + fp[j + 1]
                if np.isnan(r) and fp[j] == fp[j + 1]:
                    r = fp[j]
        out[i] = r
    return out


_interp_sorted = _compiled(_interp_sorted_source)


# --------------------------------------------------------------------------- grade and gates


def _grade_source(distance_m, altitude_m, grade_window_m, smooth_samples):
    """metrics.clean.grade_from_altitude (reference) without its ~20 array calls."""
    n = len(distance_m)
    grade = np.full(n, np.nan)
    rows = np.empty(n, np.int64)
    m = 0
    for i in range(n):
        if np.isfinite(distance_m[i]) and np.isfinite(altitude_m[i]):
            rows[m] = i
            m += 1
    if m < 10:
        return grade
    d = np.empty(m)
    alt = np.empty(m)
    for k in range(m):
        v = distance_m[rows[k]]
        if k == 0 or v > d[k - 1]:  # np.maximum.accumulate keeps the running value on ties
            d[k] = v
        else:
            d[k] = d[k - 1]
        alt[k] = altitude_m[rows[k]]
    if d[m - 1] - d[0] < grade_window_m:
        return grade
    a = _roll_mean_centred(alt, smooth_samples)
    xs = np.empty(m)
    for k in range(m):
        xs[k] = d[k] + k * 1e-6
    half = grade_window_m / 2.0
    top = xs[m - 1]
    hi = np.empty(m)
    lo = np.empty(m)
    for k in range(m):
        up = d[k] + half  # np.minimum / np.maximum: the first operand wins ties
        hi[k] = up if up <= top else top
        down = d[k] - half
        lo[k] = down if down >= xs[0] else xs[0]
    # xs, hi and lo never go down (sums of non-decreasing terms; rounding keeps order)
    a_hi = _interp_sorted(hi, xs, a)
    a_lo = _interp_sorted(lo, xs, a)
    for k in range(m):
        span = hi[k] - lo[k]
        denominator = span if span > 0 else np.nan
        grade[rows[k]] = np.nan if span < half else 100.0 * (a_hi[k] - a_lo[k]) / denominator
    return grade


_grade_impl = _compiled(_grade_source)


def _level_source(grade, max_abs_grade, running, settling, warmup, level, clean):
    """Fill `level` and `clean` from the grade; True when any grade is known."""
    known = False
    for i in range(len(grade)):
        g = grade[i]
        if np.isfinite(g):
            known = True
        level[i] = not (abs(g) > max_abs_grade)  # NaN grade passes
        clean[i] = running[i] and not settling[i] and not warmup[i] and level[i]
    return known


_level_impl = _compiled(_level_source)


def _clean_source(
    ns,
    has_timestamp,
    cadence,
    speed,
    moving,
    has_moving,
    grade_in,
    distance_m,
    altitude_m,
    min_cadence,
    min_speed,
    max_speed,
    warm_limit,
    max_gap,
    settle_s,
    max_abs_grade,
    grade_window_m,
    smooth_samples,
):
    """Every per-sample array of metrics.clean.clean_samples in one pass over the run.

    Returns (t, weight, running, settling, warmup, grade, level, clean, has_cadence, has_speed,
    grade_given, grade_known); `grade` is empty when grade_given (the caller keeps its column).
    """
    n = len(cadence)
    t = np.empty(n)
    if has_timestamp and n > 0:
        t0 = float(ns[0])
        for i in range(n):
            t[i] = (float(ns[i]) - t0) / 1e9
    else:
        for i in range(n):
            t[i] = float(i)

    # nominal step: median of the steps in (0, max_gap]
    steps = np.empty(max(n - 1, 0))
    m = 0
    for i in range(1, n):
        step = t[i] - t[i - 1]
        if step > 0 and step <= max_gap:
            steps[m] = step
            m += 1
    nominal = np.median(steps[:m]) if m > 0 else 1.0

    has_cadence = False
    has_speed = False
    for i in range(n):
        if np.isfinite(cadence[i]):
            has_cadence = True
            break
    for i in range(n):
        if np.isfinite(speed[i]):
            has_speed = True
            break

    weight = np.empty(n)
    running = np.empty(n, np.bool_)
    settling = np.empty(n, np.bool_)
    warmup = np.empty(n, np.bool_)
    resumed = -np.inf  # np.maximum.accumulate of the pause start times
    running_time = 0.0
    for i in range(n):
        dt = nominal if i == 0 else t[i] - t[i - 1]
        gap = dt > max_gap
        if gap:
            weight[i] = nominal
        else:
            weight[i] = 0.0 if dt < 0.0 else dt

        ok = has_cadence or has_speed
        if has_cadence and not cadence[i] >= min_cadence:
            ok = False
        if has_speed and not (speed[i] >= min_speed and speed[i] <= max_speed):
            ok = False
        if has_moving and not moving[i]:
            ok = False
        running[i] = ok

        start = t[i] if (gap or i == 0) else -np.inf
        if i == 0 or start > resumed:
            resumed = start
        settling[i] = gap or (t[i] - resumed < settle_s)

        part = weight[i] if ok else 0.0
        running_time = part if i == 0 else running_time + part
        warmup[i] = running_time <= warm_limit

    grade_given = False
    for i in range(n):
        if np.isfinite(grade_in[i]):
            grade_given = True
            break
    if grade_given:
        grade = np.empty(0)
    else:
        grade = _grade_impl(distance_m, altitude_m, grade_window_m, smooth_samples)
    level = np.empty(n, np.bool_)
    clean = np.empty(n, np.bool_)
    if grade_given:  # two calls, not one variable: the caller's column may be read-only
        grade_known = _level_impl(grade_in, max_abs_grade, running, settling, warmup, level, clean)
    else:
        grade_known = _level_impl(grade, max_abs_grade, running, settling, warmup, level, clean)
    return (
        t,
        weight,
        running,
        settling,
        warmup,
        grade,
        level,
        clean,
        has_cadence,
        has_speed,
        grade_given,
        grade_known,
    )


# Public kernels: None when numba is not there (or EVENSTRIDE_NO_JIT=1).
roll_mean_centred = _roll_mean_centred if njit is not None else None
interp_sorted = _interp_sorted if njit is not None else None
grade_kernel = _grade_impl if njit is not None else None
clean_kernel = njit(cache=True, nogil=True)(_clean_source) if njit is not None else None
