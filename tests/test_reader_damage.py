"""Damaged input: a clear FitReadError or a flagged partial read, never a traceback or a wrong number."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from fastcrc import crc16

from evenstride.metrics.fit import FitReadError, read_fit

SYNTHETIC = Path(__file__).resolve().parents[1] / "fixtures" / "synthetic"
GOOD = SYNTHETIC / "steady_left_51_2.fit"


def _header_size(data: bytes) -> int:
    return data[0]


def test_empty_file() -> None:
    with pytest.raises(FitReadError, match="empty file"):
        read_fit(b"")


@pytest.mark.parametrize(
    "blob", [b"hello world, not a fit file at all", b"\x0e\x10" + b"\x00" * 40, bytes(range(200))]
)
def test_garbage(blob: bytes) -> None:
    with pytest.raises(FitReadError, match="not a FIT file"):
        read_fit(blob)


def test_missing_file_is_a_read_error(tmp_path: Path) -> None:
    with pytest.raises(FitReadError, match="cannot read"):
        read_fit(tmp_path / "nope.fit")


def test_truncated_everywhere_gives_a_consistent_prefix() -> None:
    """Cut the file at many points: each read is a prefix of the full one, flagged partial."""
    data = GOOD.read_bytes()
    full = read_fit(data).records
    cuts = np.linspace(_header_size(data) + 1, len(data) - 1, 60).astype(int)
    for cut in cuts:
        try:
            ff = read_fit(data[:cut])
        except FitReadError:
            continue  # nothing usable yet (cut inside the first definitions)
        assert ff.partial and ff.warnings
        part = ff.records
        assert len(part) <= len(full)
        pd_equal = part.reset_index(drop=True).equals(full.iloc[: len(part)].reset_index(drop=True))
        assert pd_equal, f"cut at {cut}: partial records differ from the full read"


def test_bad_file_crc_is_flagged_partial_but_read() -> None:
    data = bytearray(GOOD.read_bytes())
    data[-1] ^= 0xFF
    ff = read_fit(bytes(data))
    assert ff.partial
    assert any("CRC mismatch" in w for w in ff.warnings)
    assert ff.record_count == read_fit(GOOD).record_count


def test_crc_check_can_be_disabled() -> None:
    data = bytearray(GOOD.read_bytes())
    data[-1] ^= 0xFF
    ff = read_fit(bytes(data), check_crc=False)
    assert not ff.partial


def test_unfinalised_recording_is_recovered() -> None:
    """Header data_size 0 and no CRC (watch died while recording): read what is there."""
    data = bytearray(GOOD.read_bytes()[:-2])
    hsize = data[0]
    data[4:8] = struct.pack("<I", 0)
    if hsize == 14:
        data[12:14] = struct.pack("<H", crc16.arc(bytes(data[:12])))
    ff = read_fit(bytes(data))
    assert ff.partial
    assert any("unfinalised" in w for w in ff.warnings)
    assert ff.record_count == read_fit(GOOD).record_count


def test_header_crc_zero_is_legal() -> None:
    data = bytearray(GOOD.read_bytes())
    if data[0] != 14:
        pytest.skip("fixture has a 12-byte header")
    data[12:14] = b"\x00\x00"
    # the file CRC covers the header, so recompute it
    end = len(data) - 2
    data[end:] = struct.pack("<H", crc16.arc(bytes(data[:end])))
    ff = read_fit(bytes(data))
    assert not ff.partial and ff.warnings == []


def test_chained_copy_doubles_the_records() -> None:
    data = GOOD.read_bytes()
    ff = read_fit(data + data)
    assert ff.segments == 2 and not ff.partial
    assert ff.record_count == 2 * read_fit(data).record_count


def test_trailing_garbage_after_a_segment_is_flagged() -> None:
    data = GOOD.read_bytes()
    ff = read_fit(data + b"garbage that is not a FIT header")
    assert ff.partial and ff.record_count == read_fit(data).record_count


def test_undefined_local_message_stops_with_a_warning() -> None:
    data = bytearray(GOOD.read_bytes())
    # find the last record's header and point it at an undefined local type (15)
    ff = read_fit(bytes(data))
    n = ff.record_count
    pos = len(data) - 2 - 300
    while data[pos] & 0xF0 != 0x00:  # walk back to a normal data header of local type < 16
        pos -= 1
    data[pos] = 0x0F
    try:
        part = read_fit(bytes(data), check_crc=False)
    except FitReadError:
        return
    assert part.record_count <= n
