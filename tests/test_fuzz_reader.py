"""Bounded fuzzing of read_fit: damaged input gives FitReadError or a flagged, sane partial read.

The mutators and the invariants are those of benchmarks/fuzz_reader.py (the long-running fuzzer),
driven here by hypothesis with a fixed budget and `derandomize=True`, so the suite is
deterministic. Every bug the fuzzer found is pinned below as a small input built in code.
"""

from __future__ import annotations

import importlib.util
import struct
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from fastcrc import crc16
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evenstride.metrics.fit import FitReadError, read_fit

REPO_ROOT = Path(__file__).resolve().parents[1]


def _load_fuzzer():
    """benchmarks/ is not a package: load the fuzzer's module by path (mutators + invariants)."""
    spec = importlib.util.spec_from_file_location(
        "fuzz_reader", REPO_ROOT / "benchmarks" / "fuzz_reader.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


fz = _load_fuzzer()

# Seeds: the repository's own small files (fast to decode), so the test never needs ../shared.
SEEDS = sorted(
    p
    for p in list((REPO_ROOT / "fixtures" / "synthetic").glob("*.fit"))
    + list((REPO_ROOT / "fixtures" / "samples").rglob("*.fit"))
    if p.stat().st_size <= 100_000
)
BLOBS = [p.read_bytes() for p in SEEDS]
LAYOUTS = [fz.layout_of(b) for b in BLOBS]

FUZZ = settings(
    max_examples=350,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_seed_files_pass_the_invariants() -> None:
    assert len(SEEDS) >= 8
    for blob in BLOBS:
        fz.check_input(blob)


@FUZZ
@given(
    i=st.integers(0, len(BLOBS) - 1),
    j=st.integers(0, len(BLOBS) - 1),
    rng=st.randoms(use_true_random=False),
    check_crc=st.booleans(),
)
def test_mutated_samples_keep_the_contract(i: int, j: int, rng, check_crc: bool) -> None:
    """Bit flips, header/definition corruption, truncation, segment splicing, garbage..."""
    data, names = fz.mutate(rng, BLOBS[i], LAYOUTS[i], BLOBS[j])
    fz.check_input(data, check_crc=check_crc)


# --- a tiny FIT writer for structure-aware generation and the regression cases -----------------

TS = 1_000_000_000  # 2021-09-08 in FIT seconds


def definition(
    local: int,
    gnum: int,
    fields: list[tuple[int, int, int]],
    *,
    big: bool = False,
    dev: list[tuple[int, int, int]] | None = None,
) -> bytes:
    header = 0x40 | local | (0x20 if dev is not None else 0)
    out = bytes([header, 0, int(big)]) + gnum.to_bytes(2, "big" if big else "little")
    out += bytes([len(fields)]) + b"".join(bytes(f) for f in fields)
    if dev is not None:
        out += bytes([len(dev)]) + b"".join(bytes(d) for d in dev)
    return out


def message(local: int, payload: bytes) -> bytes:
    return bytes([local]) + payload


def fit(*messages: bytes, hsize: int = 14) -> bytes:
    """A finalised single-segment FIT file with correct header and file CRCs."""
    body = b"".join(messages)
    head = struct.pack("<BBHI4s", hsize, 0x20, 2132, len(body), b".FIT")
    if hsize == 14:
        head += struct.pack("<H", crc16.arc(head))
    blob = head + body
    return blob + struct.pack("<H", crc16.arc(blob))


FILE_ID = definition(0, 0, [(0, 1, 0x00), (4, 4, 0x86)]) + message(
    0, bytes([4]) + struct.pack("<I", TS)
)
RECORD = definition(2, 20, [(253, 4, 0x86), (84, 2, 0x84), (41, 2, 0x84)])
RECORD_DATA = message(2, struct.pack("<IHH", TS + 1, 5000, 2500))


def session(fields: list[tuple[int, int, int]], payload: bytes) -> bytes:
    return definition(1, 18, fields) + message(1, payload)


@st.composite
def generated_files(draw: st.DrawFn) -> bytes:
    """Definitions with arbitrary field numbers, sizes and base types for the decoded messages."""
    parts = [FILE_ID]
    for local in range(draw(st.integers(1, 4))):
        gnum = draw(st.sampled_from((18, 19, 20, 21, 23, 12, 0, 206, 20, 20)))
        nums = st.sampled_from((253, 2, 5, 6, 7, 8, 9, 14, 41, 73, 78, 84, 0, 1, 3, 4))
        sizes = st.sampled_from((0, 1, 2, 3, 4, 8, 16))
        btypes = st.sampled_from(fz.BASE_TYPE_BYTES)
        fields = draw(st.lists(st.tuples(nums, sizes, btypes), max_size=8))
        big = draw(st.booleans())
        dev = draw(st.none() | st.lists(st.tuples(st.just(0), sizes, st.just(0)), max_size=2))
        parts.append(definition(local + 1, gnum, fields, big=big, dev=dev))
        size = sum(f[1] for f in fields) + sum(d[1] for d in dev or ())
        for _ in range(draw(st.integers(0, 3))):
            compressed = draw(st.booleans()) and local + 1 < 4
            head = 0x80 | ((local + 1) << 5) | draw(st.integers(0, 31)) if compressed else local + 1
            parts.append(bytes([head]) + draw(st.binary(min_size=size, max_size=size)))
    return fit(*parts)


@settings(FUZZ, max_examples=250)
@given(data=generated_files())
def test_generated_definitions_keep_the_contract(data: bytes) -> None:
    fz.check_input(data)


# --- regressions: inputs the fuzzer found (each one raised, or broke an invariant) -------------


def _ok(data: bytes):
    fz.check_input(data)
    return read_fit(data)


def test_component_field_declared_as_float_array() -> None:
    """TypeError in messages._bits: avg_speed (a uint16 with components) declared float32[2]."""
    fields = [(253, 4, 0x86), (2, 4, 0x86), (5, 1, 0x00), (14, 8, 0x88)]
    ff = _ok(fit(FILE_ID, session(fields, struct.pack("<IIB2f", TS + 9, TS, 1, 1.5, 2.5))))
    assert "avg_speed" not in ff.sessions[0] and ff.sessions[0]["sport"] == "running"


@pytest.mark.parametrize(
    ("field", "payload"),
    [
        ((7, 4, 0x07), b"abc\0"),  # total_elapsed_time as a string
        ((7, 8, 0x86), struct.pack("<II", 5, 6)),  # ... as an array of two uint32
    ],
)
def test_session_elapsed_time_of_the_wrong_shape(field: tuple, payload: bytes) -> None:
    """TypeError in runs._windows: start + elapsed with elapsed a str or a tuple."""
    fields = [(253, 4, 0x86), (2, 4, 0x86), (5, 1, 0x00), field]
    data = fit(
        FILE_ID, RECORD, RECORD_DATA, session(fields, struct.pack("<IIB", TS + 9, TS, 1) + payload)
    )
    (run,) = _ok(data).runs()
    assert run.elapsed_s == 0.0 and len(run.records) == 1  # window from the session's timestamp


def test_date_time_declared_as_uint64() -> None:
    """OSError/OverflowError from datetime.fromtimestamp: start_time declared uint64 = 2**62."""
    fields = [(253, 4, 0x86), (2, 8, 0x8F), (5, 1, 0x00), (7, 4, 0x86)]
    data = fit(
        FILE_ID, RECORD, RECORD_DATA, session(fields, struct.pack("<IQBI", TS + 9, 2**62, 1, 5000))
    )
    ff = _ok(data)
    assert "start_time" not in ff.sessions[0]


def test_enum_declared_as_float_is_not_decoded() -> None:
    """A float32 `sport` came out as 1.0: a value the enum cannot have."""
    fields = [(253, 4, 0x86), (2, 4, 0x86), (5, 4, 0x88), (7, 4, 0x86)]
    data = fit(
        FILE_ID, RECORD, RECORD_DATA, session(fields, struct.pack("<IIfI", TS + 9, TS, 1.0, 5000))
    )
    assert "sport" not in _ok(data).sessions[0]


@pytest.mark.parametrize(
    ("fields", "payload"),
    [
        ([(253, 8, 0x8F), (84, 4, 0x85)], struct.pack("<Qi", 2**62, -500)),  # OverflowError
        ([(253, 4, 0x88), (84, 4, 0x88)], struct.pack("<ff", float("nan"), 1e9)),  # cast warning
        ([(253, 4, 0x85), (84, 2, 0x83)], struct.pack("<ih", -5, -3)),  # negative balance
        ([(253, 4, 0x86), (84, 4, 0x86)], struct.pack("<II", TS, 0xFFFFFF00)),  # balance 4e7 %
    ],
)
def test_record_fields_of_a_foreign_type_are_missing(fields: list, payload: bytes) -> None:
    """Timestamp/stance_time_balance declared wider, signed or float: NaN/NaT, not nonsense."""
    ff = _ok(fit(FILE_ID, definition(2, 20, fields), message(2, payload)))
    assert ff.record_count == 1
    assert np.isnan(ff.records["stance_time_balance"].iloc[0])


def test_compressed_timestamp_needs_a_valid_reference() -> None:
    """Compressed headers after an invalid (uint64) full timestamp: was an int64 overflow."""
    rec = definition(2, 20, [(253, 8, 0x8F), (84, 4, 0x85)])
    payload = struct.pack("<Qi", 2**63 - 10, 5)
    ff = _ok(fit(FILE_ID, rec, message(2, payload), bytes([0x80 | 2 << 5 | 3]) + payload))
    assert ff.records["timestamp"].isna().all()


def test_compressed_timestamp_rolling_past_the_uint32_range() -> None:
    payload = struct.pack("<IHH", 0xFFFFFFFE, 5000, 2500)
    ff = _ok(fit(FILE_ID, RECORD, message(2, payload), bytes([0x80 | 2 << 5 | 1]) + payload))
    assert ff.records["timestamp"].notna().tolist() == [True, False]


def test_every_warning_flags_the_read_partial() -> None:
    """A header CRC mismatch or a few trailing bytes gave warnings with partial=False."""
    data = bytearray(fit(FILE_ID, RECORD, RECORD_DATA))
    data[12] ^= 0xFF  # header CRC
    ff = _ok(bytes(data))
    assert ff.partial and any("header CRC" in w for w in ff.warnings)
    ff = _ok(fit(FILE_ID, RECORD, RECORD_DATA) + b"\x00\x01\x02")
    assert ff.partial and any("trailing" in w for w in ff.warnings)


# --- resource use: size fields must not drive allocation or time ------------------------------


def _peak(data: bytes) -> int:
    read_fit(fit(FILE_ID, RECORD, RECORD_DATA)).runs()  # warm imports outside the measurement
    tracemalloc.start()
    try:
        fz.check_input(data)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def _python_calls(data: bytes) -> int:
    """Python function calls made while reading `data` (C calls such as numpy's not counted)."""
    calls = 0

    def count(frame, event, arg) -> None:  # noqa: ANN001 - sys.setprofile's signature
        nonlocal calls
        calls += event == "call"

    sys.setprofile(count)
    try:
        read_fit(data)
    finally:
        sys.setprofile(None)
    return calls


@pytest.mark.parametrize(
    "data",
    [
        # a definition claiming 255 fields of 255 bytes, and data messages that cannot fit
        fit(
            FILE_ID, definition(2, 20, [(n, 255, 0x0D) for n in range(255)]), message(2, b"x" * 99)
        ),
        # header data_size of 4 GB on a small file
        fit(FILE_ID, RECORD, RECORD_DATA)[:4]
        + struct.pack("<I", 0xFFFFFFFF)
        + fit(FILE_ID, RECORD, RECORD_DATA)[8:],
        # a chained segment header that promises 4 GB after a valid segment
        fit(FILE_ID, RECORD, RECORD_DATA)
        + struct.pack("<BBHI4sH", 14, 0x20, 2132, 0xFFFFFFFF, b".FIT", 0),
        # many developer fields of 255 bytes each
        fit(FILE_ID, definition(2, 20, [(253, 4, 0x86)], dev=[(i, 255, 0) for i in range(255)])),
    ],
    ids=["255x255-fields", "4GB-data-size", "4GB-chained", "255-dev-fields"],
)
def test_claimed_sizes_do_not_drive_memory(data: bytes) -> None:
    assert _peak(data) < 50 * len(data) + 8_000_000


def test_a_flood_of_tiny_messages_stays_linear() -> None:
    """200k one-byte compressed-timestamp records: no per-message Python work beyond the walk.

    (The compressed-timestamp pass was a Python loop over every message; it is vectorised now.)

    Memory is linear too, but not a small multiple of such a file: every record costs ~20
    float64 columns (160 bytes) however few bytes it took in the file.
    """

    def flood(n: int) -> bytes:
        return fit(
            FILE_ID, RECORD, RECORD_DATA, definition(3, 20, []), bytes([0x80 | 3 << 5 | 5]) * n
        )

    ff = read_fit(flood(200_000))
    assert ff.record_count == 200_001 and ff.records["timestamp"].notna().all()
    # no Python work per message: 200k messages make as many Python calls as 1k do
    read_fit(flood(10))  # first-use caches out of the way
    assert _python_calls(flood(200_000)) == _python_calls(flood(1_000))


def test_huge_field_count_is_a_clean_error() -> None:
    with pytest.raises(FitReadError):
        read_fit(struct.pack("<BBHI4s", 12, 0x20, 2132, 0xFFFFFFFF, b".FIT") + b"\x40\x00\x00")
