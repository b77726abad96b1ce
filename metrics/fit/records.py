"""Decode every `record` message into numpy columns in one gather per distinct definition.

Each definition's messages are fetched with a single fancy-index on a byte-strided structured
view of the file (element i of the view starts at byte i), so no per-message Python work happens
here. Invalid values become NaN, profile scales are applied, and groups are merged into file order.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from evenstride.metrics.fit.basetypes import FIT_EPOCH_UNIX, base_type, compatible
from evenstride.metrics.fit.profile import (
    ALTITUDE_NUM,
    COMPRESSED_SPEED_DISTANCE_NUM,
    ENHANCED_ALTITUDE_NUM,
    ENHANCED_SPEED_NUM,
    MESSAGE_TYPES,
    RECORD,
    RECORD_COLUMNS,
    RECORD_FIELDS,
    SPEED_NUM,
    TIMESTAMP_FIELD,
)
from evenstride.metrics.fit.walk import Definition

_VALUE_COLUMNS = [c for c in RECORD_COLUMNS if c != "timestamp"]
_NAME = {num: spec[0] for num, spec in RECORD_FIELDS.items()}
_SPEC = dict(RECORD_FIELDS)
_SPEED_SCALE = RECORD_FIELDS[SPEED_NUM][1]
_ALT_SCALE, _ALT_OFFSET = RECORD_FIELDS[ALTITUDE_NUM][1], RECORD_FIELDS[ALTITUDE_NUM][2]
_PROFILE_FIELD = MESSAGE_TYPES[RECORD].fields  # field 253 (date_time) is the same in every message
_MAX_TIMESTAMP = 0xFFFFFFFE  # largest valid uint32 date_time


def strided_rows(buf: bytes, definition: Definition, dtype: np.dtype) -> np.ndarray:
    """Gather all messages of one definition as structured rows (one fancy-index, no loop).

    The view's element i is the opaque record starting at byte i; indexing it with the payload
    offsets copies each message with one memcpy, then the bytes are reinterpreted as `dtype`.
    """
    size = dtype.itemsize
    count = len(buf) - size + 1
    opaque = np.ndarray(shape=(count,), dtype=np.dtype((np.void, size)), buffer=buf, strides=(1,))
    return opaque[definition.offsets].view(dtype)


def message_dtype(definition: Definition, wanted: set[int]) -> tuple[np.dtype, dict[int, object]]:
    """A structured dtype exposing the wanted scalar fields of a definition at their offsets.

    Cached by layout: a watch writes the same record layout in every file it records.
    """
    return _layout_dtype(
        definition.big_endian, definition.fields, definition.size, frozenset(wanted)
    )


@lru_cache(maxsize=1024)
def _layout_dtype(
    big_endian: bool, fields: tuple, size_total: int, wanted: frozenset[int]
) -> tuple[np.dtype, dict[int, object]]:
    order = ">" if big_endian else "<"
    names, formats, offsets = [], [], []
    types: dict[int, object] = {}
    pos = 0
    for num, size, bt_byte in fields:
        bt = base_type(bt_byte)
        if num in wanted and num not in types:
            if num == COMPRESSED_SPEED_DISTANCE_NUM and size == 3:
                names.append(f"f{num}")
                formats.append("3u1")
                offsets.append(pos)
                types[num] = bt
            elif not bt.is_string and size == bt.size and compatible(bt, _PROFILE_FIELD[num]):
                names.append(f"f{num}")
                formats.append(order + bt.code)
                offsets.append(pos)
                types[num] = bt
        pos += size
    dtype = np.dtype(
        {"names": names, "formats": formats, "offsets": offsets, "itemsize": size_total}
    )
    return dtype, types


def _column(raw: np.ndarray, bt, scale: float | None, offset: float | None) -> np.ndarray:
    if bt.is_float:
        values = raw.astype(np.float64)
        values[~np.isfinite(values)] = np.nan
    else:
        values = raw.astype(np.float64)
        values[raw == bt.invalid] = np.nan
    if scale:
        values /= scale
    if offset:
        values -= offset
    return values


def _timestamps(
    buf: bytes, definitions: list[Definition], compressed: list[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps of compressed-header messages: a 5-bit rollover on the last full timestamp.

    Returns (payload offsets, FIT seconds; -1 before any valid full timestamp), sorted by offset.
    Vectorised: each compressed message adds (its 5 bits - the previous message's 5 bits) mod 32
    to the last full timestamp, so a cumulative sum per run replaces a per-message loop.
    """
    offs, values, full = [], [], []
    for d in definitions:
        if not len(d.offsets) or not any(f[0] == TIMESTAMP_FIELD for f in d.fields):
            continue
        dtype, types = message_dtype(d, {TIMESTAMP_FIELD})
        if TIMESTAMP_FIELD not in types:
            continue
        raw = strided_rows(buf, d, dtype)[f"f{TIMESTAMP_FIELD}"].astype(np.int64)
        ok = (raw >= 0) & (raw <= _MAX_TIMESTAMP)  # an invalid full timestamp is no reference
        offs.append(d.offsets[ok])
        values.append(raw[ok])
        full.append(np.ones(int(ok.sum()), dtype=bool))
    comp = np.asarray(compressed, dtype=np.int64).reshape(-1, 2)
    offs.append(comp[:, 0])
    values.append(comp[:, 1])
    full.append(np.zeros(len(comp), dtype=bool))
    off, value, is_full = np.concatenate(offs), np.concatenate(values), np.concatenate(full)
    order = np.lexsort((is_full, value, off))  # file order (ties as a tuple sort would break them)
    off, value, is_full = off[order], value[order], is_full[order]
    prev_low = np.concatenate(([0], value[:-1] & 0x1F))
    step = np.where(is_full, 0, (value - prev_low) & 0x1F)
    run = np.cumsum(is_full) - 1  # index of the governing full timestamp; -1 before the first
    keep = ~is_full
    starts = np.flatnonzero(is_full)
    if not len(starts):
        return off[keep], np.full(int(keep.sum()), -1, dtype=np.int64)
    total = np.cumsum(step)
    first = starts[np.maximum(run, 0)]  # the governing full timestamp's position
    ts = np.where(run >= 0, value[first] + total - total[first], -1)
    return off[keep], ts[keep]


def decode_records(
    buf: bytes, definitions: list[Definition], compressed: list[tuple[int, int]]
) -> dict[str, np.ndarray]:
    """All record messages as numpy columns in file order (FIT profile names).

    "timestamp" is int64 Unix seconds (-1 where missing); the other columns are float64 with NaN
    for invalid or absent values. `records_frame` turns them into a DataFrame.
    Most files use one record layout: its columns are then taken as decoded, without the
    scatter into file order that several interleaved layouts need.
    """
    groups = [d for d in definitions if d.global_num == RECORD and len(d.offsets)]
    total = sum(len(d.offsets) for d in groups)
    out: dict[str, np.ndarray] = {}
    seconds = np.full(total, -1, dtype=np.int64)
    if total == 0:
        return _columns(_fill_missing(out, total), seconds)
    single = len(groups) == 1
    if single:
        where = np.arange(total)
    else:
        all_offsets = np.concatenate([d.offsets for d in groups])
        order = np.argsort(all_offsets, kind="stable")
        where = np.empty_like(order)
        where[order] = np.arange(total)

    def put(name: str, pos, values: np.ndarray) -> None:
        if single and name not in out:
            out[name] = values  # freshly decoded, owned, already in file order
            return
        column = out.get(name)
        if column is None:
            column = out[name] = np.full(total, np.nan)
        column[pos] = values

    c_offs, c_ts = _timestamps(buf, definitions, compressed) if compressed else (None, None)
    wanted = set(RECORD_FIELDS) | {TIMESTAMP_FIELD, COMPRESSED_SPEED_DISTANCE_NUM}
    start = 0
    csd_parts: list[tuple[np.ndarray, np.ndarray]] = []
    for d in groups:
        n = len(d.offsets)
        pos = slice(None) if single else where[start : start + n]
        start += n
        dtype, types = message_dtype(d, wanted)
        rows = strided_rows(buf, d, dtype)
        if TIMESTAMP_FIELD in types:
            raw = rows[f"f{TIMESTAMP_FIELD}"].astype(np.int64)
            raw[raw == 0xFFFFFFFF] = -1
            seconds[pos] = raw
        if c_offs is not None and len(c_offs):
            offs = d.offsets
            at = np.minimum(np.searchsorted(c_offs, offs), len(c_offs) - 1)
            hit = c_offs[at] == offs
            seconds[where[start - n : start][hit]] = c_ts[at[hit]]
        for num, bt in types.items():
            if num in (TIMESTAMP_FIELD, COMPRESSED_SPEED_DISTANCE_NUM):
                continue
            name, scale, offset = _SPEC[num]
            put(name, pos, _column(rows[f"f{num}"], bt, scale, offset))
        if SPEED_NUM in types and ENHANCED_SPEED_NUM not in types:
            put("enhanced_speed", pos, out["speed"][pos].copy())  # component: speed -> enhanced
        if ALTITUDE_NUM in types and ENHANCED_ALTITUDE_NUM not in types:
            put("enhanced_altitude", pos, out["altitude"][pos].copy())
        if COMPRESSED_SPEED_DISTANCE_NUM in types:
            csd_parts.append((where[start - n : start], rows[f"f{COMPRESSED_SPEED_DISTANCE_NUM}"]))
    _fill_missing(out, total)
    if csd_parts:
        _expand_compressed_speed_distance(out, csd_parts)
    return _columns(out, seconds)


def _fill_missing(out: dict[str, np.ndarray], total: int) -> dict[str, np.ndarray]:
    """Columns no record layout carried: all NaN."""
    for name in _VALUE_COLUMNS:
        if name not in out:
            out[name] = np.full(total, np.nan)
    return out


def _expand_compressed_speed_distance(
    out: dict[str, np.ndarray], parts: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    """FR70-style 3-byte field: 12-bit speed (1/100 m/s) and a 12-bit rolling distance (1/16 m)."""
    pos = np.concatenate([p for p, _ in parts])
    raw = np.concatenate([r for _, r in parts]).astype(np.int64)
    order = np.argsort(pos, kind="stable")
    pos, raw = pos[order], raw[order]
    valid = ~(raw == 0xFF).all(axis=1)  # byte arrays of 0xFF are invalid: no components expanded
    pos, raw = pos[valid], raw[valid]
    bits = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
    speed = (bits & 0xFFF) / 100.0
    rolling = (bits >> 12) & 0xFFF
    steps = np.diff(rolling, prepend=0) & 0xFFF  # accumulator starts at 0, as in the profile
    distance = np.cumsum(steps) / 16.0
    out["speed"][pos] = speed
    out["enhanced_speed"][pos] = speed
    out["distance"][pos] = distance


def _columns(out: dict[str, np.ndarray], seconds: np.ndarray) -> dict[str, np.ndarray]:
    # a compressed timestamp can roll past the last valid uint32 date_time: missing, not wrapped
    valid = (seconds >= 0) & (seconds <= _MAX_TIMESTAMP)
    unix = np.where(valid, seconds + FIT_EPOCH_UNIX, -1)
    return {"timestamp": unix, **out}


def unix_to_datetime64(seconds: np.ndarray) -> np.ndarray:
    """int64 Unix seconds (-1 = missing) -> datetime64[ns] (UTC) with NaT."""
    ts = seconds.astype("datetime64[s]").astype("datetime64[ns]")
    ts[seconds < 0] = np.datetime64("NaT", "ns")
    return ts


def records_frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """The record columns as a DataFrame with a UTC timestamp column."""
    from evenstride.metrics.run_table import columns_frame

    as_datetime = {**columns, "timestamp": unix_to_datetime64(columns["timestamp"])}
    return columns_frame(as_datetime, copy=False)
