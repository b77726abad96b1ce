"""Compiled statistics of one run: every number `summarise_run` stores, in one call.

A run summary needs about fifteen medians (the run, its thirds, every lap, every speed bin) of
four columns, a dozen weighted sums and means, zone times and lap times. In numpy that is about a
hundred small array calls per run, whose overhead costs more than reading the run from its FIT
file. Here `run_statistics` does it in one compiled pass. The results are bit-identical to the
numpy reference in summary.py (`_statistics_numpy`), which stays as the fallback (no numba, or
EVENSTRIDE_NO_JIT=1):
- medians walk the same stable value order (`counting_order`, a linear counting sort for the
  quantised sensor columns) with the same sequential cumulative weights and numpy's own
  interpolation rule (`_interp`, a port of numpy's `arr_interp`). Each median gathers its
  samples and their running weight sums in one pass; the interpolation works out the positions
  only where its binary search looks;
- sums use numpy's pairwise summation (`_pairwise`), so means and minutes match to the bit.
Every kernel lives in this one module on purpose: numba's on-disk cache (cache=True) only notices
changes to the file of the function it caches, and a caller caches its callees' code with it.
No kernel is recursive either: numba's cache can crash on recursive functions (numba#6061).
"""

from __future__ import annotations

import math
import os

import numpy as np

from evenstride.metrics.zones import _EPS as ZONE_EPS
from evenstride.metrics.zones import GREEN_LIMIT_PP, ORANGE_LIMIT_PP

try:  # pragma: no cover - exercised through summary.summarise_run
    if os.environ.get("EVENSTRIDE_NO_JIT"):
        raise ImportError("disabled by EVENSTRIDE_NO_JIT")
    from numba import njit
except ImportError:  # pragma: no cover
    njit = None


def _interp_source(x, cum, ws, total, fp, start, n):
    """np.interp(x, xp, fp[start:start + n]) for one x (numpy's arr_interp, default left/right),
    where xp[k] = (cum[start + k] - 0.5 * ws[start + k]) / total: the Hazen positions of weighted
    values, worked out only where the search looks (cum: the running sums of ws).

    With ws = 0 and total = 1, xp is cum itself: plain np.interp (the tests use that). The
    positions are those numpy computes from np.cumsum, so the result is the same to the bit.
    clean_kernels has its own port (a forward walk over sorted keys): a kernel calling one in
    another module would keep a stale copy in numba's cache when that module changes.
    """
    if n == 1:  # left and right default to fp[0] too (even for a NaN x, as numpy)
        return fp[start]
    if math.isnan(x):
        return x
    last = start + n - 1
    if x > (cum[last] - 0.5 * ws[last]) / total:
        return fp[last]
    if x < (cum[start] - 0.5 * ws[start]) / total:
        return fp[start]
    lo, hi = 0, n  # the last j with xp[j] <= x (numpy's binary_search_with_guess)
    while lo < hi:
        mid = lo + ((hi - lo) >> 1)
        if x >= (cum[start + mid] - 0.5 * ws[start + mid]) / total:
            lo = mid + 1
        else:
            hi = mid
    j = start + lo - 1
    xj = (cum[j] - 0.5 * ws[j]) / total
    if j == last or xj == x:
        return fp[j]
    xj1 = (cum[j + 1] - 0.5 * ws[j + 1]) / total
    slope = (fp[j + 1] - fp[j]) / (xj1 - xj)
    res = slope * (x - xj) + fp[j]
    if math.isnan(res):
        res = slope * (x - xj1) + fp[j + 1]
        if math.isnan(res) and fp[j] == fp[j + 1]:
            res = fp[j]
    return res


def _quantiles_of_source(xs, ws, cum, start, stop, qs, out, row):
    """Hazen-midpoint weighted quantiles of xs[start:stop] (sorted) into out[row, :].

    `cum[start:stop]`: the running sums of ws[start:stop], added one by one as np.cumsum does.
    """
    m = stop - start
    if m == 0:
        for k in range(len(qs)):
            out[row, k] = np.nan
        return
    total = cum[stop - 1]
    for k in range(len(qs)):
        out[row, k] = _interp(qs[k], cum, ws, total, xs, start, m)


def _sorted_grouped_source(order, sv, sw, groups, n_groups, qs):
    """Quantiles qs of every group 0..n_groups-1 (other ids are left out), NaN when empty.

    `sv`, `sw`: the values and weights gathered in stable value order (`order`); samples
    with a weight that is not finite and > 0 are left out. Returns (n_groups, len(qs)).
    """
    counts = np.zeros(n_groups + 1, np.int64)
    gs = np.empty(len(order), np.int64)  # group of each sample, in value order
    for k in range(len(order)):
        g = groups[order[k]]
        if not (0 <= g < n_groups and sw[k] > 0 and sw[k] < np.inf):
            g = -1
        gs[k] = g
        counts[g + 1] += 1
    counts[0] = 0
    for g in range(n_groups):
        counts[g + 1] += counts[g]
    m = counts[n_groups]
    xs = np.empty(m)
    ws = np.empty(m)
    cum = np.empty(m)
    fill = counts[:n_groups].copy()
    running = np.zeros(n_groups)
    for k in range(len(order)):  # a stable bucket sort: each group keeps the value order
        g = gs[k]
        if g >= 0:
            at = fill[g]
            xs[at] = sv[k]
            ws[at] = sw[k]
            running[g] += sw[k]  # each group's own running sum, in its order
            cum[at] = running[g]
            fill[g] = at + 1
    out = np.empty((n_groups, len(qs)))
    for g in range(n_groups):
        _quantiles_of(xs, ws, cum, counts[g], counts[g + 1], qs, out, g)
    return out


def _sorted_masked_source(order, sv, sw, mask, qs):
    """Quantiles qs of the masked samples (one group), from values in stable order."""
    xs = np.empty(len(order))
    ws = np.empty(len(order))
    cum = np.empty(len(order))
    m = 0
    total = 0.0
    for k in range(len(order)):
        if mask[order[k]] and sw[k] > 0 and sw[k] < np.inf:
            xs[m] = sv[k]
            ws[m] = sw[k]
            total += sw[k]
            cum[m] = total
            m += 1
    out = np.empty((1, len(qs)))
    _quantiles_of(xs, ws, cum, 0, m, qs, out, 0)
    return out[0]


def _counting_order_source(x, per_unit, max_range):
    """Indices of x's finite values in stable value order, by a counting sort on x * per_unit.

    Sensor columns are quantised (balance in 0.01 %, speed in mm/s, GCT in 0.1 ms), so their
    values map to a small range of integers and the sort is one linear pass. Returns
    (order, True), or (empty, False) when the values are not quantised that way (the key is
    not one-to-one on them, or the range is too wide): the caller then sorts as usual.
    """
    n = len(x)
    keys = np.empty(n, np.int64)
    lo = np.iinfo(np.int64).max
    hi = np.iinfo(np.int64).min
    m = 0
    for i in range(n):
        v = x[i] * per_unit
        if math.isfinite(v):
            if not -4.0e18 < v < 4.0e18:
                return np.empty(0, np.int64), False
            k = math.floor(v + 0.5)  # monotone in x: equal values share a key
            keys[i] = k
            lo = min(lo, k)
            hi = max(hi, k)
            m += 1
        else:
            keys[i] = np.iinfo(np.int64).min
    if m == 0:
        return np.empty(0, np.int64), True
    if hi - lo > max_range:
        return np.empty(0, np.int64), False
    counts = np.zeros(hi - lo + 2, np.int64)
    for i in range(n):
        if keys[i] != np.iinfo(np.int64).min:
            counts[keys[i] - lo + 1] += 1
    for k in range(1, len(counts)):
        counts[k] += counts[k - 1]
    order = np.empty(m, np.int64)
    value_of = np.full(hi - lo + 1, np.nan)  # the one value each key stands for
    for i in range(n):  # in index order: ties keep it (a stable sort)
        k = keys[i]
        if k != np.iinfo(np.int64).min:
            seen = value_of[k - lo]
            if seen != x[i]:
                if not math.isnan(seen):  # two values share a key: this order could be wrong
                    return np.empty(0, np.int64), False
                value_of[k - lo] = x[i]
            order[counts[k - lo]] = i
            counts[k - lo] += 1
    return order, True


def _value_orders_source(bal, spd, cad, gct, per_unit, max_range):
    """counting_order of the four summary columns in one call: (orders..., ok per column)."""
    o_bal, ok_bal = counting_order(bal, per_unit[0], max_range)
    o_spd, ok_spd = counting_order(spd, per_unit[1], max_range)
    o_cad, ok_cad = counting_order(cad, per_unit[2], max_range)
    o_gct, ok_gct = counting_order(gct, per_unit[3], max_range)
    ok = np.array([ok_bal, ok_spd, ok_cad, ok_gct])
    return o_bal, o_spd, o_cad, o_gct, ok


def _speed_bins_source(spd, bal, weights, within, bin_mps):
    """Speed bins of the samples with balance and speed: (groups, seconds, n used, ok).

    Bin k is the k-th occupied floor(speed / bin_mps) in ascending order (np.unique's order);
    samples outside `within` or without both values get group -1. Seconds sum in sample order,
    as np.bincount does. ok is False for absurd speed ranges (the caller uses np.unique).
    """
    n = len(spd)
    raw = np.empty(n, np.int64)
    lo = np.iinfo(np.int64).max
    hi = np.iinfo(np.int64).min
    for i in range(n):
        if within[i] and math.isfinite(bal[i]) and math.isfinite(spd[i]):
            k = np.int64(math.floor(spd[i] / bin_mps))
            raw[i] = k
            lo = min(lo, k)
            hi = max(hi, k)
        else:
            raw[i] = np.iinfo(np.int64).min
    groups = np.full(n, -1, np.int64)
    if lo > hi:
        return groups, np.zeros(0), 0, True
    if hi - lo > 4 * n + 1024:
        return groups, np.zeros(0), 0, False
    ids = np.full(hi - lo + 1, -1, np.int64)
    for i in range(n):
        if raw[i] != np.iinfo(np.int64).min:
            ids[raw[i] - lo] = 0
    n_bins = 0
    for k in range(len(ids)):
        if ids[k] == 0:
            ids[k] = n_bins
            n_bins += 1
    seconds = np.zeros(n_bins)
    used = 0
    for i in range(n):
        if raw[i] != np.iinfo(np.int64).min:
            g = ids[raw[i] - lo]
            groups[i] = g
            seconds[g] += weights[i]
            used += 1
    return groups, seconds, used, True


# indices into the `scalars` array returned by run_statistics
HAS_BALANCE, BALANCE_MIN, RUNNING_MIN, CLEAN_MIN, N_BALANCE, N_CADENCE = range(6)
SPEED_MED, BAL_Q25, BAL_Q50, BAL_Q75, BAL_MEAN, DRIFT = range(6, 12)
CAD_MEAN, CAD_MED, GCT_MEAN, GCT_MED, VO_MEAN, VR_MEAN, STEP_MEAN = range(12, 19)
BINS_USED, BINS_OK = range(19, 21)
N_SCALARS = 21

_NO_KEY = np.iinfo(np.int64).min


def _pairwise_leaf(a, lo, n):
    """numpy's pairwise_sum for n <= 128: 8 lanes, then the rest one by one."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    stop = n - n % 8
    while i < stop:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


def _pairwise_source(a, lo, n):
    """sum(a[lo:lo + n]) exactly as numpy adds a contiguous float64 array.

    numpy halves blocks longer than 128 (at a multiple of 8) and adds the halves' sums; the same
    tree is walked here with an explicit stack instead of recursion.
    """
    if n <= 128:
        return _pairwise_leaf(a, lo, n)
    starts = np.empty(128, np.int64)
    sizes = np.empty(128, np.int64)
    stage = np.zeros(128, np.int64)
    values = np.empty(128)
    top = 0
    nv = 0
    starts[0], sizes[0], stage[0] = lo, n, 0
    while top >= 0:
        s, m = starts[top], sizes[top]
        if m <= 128:
            values[nv] = _pairwise_leaf(a, s, m)
            nv += 1
            top -= 1
            continue
        half = m // 2
        half -= half % 8
        if stage[top] == 0:  # left half next
            stage[top] = 1
            top += 1
            starts[top], sizes[top], stage[top] = s, half, 0
        elif stage[top] == 1:  # then the right half
            stage[top] = 2
            top += 1
            starts[top], sizes[top], stage[top] = s + half, m - half, 0
        else:  # both done: left + right, as numpy returns them
            values[nv - 2] = values[nv - 2] + values[nv - 1]
            nv -= 1
            top -= 1
    return values[0]


def _masked_sum_source(values, mask, buf):
    """values[mask].sum() (numpy's pairwise order), using buf as scratch."""
    m = 0
    for i in range(len(values)):
        if mask[i]:
            buf[m] = values[i]
            m += 1
    return _pairwise(buf, 0, m)


def _masked_average_source(x, w, mask, buf, buf2):
    """np.average(x[ok], weights=w[ok]) with ok = mask & isfinite(x); NaN when nothing is left."""
    m = 0
    for i in range(len(x)):
        if mask[i] and math.isfinite(x[i]):
            buf[m] = x[i] * w[i]
            buf2[m] = w[i]
            m += 1
    if m == 0:
        return np.nan
    return _pairwise(buf, 0, m) / _pairwise(buf2, 0, m)


def _weighted_mean_source(v, w):
    """metrics.weights.weighted_mean: mean of the non-NaN values with weight > 0, else NaN."""
    n = len(v)
    prod = np.empty(n)
    kept = np.empty(n)
    m = 0
    for i in range(n):
        if not math.isnan(v[i]) and w[i] > 0:
            prod[m] = v[i] * w[i]
            kept[m] = w[i]
            m += 1
    total = _pairwise(kept, 0, m)
    return _pairwise(prod, 0, m) / total if total > 0 else np.nan


def _hold_weighted_means_source(t, intervals, cap, columns):
    """weights.hold_weights(t, intervals, cap), then weighted_mean of every row of `columns`.

    `intervals`: (start, stop) rows, none when the timer always ran.

    The same float operations in the same order as the numpy functions: one compiled call per
    run instead of about thirty numpy calls (the stored "watch means" of every run).
    """
    n = len(t)
    held = np.empty(n)
    for i in range(n):
        nxt = t[i + 1] if i + 1 < n else t[i] + 1.0
        if len(intervals) == 0:
            h = nxt - t[i]
        else:
            h = 0.0
            for k in range(len(intervals)):  # np.minimum / np.maximum / np.clip: NaN propagates
                hi, lo = nxt, t[i]
                start, stop = intervals[k, 0], intervals[k, 1]
                if math.isnan(stop):  # a NaN hi or lo stays NaN: comparisons with it fail
                    hi = np.nan
                elif stop < hi:
                    hi = stop
                if math.isnan(start):
                    lo = np.nan
                elif start > lo:
                    lo = start
                part = hi - lo
                if part < 0.0:
                    part = 0.0
                h += part
            if i == n - 1:
                h = 1.0  # the final sample is written as the timer stops
        if h < 0.0:
            h = 0.0
        elif h > cap:
            h = cap
        held[i] = h
    out = np.empty(columns.shape[0])
    for r in range(columns.shape[0]):
        out[r] = weighted_mean(columns[r], held)
    return out


def _theil_sen_slope_source(x, y):
    """summary.theil_sen's slope (inputs of at most its max_points): the median slope of every
    pair of finite points i < j with |x_j - x_i| > 1e-12; NaN when there is none.

    The speed-bin slope of every run needs it for a handful of points, where numpy's
    triu_indices/median calls cost ~90 us; the same differences, quotients and median here.
    """
    n = len(x)
    xs = np.empty(n)
    ys = np.empty(n)
    m = 0
    for i in range(n):
        if math.isfinite(x[i]) and math.isfinite(y[i]):
            xs[m] = x[i]
            ys[m] = y[i]
            m += 1
    if m < 2:
        return np.nan
    slopes = np.empty(m * (m - 1) // 2)
    k = 0
    for i in range(m):
        for j in range(i + 1, m):
            dx = xs[j] - xs[i]
            if abs(dx) > 1e-12:
                slopes[k] = (ys[j] - ys[i]) / dx
                k += 1
    if k == 0:
        return np.nan
    return np.median(slopes[:k])


def _lap_of_source(ts_ns, starts, ends, order, out):
    """summary._lap_index: the lap of every record, -1 outside every lap.

    `order` sorts the laps' starts stably (start -1 when unknown); a record belongs to the
    last lap starting at or before it, if it is not past that lap's end.
    """
    m = len(order)
    for i in range(len(ts_ns)):
        t = ts_ns[i]
        lo, hi = 0, m  # number of starts <= t (searchsorted side="right")
        while lo < hi:
            mid = (lo + hi) >> 1
            if starts[order[mid]] <= t:
                lo = mid + 1
            else:
                hi = mid
        if lo == 0:
            out[i] = -1
            continue
        lap = order[lo - 1]
        out[i] = lap if t <= ends[lap] and starts[lap] >= 0 else -1


def _run_statistics_source(
    w, clean, running, lap_clean, bal, spd, cad, gct, vo, vr, step,
    o_bal, o_spd, o_cad, o_gct, bin_mps, ts_ns, lap_starts, lap_ends, lap_order,
):  # fmt: skip
    """Every array statistic of summarise_run; see summary._statistics_numpy for the meaning.

    `bal` is already limited to the plausible range; o_* are the columns' stable value orders
    (summary.Ranked); the lap arrays come from summary._lap_bounds, with the starts' order.
    """
    n = len(w)
    scalars = np.full(N_SCALARS, np.nan)
    buf = np.empty(n)
    buf2 = np.empty(n)
    positive = np.empty(n, np.bool_)
    use = np.empty(n, np.bool_)
    bal_clean = np.empty(n, np.bool_)
    has_balance = False
    n_bal = 0
    n_cad = 0
    for i in range(n):
        positive[i] = w[i] > 0 and w[i] < np.inf
        use[i] = clean[i] and positive[i]
        fin = math.isfinite(bal[i])
        has_balance = has_balance or fin
        bal_clean[i] = clean[i] and fin
        n_bal += bal_clean[i]
        n_cad += clean[i] and math.isfinite(cad[i])
    scalars[HAS_BALANCE] = 1.0 if has_balance else 0.0
    scalars[N_BALANCE] = n_bal
    scalars[N_CADENCE] = n_cad
    scalars[BALANCE_MIN] = _masked_sum(w, bal_clean, buf) / 60.0
    scalars[RUNNING_MIN] = _masked_sum(w, running, buf) / 60.0
    scalars[CLEAN_MIN] = _masked_sum(w, clean, buf) / 60.0

    half = np.array([0.5])
    # each column's values and weights gathered once in value order; every median filters them
    sv_bal, sw_bal = bal[o_bal], w[o_bal]
    sv_spd, sw_spd = spd[o_spd], w[o_spd]
    sv_cad, sw_cad = cad[o_cad], w[o_cad]
    sv_gct, sw_gct = gct[o_gct], w[o_gct]
    scalars[SPEED_MED] = _sorted_masked(o_spd, sv_spd, sw_spd, use, half)[0]

    zone_min = np.zeros(5)
    bin_spd = np.empty(0)
    bin_bal = np.empty(0)
    bin_secs = np.empty(0)
    if has_balance and n_bal > 0:
        q = _sorted_masked(o_bal, sv_bal, sw_bal, use, np.array([0.25, 0.5, 0.75]))
        scalars[BAL_Q25], scalars[BAL_Q50], scalars[BAL_Q75] = q[0], q[1], q[2]
        scalars[BAL_MEAN] = _masked_average(bal, w, bal_clean, buf, buf2)
        for i in range(n):
            if bal_clean[i]:
                d = bal[i] - 50.0
                a = abs(d)
                if a + ZONE_EPS < GREEN_LIMIT_PP:
                    key = 0
                elif a + ZONE_EPS < ORANGE_LIMIT_PP:
                    key = 1 if d > 0 else 2
                else:
                    key = 3 if d > 0 else 4
                zone_min[key] += w[i]
        for k in range(5):
            zone_min[k] = zone_min[k] / 60.0
        third = n_bal // 3
        if third >= 30:
            seen = 0
            first_end = -1
            last_start = -1
            for i in range(n):
                if bal_clean[i]:
                    seen += 1
                    if seen == third:
                        first_end = i
                    if seen == n_bal - third + 1:
                        last_start = i
            first = np.zeros(n, np.bool_)
            last = np.zeros(n, np.bool_)
            for i in range(n):
                if bal_clean[i] and positive[i]:
                    first[i] = i <= first_end
                    last[i] = i >= last_start
            scalars[DRIFT] = (
                _sorted_masked(o_bal, sv_bal, sw_bal, last, half)[0]
                - _sorted_masked(o_bal, sv_bal, sw_bal, first, half)[0]
            )
        groups, bin_secs, used, ok = speed_bins(spd, bal, w, clean, bin_mps)
        scalars[BINS_USED] = used
        scalars[BINS_OK] = 1.0 if ok else 0.0
        if ok and used >= 2:
            nb = len(bin_secs)
            bin_spd = _sorted_grouped(o_spd, sv_spd, sw_spd, groups, nb, half)[:, 0]
            bin_bal = _sorted_grouped(o_bal, sv_bal, sw_bal, groups, nb, half)[:, 0]

    scalars[CAD_MEAN] = _masked_average(cad, w, clean, buf, buf2)
    scalars[CAD_MED] = _sorted_masked(o_cad, sv_cad, sw_cad, use, half)[0]
    scalars[GCT_MEAN] = _masked_average(gct, w, clean, buf, buf2)
    scalars[GCT_MED] = _sorted_masked(o_gct, sv_gct, sw_gct, use, half)[0]
    scalars[VO_MEAN] = _masked_average(vo, w, clean, buf, buf2)
    scalars[VR_MEAN] = _masked_average(vr, w, clean, buf, buf2)
    scalars[STEP_MEAN] = _masked_average(step, w, clean, buf, buf2)

    n_laps = len(lap_starts)
    laps = np.full((5, n_laps), np.nan)
    if n_laps > 0 and len(ts_ns) == n:
        lap_of = np.empty(n, np.int64)
        _lap_of(ts_ns, lap_starts, lap_ends, lap_order, lap_of)
        group = np.empty(n, np.int64)
        secs = np.zeros(n_laps)
        for i in range(n):
            g = lap_of[i] if lap_clean[i] else -1
            group[i] = g
            if g >= 0:
                secs[g] += w[i]
        laps[0] = _sorted_grouped(o_bal, sv_bal, sw_bal, group, n_laps, half)[:, 0]
        laps[1] = _sorted_grouped(o_cad, sv_cad, sw_cad, group, n_laps, half)[:, 0]
        laps[2] = _sorted_grouped(o_gct, sv_gct, sw_gct, group, n_laps, half)[:, 0]
        laps[3] = _sorted_grouped(o_spd, sv_spd, sw_spd, group, n_laps, half)[:, 0]
        laps[4] = secs
    return scalars, zone_min, bin_spd, bin_bal, bin_secs, laps


# compiled when numba is there; otherwise the plain functions (summary.py then uses numpy)
_compile = njit(cache=True, nogil=True) if njit is not None else (lambda f: f)
_interp = _compile(_interp_source)
_quantiles_of = _compile(_quantiles_of_source)
_sorted_grouped = _compile(_sorted_grouped_source)
_sorted_masked = _compile(_sorted_masked_source)
counting_order = _compile(_counting_order_source)
speed_bins = _compile(_speed_bins_source)
value_orders = _compile(_value_orders_source)
_pairwise_leaf = _compile(_pairwise_leaf)
_pairwise = _compile(_pairwise_source)
_masked_sum = _compile(_masked_sum_source)
_masked_average = _compile(_masked_average_source)
weighted_mean = _compile(_weighted_mean_source)
hold_weighted_means = _compile(_hold_weighted_means_source)
_lap_of = _compile(_lap_of_source)
theil_sen_slope = _compile(_theil_sen_slope_source)
run_statistics = _compile(_run_statistics_source)
COMPILED = njit is not None


def compiled_cache_ready() -> bool:
    """False while this machine has not compiled the kernels yet (a first run: about 20 s).

    Looks for numba's on-disk cache index of the run kernel. That path is a numba internal, so
    anything unexpected answers True (no notice) rather than failing.
    """
    if njit is None:
        return True
    try:
        return os.path.exists(run_statistics._cache._cache_file._index_path)
    except AttributeError:  # pragma: no cover - a numba without these internals
        return True
