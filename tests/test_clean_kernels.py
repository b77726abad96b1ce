"""The compiled cleaning kernels give the numpy/pandas reference's results to the bit.

Each test calls the reference (`_clean_numpy`, `_grade_numpy`, pandas, numpy) and the kernel
explicitly, never through the switch in `clean_samples`, so a kernel that drifts by one ulp, flips
one gate or reorders a flag fails here. Runs come from every running FIT file there is (the
project's fixtures always, ../shared/fit-samples when present) and from random arrays built to
hit the edge cases: NaNs, NaT, gaps, pauses, time going back, distance going back or standing
still, constant and negative altitude, and runs of 0-12 samples.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FIXTURES, RUNNING_GROUPS, sample_id, shared_sample_files

from evenstride.metrics import clean as CL
from evenstride.metrics import clean_kernels as K
from evenstride.metrics import columns as C
from evenstride.metrics.clean import CleanSamples, CleanSettings
from evenstride.metrics.fit import read_fit
from evenstride.metrics.run_table import RunTable, columns_frame

needs_numba = pytest.mark.skipif(K.clean_kernel is None, reason="numba not available")

FIELDS = ("t_s", "weight_s", "running", "settling", "warmup", "grade_pct", "level", "clean")
T0_NS = 1_767_225_600 * 10**9  # 2026-01-01 UTC
NAT = np.iinfo(np.int64).min


def running_fit_files() -> list[Path]:
    """Running FIT files: the project's samples and synthetic runs, plus the shared ones."""
    own = sorted(p for g in RUNNING_GROUPS for p in (FIXTURES / "samples" / g).glob("*.fit"))
    own += sorted((FIXTURES / "synthetic").rglob("*.fit"))
    return own + shared_sample_files(RUNNING_GROUPS)


def assert_same_bits(got: np.ndarray, want: np.ndarray, what: str = "") -> None:
    """Equal dtype, shape and bytes: also the sign of zeros and the NaN payloads."""
    assert got.dtype == want.dtype, what
    assert got.shape == want.shape, what
    assert np.array_equal(got, want, equal_nan=True), what
    assert got.tobytes() == want.tobytes(), what


def assert_same_clean(got: CleanSamples, want: CleanSamples) -> None:
    for name in FIELDS:
        assert_same_bits(getattr(got, name), getattr(want, name), name)
    assert got.flags == want.flags


# --------------------------------------------------------------------------- real runs


@needs_numba
@pytest.mark.parametrize("path", running_fit_files(), ids=sample_id)
def test_compiled_equals_reference_on_real_runs(path: Path) -> None:
    runs = read_fit(path.read_bytes()).runs()
    for run in runs:
        want = CL._clean_numpy(RunTable(run.columns))
        assert_same_clean(CL._clean_compiled(RunTable(run.columns)), want)
        assert_same_clean(
            CL._clean_compiled(run.columns, warmup_s=60), CL._clean_numpy(run.columns, warmup_s=60)
        )


@needs_numba
def test_compiled_equals_reference_on_real_runs_as_frames() -> None:
    """The DataFrame input (the library API) goes through the same kernel."""
    paths = running_fit_files()[:6]
    assert paths
    for path in paths:
        for run in read_fit(path.read_bytes()).runs():
            frame = columns_frame(run.columns)
            assert_same_clean(CL._clean_compiled(frame), CL._clean_numpy(frame))


def test_shared_samples_are_included(shared_samples: Path) -> None:
    """When ../shared/fit-samples is there, its running files are among the ones compared."""
    files = set(running_fit_files())
    assert {p for g in RUNNING_GROUPS for p in (shared_samples / g).glob("*.fit")} <= files


# --------------------------------------------------------------------------- random runs


def random_run(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """RunColumns with the awkward cases the import pipeline can meet."""
    steps_s = rng.choice([1.0, 1.0, 1.0, 1.0, 2.0, 0.0, 0.5, 4.0, 6.0, 40.0, -3.0], size=n)
    jitter = rng.integers(-400_000_000, 400_000_000, size=n) * rng.integers(0, 2)
    ns = T0_NS + np.cumsum((steps_s * 1e9).astype(np.int64) + jitter)
    if rng.random() < 0.1 and n:
        ns[rng.integers(0, n)] = NAT
    columns: dict[str, np.ndarray] = {C.TIMESTAMP: ns.view("datetime64[ns]")}

    def with_nans(values: np.ndarray, share: float) -> np.ndarray:
        values = values.astype(float)
        values[rng.random(n) < share] = np.nan
        return values

    if rng.random() < 0.85:
        columns[C.CADENCE] = with_nans(rng.uniform(100.0, 200.0, n), rng.choice([0.0, 0.1, 1.0]))
    if rng.random() < 0.85:
        columns[C.SPEED] = with_nans(rng.uniform(0.5, 9.0, n), rng.choice([0.0, 0.1, 1.0]))
    step_m = rng.choice([0.0, 0.0, 1.0, 3.0, 2.7, 15.0, -2.0], size=n) * rng.uniform(0.5, 1.5, n)
    distance = rng.uniform(-50.0, 5000.0) + np.cumsum(step_m)
    if rng.random() < 0.2:
        distance = np.round(distance)  # repeated values
    columns[C.DISTANCE] = with_nans(distance, rng.choice([0.0, 0.05, 0.5]))
    altitude = rng.uniform(-30.0, 3000.0) + np.cumsum(
        rng.normal(0.0, rng.choice([0.0, 0.3, 2.0]), n)
    )
    flat = rng.random(n) < rng.uniform(0.0, 0.8)  # runs of one repeated altitude
    for i in range(1, n):
        if flat[i]:
            altitude[i] = altitude[i - 1]
    if rng.random() < 0.2:
        altitude = np.round(altitude, 1) - rng.choice([0.0, altitude.max() + 0.5 if n else 0.0])
    if rng.random() < 0.1:
        altitude[rng.random(n) < 0.3] = -0.0
    if rng.random() > 0.1:
        columns[C.ALTITUDE] = with_nans(altitude, rng.choice([0.0, 0.05, 0.5, 1.0]))
    if rng.random() < 0.15:
        columns[C.GRADE] = with_nans(rng.normal(0.0, 3.0, n), rng.choice([0.2, 1.0]))
    if rng.random() < 0.2:
        columns[C.MOVING] = rng.random(n) < 0.9
    return columns


def random_settings(rng: np.random.Generator) -> CleanSettings:
    return CleanSettings(
        max_gap_s=float(rng.choice([0.5, 5.0, 30.0])),
        resume_settle_s=float(rng.choice([0.0, 10.0])),
        warmup_s=float(rng.choice([0.0, 60.0, 300.0])),
        max_abs_grade_pct=float(rng.choice([0.0, 2.0, 5.0])),
        grade_window_m=float(rng.choice([1.0, 7.5, 60.0, 400.0])),
        altitude_smooth_samples=int(rng.choice([1, 2, 3, 8, 9, 10, 25])),
    )


SIZES = (0, 1, 2, 3, 9, 10, 11, 12, 13, 40, 300)


@needs_numba
@pytest.mark.parametrize("seed", range(6))
def test_compiled_equals_reference_on_random_runs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(30):
        for n in SIZES:
            columns = random_run(rng, n)
            s = random_settings(rng) if rng.random() < 0.6 else CleanSettings()
            warmup = None if rng.random() < 0.7 else float(rng.uniform(0, 100))
            want = CL._clean_numpy(columns, s, warmup_s=warmup)
            assert_same_clean(CL._clean_compiled(columns, s, warmup_s=warmup), want)


@needs_numba
def test_compiled_equals_reference_on_random_frames() -> None:
    rng = np.random.default_rng(99)
    for _ in range(20):
        for n in (0, 1, 11, 300):
            frame = columns_frame(random_run(rng, n))
            s = random_settings(rng)
            assert_same_clean(CL._clean_compiled(frame, s), CL._clean_numpy(frame, s))


@needs_numba
def test_columns_missing_entirely() -> None:
    """No timestamp (1 Hz assumed), no cadence, no speed, no altitude: same arrays and flags."""
    rng = np.random.default_rng(5)
    for n in SIZES:
        for drop in (
            [C.TIMESTAMP],
            [C.CADENCE, C.SPEED],
            [C.ALTITUDE, C.DISTANCE],
            list(C.RUN_COLUMNS),
        ):
            columns = {k: v for k, v in random_run(rng, n).items() if k not in drop}
            if not columns:
                columns = {C.GCT_BALANCE: np.full(n, 50.0)}
            assert_same_clean(CL._clean_compiled(columns), CL._clean_numpy(columns))


def test_plain_python_sources_equal_reference() -> None:
    """The kernel sources run uncompiled (no numba needed) and give the same bits."""
    rng = np.random.default_rng(11)
    for _ in range(4):
        for n in (0, 1, 2, 10, 11, 60):
            columns = random_run(rng, n)
            s = random_settings(rng)
            want = CL._clean_numpy(columns, s)
            table = RunTable(columns)
            has_ts = table.has(C.TIMESTAMP) and n > 0
            has_moving = table.has(C.MOVING)
            grade_in = table.floats(C.GRADE)
            out = K._clean_source(
                table.timestamps_ns() if has_ts else np.zeros(0, np.int64),
                has_ts,
                table.floats(C.CADENCE),
                table.floats(C.SPEED),
                table.flags(C.MOVING) if has_moving else np.zeros(0, bool),
                has_moving,
                grade_in,
                table.floats(C.DISTANCE),
                table.floats(C.ALTITUDE),
                s.min_cadence_spm,
                s.min_speed_mps,
                s.max_speed_mps,
                s.warmup_s,
                s.max_gap_s,
                s.resume_settle_s,
                s.max_abs_grade_pct,
                s.grade_window_m,
                s.altitude_smooth_samples,
            )
            t, weight, running, settling, warmup, grade, level, clean, *_, given, _known = out
            if given:
                grade = grade_in
            for name, got in zip(
                FIELDS, (t, weight, running, settling, warmup, grade, level, clean), strict=True
            ):
                assert_same_bits(np.asarray(got), getattr(want, name), name)


# --------------------------------------------------------------------------- grade pieces


def pandas_roll_mean(values: np.ndarray, window: int) -> np.ndarray:
    return pd.Series(values).rolling(window, center=True, min_periods=1).mean().to_numpy()


def random_altitudes(rng: np.random.Generator, n: int) -> np.ndarray:
    kind = rng.integers(0, 6)
    if kind == 0:
        return np.full(n, rng.choice([0.0, -0.0, 12.5, -3.0, 0.1]))
    if kind == 1:  # steps between flat stretches
        return np.repeat(rng.normal(0, 50, n // 5 + 1), 5)[:n]
    if kind == 2:  # large magnitude: Kahan compensation matters
        return 1e9 + rng.normal(0, 1, n)
    if kind == 3:  # all negative
        return -rng.uniform(0.001, 100, n)
    if kind == 4:  # mixed signs near zero, with signed zeros
        values = rng.normal(0, 1e-3, n)
        values[rng.random(n) < 0.2] = -0.0
        values[rng.random(n) < 0.2] = 0.0
        return values
    return 100 + np.cumsum(rng.normal(0, 0.7, n))


@needs_numba
def test_rolling_mean_equals_pandas() -> None:
    rng = np.random.default_rng(3)
    for _ in range(60):
        for n in (0, 1, 2, 3, 8, 9, 10, 11, 12, 50, 1000):
            values = random_altitudes(rng, n)
            if rng.random() < 0.3:
                values[rng.random(n) < 0.3] = np.nan
            for window in (1, 2, 3, 4, 8, 9, 10, 11, 12, 50):
                got = K.roll_mean_centred(values, window)
                assert_same_bits(got, pandas_roll_mean(values, window), f"n={n} w={window}")


def sorted_with_plateaus(rng: np.random.Generator, n: int) -> np.ndarray:
    steps = rng.choice([0.0, 0.0, 1e-6, 1.0, 2.5, 1e-3], size=n) * rng.uniform(0.5, 1.5, n)
    return rng.uniform(-100, 100) + np.cumsum(steps)


@needs_numba
def test_interp_sorted_equals_numpy() -> None:
    rng = np.random.default_rng(4)
    for _ in range(300):
        m = int(rng.choice([1, 2, 3, 4, 5, 6, 9, 10, 11, 50, 500]))
        xp = sorted_with_plateaus(rng, m)
        fp = random_altitudes(rng, m)
        if rng.random() < 0.1:  # infinities exercise numpy's NaN retry
            fp[rng.random(m) < 0.2] = rng.choice([np.inf, -np.inf])
        lo, hi = xp[0] - 5, xp[-1] + 5
        keys = np.sort(
            np.concatenate([rng.uniform(lo, hi, 2 * m), rng.choice(xp, m), [xp[0], xp[-1]]])
        )
        with np.errstate(all="ignore"):
            want = np.interp(keys, xp, fp)
        assert_same_bits(K.interp_sorted(keys, xp, fp), want, f"m={m}")


@needs_numba
def test_grade_kernel_equals_reference() -> None:
    rng = np.random.default_rng(8)
    for _ in range(150):
        for n in (0, 1, 2, 9, 10, 11, 12, 30, 400):
            columns = random_run(rng, n)
            distance = columns[C.DISTANCE]
            altitude = columns.get(C.ALTITUDE, np.full(n, np.nan))
            if rng.random() < 0.3 and n:
                altitude = random_altitudes(rng, n)
            s = random_settings(rng)
            want = CL._grade_numpy(distance, altitude, s)
            got = K.grade_kernel(distance, altitude, s.grade_window_m, s.altitude_smooth_samples)
            assert_same_bits(got, want, f"n={n} {s}")
            assert_same_bits(CL.grade_from_altitude(distance, altitude, s), want)


def test_comparison_catches_one_ulp() -> None:
    """The checks above are strict: one ulp, a signed zero or a flipped flag fails them."""
    a = np.array([1.0, 0.0, np.nan])
    with pytest.raises(AssertionError):
        assert_same_bits(np.array([np.nextafter(1.0, 2.0), 0.0, np.nan]), a)
    with pytest.raises(AssertionError):
        assert_same_bits(np.array([1.0, -0.0, np.nan]), a)
    want = CL._clean_numpy({C.TIMESTAMP: (T0_NS + np.arange(20) * 10**9).view("datetime64[ns]")})
    got = CL._clean_numpy({C.TIMESTAMP: (T0_NS + np.arange(20) * 10**9).view("datetime64[ns]")})
    got.clean = got.clean.copy()
    got.clean[3] = not got.clean[3]
    with pytest.raises(AssertionError):
        assert_same_clean(got, want)


# --------------------------------------------------------------------------- the switch


@needs_numba
def test_clean_samples_runs_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    kernel = K.clean_kernel

    def counting(*args):  # type: ignore[no-untyped-def]
        calls.append(1)
        return kernel(*args)

    monkeypatch.setattr(K, "clean_kernel", counting)
    columns = random_run(np.random.default_rng(1), 300)
    assert_same_clean(CL.clean_samples(columns), CL._clean_numpy(columns))
    assert calls == [1]


@needs_numba
def test_one_compiled_version_for_every_input_kind() -> None:
    """Frames (pandas hands out some columns read-only) and arrays share one compiled kernel."""
    columns = random_run(np.random.default_rng(3), 200)
    columns[C.MOVING] = np.ones(200, dtype=bool)
    CL._clean_compiled(columns)
    CL._clean_compiled(columns_frame(columns))
    CL._clean_compiled({C.CADENCE: np.full(5, 170.0)})
    assert len(K.clean_kernel.signatures) == 1


def test_settings_the_kernel_does_not_take_use_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """pandas rejects a 0-sample window: the same error as before, from the numpy path."""
    monkeypatch.setattr(K, "clean_kernel", None)
    columns = random_run(np.random.default_rng(2), 300)
    assert_same_clean(CL.clean_samples(columns), CL._clean_numpy(columns))
    monkeypatch.undo()
    assert not CL._compilable(CleanSettings(altitude_smooth_samples=0))
    assert not CL._compilable(CleanSettings(grade_window_m=0.0))
    assert not CL._compilable(CleanSettings(altitude_smooth_samples=9.0))  # type: ignore[arg-type]
    n = 50
    flat = {C.DISTANCE: np.arange(n) * 3.0, C.ALTITUDE: np.full(n, 5.0)}
    with pytest.raises(ValueError):
        CL.clean_samples(flat, CleanSettings(altitude_smooth_samples=0))


def test_no_jit_environment_keeps_numpy() -> None:
    """EVENSTRIDE_NO_JIT=1: no kernel, and clean_samples still works (numpy path)."""
    code = (
        "import numpy as np\n"
        "from evenstride.metrics import clean, clean_kernels\n"
        "assert clean_kernels.clean_kernel is None and not clean._compilable(clean.DEFAULT_CLEAN)\n"
        "cs = clean.clean_samples({'cadence_spm': np.full(5, 170.0), 'speed_mps': np.full(5, 3.0)})\n"
        "print(cs.running.tolist(), cs.flags)\n"
    )
    env = {**os.environ, "EVENSTRIDE_NO_JIT": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "[True, True, True, True, True]" in out.stdout
