"""Walk a FIT file's message headers once, remembering where every data message starts.

Only definitions are parsed here; data messages are skipped by their known size and their payload
offsets collected per distinct definition. The numpy stage then gathers each group in one go.
This pass is the reader's speed limit, so its inner loop is kept deliberately plain.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

import numpy as np
from fastcrc import crc16

from evenstride.metrics.fit.errors import FitReadError
from evenstride.metrics.fit.profile import DICT_MESSAGES, RECORD

_HEADER = struct.Struct("<BBHI4s")


@dataclass(slots=True, eq=False)
class Definition:
    """One distinct message layout; identical redefinitions share one object (and offsets list)."""

    global_num: int
    big_endian: bool
    fields: tuple[tuple[int, int, int], ...]  # (field number, size, base type byte)
    dev_size: int  # bytes of developer fields at the end (skipped)
    size: int  # payload size of one data message
    # payload start of each data message (int64, file order), set by `walk` from the parts below
    offsets: np.ndarray = field(default_factory=lambda: _NO_OFFSETS)
    pending: list[int] = field(default_factory=list)  # collected by the Python walk
    chunks: list[np.ndarray] = field(default_factory=list)  # collected by the compiled walk

    def finalise(self) -> None:
        """Join what the walk collected into `offsets` (once, at the end of the walk)."""
        parts = list(self.chunks)
        if self.pending:
            parts.append(np.array(self.pending, dtype=np.int64))
        if parts:
            self.offsets = np.concatenate(parts) if len(parts) > 1 else parts[0]
        self.pending, self.chunks = [], []


_NO_OFFSETS = np.empty(0, dtype=np.int64)
_NO_OFFSETS.flags.writeable = False


@dataclass(slots=True)
class Walk:
    """What the header walk found."""

    definitions: list[Definition]
    compressed: list[tuple[int, int]]  # (payload offset, 5-bit time offset) for compressed headers
    warnings: list[str]
    partial: bool
    segments: int


def _global_number(buf: bytes, start: int) -> int:
    """The global message number of the definition message at `start`."""
    return int.from_bytes(buf[start + 3 : start + 5], "big" if buf[start + 2] == 1 else "little")


def _parse_definition(
    buf: bytes, pos: int, end: int, cache: dict[bytes, Definition]
) -> tuple[Definition, int] | None:
    """Parse the definition message whose header byte is at `pos`; None if it runs past `end`."""
    header = buf[pos]
    p = pos + 6
    if p > end:
        return None
    big = buf[pos + 2] == 1
    nfields = buf[pos + 5]
    fields_end = p + 3 * nfields
    if fields_end > end:
        return None
    dev_size = 0
    dev_end = fields_end
    if header & 0x20:
        if fields_end + 1 > end:
            return None
        ndev = buf[fields_end]
        dev_end = fields_end + 1 + 3 * ndev
        if dev_end > end:
            return None
        dev_size = sum(buf[fields_end + 2 : dev_end : 3])
    key = bytes(buf[pos + 2 : dev_end]) if dev_size else bytes(buf[pos + 2 : fields_end])
    definition = cache.get(key)
    if definition is None:
        gnum = _global_number(buf, pos)
        raw = buf[p:fields_end]
        # zip over strided slices, not a per-field loop: damaged data can parse as thousands of
        # distinct 255-field definitions, and this line then bounds the reader's worst case
        fields = tuple(zip(raw[0::3], raw[1::3], raw[2::3], strict=True))
        size = sum(raw[1::3]) + dev_size
        definition = Definition(gnum, big, fields, dev_size, size)
        cache[key] = definition
    return definition, dev_end


# Normal data headers 0x00-0x3F name their local type in the low 4 bits (bits 4-5 reserved), so
# one table slot per header byte lets the hot loop skip the masking and the "defined?" test.
_DATA_HEADERS = [[h for h in range(0x40) if h & 0x0F == local] for local in range(16)]


def _walk_messages_py(
    buf: bytes,
    pos: int,
    end: int,
    cache: dict[bytes, Definition],
    compressed: list[tuple[int, int]],
) -> tuple[int, str | None]:
    """Walk data/definition messages in [pos, end). Returns (stop position, error or None).

    The reference walk, and the fallback without numba. The loop body for an ordinary data message is one table lookup, one append and one addition:
    `step[h]` is 1 + the message size for header byte h (0 while its local type is undefined).
    """
    step = [0] * 0x40
    appends: list = [None] * 0x40
    sizes = [-1] * 16  # for compressed-timestamp headers (local types 0-3)
    while pos < end:
        h = buf[pos]
        if h < 0x40:  # normal data message
            s = step[h]
            if not s:
                local = h & 0x0F
                return pos, f"data message uses undefined local message type {local} at byte {pos}"
            appends[h](pos + 1)
            pos += s
        elif h >= 0x80:  # compressed-timestamp data message
            local = (h >> 5) & 0x03
            size = sizes[local]
            if size < 0:
                return pos, f"data message uses undefined local message type {local} at byte {pos}"
            appends[local](pos + 1)
            compressed.append((pos + 1, h & 0x1F))
            pos += 1 + size
        else:  # definition message
            parsed = _parse_definition(buf, pos, end, cache)
            if parsed is None:
                return pos, f"definition message at byte {pos} runs past the end of the data"
            definition, pos = parsed
            local = h & 0x0F
            sizes[local] = definition.size
            append = definition.pending.append
            for slot in _DATA_HEADERS[local]:
                step[slot] = definition.size + 1
                appends[slot] = append
    if pos > end:
        return pos, f"last message runs {pos - end} bytes past the end of the data"
    return pos, None


# --------------------------------------------------------------------------- compiled header walk
# The same walk compiled with numba: it only records where data messages start and which
# definition message (by ordinal) they follow; Python then parses the few definitions and groups
# the positions per layout with numpy. 10-50x faster than the loop above on real files. The
# Python loop stays as the reference and the fallback (no numba, or EVENSTRIDE_NO_JIT=1).

try:  # pragma: no cover - exercised through _walk_messages
    if os.environ.get("EVENSTRIDE_NO_JIT"):
        raise ImportError("disabled by EVENSTRIDE_NO_JIT")
    from numba import njit
except ImportError:  # pragma: no cover
    njit = None

DECODED = frozenset(DICT_MESSAGES) | {RECORD}  # the messages the reader decodes


def _kernel_source(buf, pos, end, out_pos, out_def, def_starts, comp_pos, comp_off):
    """Walk headers in [pos, end): (stop, n messages, n definitions, n compressed, error code)."""
    sizes = np.full(16, -1, np.int64)
    defid = np.full(16, -1, np.int64)
    n = 0
    nd = 0
    nc = 0
    while pos < end:
        h = buf[pos]
        if h < 0x40:
            local = h & 0x0F
            s = sizes[local]
            if s < 0:
                return pos, n, nd, nc, 1
            out_pos[n] = pos + 1
            out_def[n] = defid[local]
            n += 1
            pos += 1 + s
        elif h >= 0x80:
            local = (h >> 5) & 3
            s = sizes[local]
            if s < 0:
                return pos, n, nd, nc, 1
            out_pos[n] = pos + 1
            out_def[n] = defid[local]
            n += 1
            comp_pos[nc] = pos + 1
            comp_off[nc] = h & 0x1F
            nc += 1
            pos += 1 + s
        else:
            if pos + 6 > end:
                return pos, n, nd, nc, 2
            nf = buf[pos + 5]
            fe = pos + 6 + 3 * nf
            if fe > end:
                return pos, n, nd, nc, 2
            size = 0
            for i in range(nf):
                size += buf[pos + 7 + 3 * i]
            de = fe
            if h & 0x20:
                if fe + 1 > end:
                    return pos, n, nd, nc, 2
                ndv = buf[fe]
                de = fe + 1 + 3 * ndv
                if de > end:
                    return pos, n, nd, nc, 2
                for i in range(ndv):
                    size += buf[fe + 2 + 3 * i]
            local = h & 0x0F
            sizes[local] = size
            defid[local] = nd
            def_starts[nd] = pos
            nd += 1
            pos = de
    if pos > end:
        return pos, n, nd, nc, 3
    return pos, n, nd, nc, 0


def _group_source(out_pos, out_def, n, ord_to_uid, nuid):
    """Counting sort of the message positions by layout: (grouped positions, group bounds)."""
    bounds = np.zeros(nuid + 1, np.int64)
    for i in range(n):
        bounds[ord_to_uid[out_def[i]] + 1] += 1
    for u in range(nuid):
        bounds[u + 1] += bounds[u]
    fill = bounds[:nuid].copy()
    grouped = np.empty(n, np.int64)
    for i in range(n):
        u = ord_to_uid[out_def[i]]
        grouped[fill[u]] = out_pos[i]
        fill[u] += 1
    return grouped, bounds


_kernel = njit(cache=True, nogil=True)(_kernel_source) if njit is not None else None
_group = njit(cache=True, nogil=True)(_group_source) if njit is not None else None


def _walk_messages_jit(
    buf: bytes,
    pos: int,
    end: int,
    cache: dict[bytes, Definition],
    compressed: list[tuple[int, int]],
) -> tuple[int, str | None]:
    """`_walk_messages_py`, with the per-message loop compiled (same results, same errors)."""
    u8 = np.frombuffer(buf, dtype=np.uint8)
    span = max(end - pos, 0) + 1
    out_pos = np.empty(span, np.int64)
    out_def = np.empty(span, np.int64)
    def_starts = np.empty(span // 6 + 2, np.int64)
    comp_pos = np.empty(span, np.int64)
    comp_off = np.empty(span, np.int64)
    stop, n, nd, nc, err = _kernel(u8, pos, end, out_pos, out_def, def_starts, comp_pos, comp_off)
    everything = bool(nc or compressed)  # compressed timestamps need every message's time
    definitions: list[Definition | None] = []
    for start in def_starts[:nd].tolist():
        if not everything and _global_number(buf, start) not in DECODED:
            definitions.append(None)  # e.g. HRV or GPS metadata nobody reads: not even parsed
            continue
        parsed = _parse_definition(buf, start, end, cache)
        if parsed is None:  # pragma: no cover - the kernel checked the same bounds
            return start, f"definition message at byte {start} runs past the end of the data"
        definitions.append(parsed[0])
    if n:
        unique: dict[int, int] = {}
        ord_to_uid = np.array(
            [unique.setdefault(id(d), len(unique)) for d in definitions], dtype=np.int64
        )
        layouts = list({id(d): d for d in definitions}.values())
        grouped, bounds = _group(out_pos, out_def, n, ord_to_uid, len(layouts))
        edges = bounds.tolist()
        for definition, first, last in zip(layouts, edges[:-1], edges[1:], strict=True):
            if definition is not None and first < last:
                definition.chunks.append(grouped[first:last])
    if nc:
        compressed.extend(zip(comp_pos[:nc].tolist(), comp_off[:nc].tolist(), strict=True))
    if err == 1:
        h = buf[stop]
        local = (h >> 5) & 0x03 if h >= 0x80 else h & 0x0F
        return stop, f"data message uses undefined local message type {local} at byte {stop}"
    if err == 2:
        return stop, f"definition message at byte {stop} runs past the end of the data"
    if err == 3:
        return stop, f"last message runs {stop - end} bytes past the end of the data"
    return stop, None


def _walk_messages(
    buf: bytes,
    pos: int,
    end: int,
    cache: dict[bytes, Definition],
    compressed: list[tuple[int, int]],
) -> tuple[int, str | None]:
    """Walk data/definition messages in [pos, end): compiled when numba is there."""
    if _kernel is not None:
        return _walk_messages_jit(buf, pos, end, cache, compressed)
    return _walk_messages_py(buf, pos, end, cache, compressed)


def _drop_messages_beyond(definitions: list[Definition], compressed: list, limit: int) -> None:
    """Forget data messages whose payload does not fit before `limit` (a cut-off last message)."""
    for d in definitions:
        if len(d.offsets) and d.offsets[-1] + d.size > limit:
            d.offsets = d.offsets[d.offsets + d.size <= limit]  # sorted: only the tail goes
    while compressed and compressed[-1][0] >= limit:
        compressed.pop()


def walk(buf: bytes, *, check_crc: bool = True) -> Walk:
    """Walk every chained segment of a FIT file. Raises FitReadError when nothing is readable."""
    n = len(buf)
    if n == 0:
        raise FitReadError("empty file (0 bytes)")
    cache: dict[bytes, Definition] = {}
    compressed: list[tuple[int, int]] = []
    warnings: list[str] = []
    partial = False
    segments = 0
    pos = 0
    while pos < n:
        if n - pos < 12:
            if segments == 0:
                raise FitReadError(f"not a FIT file: {n} bytes is shorter than a FIT header")
            warnings.append(f"ignored {n - pos} trailing bytes after the last FIT segment")
            partial = True
            break
        hsize, _proto, _profile, data_size, magic = _HEADER.unpack_from(buf, pos)
        if magic != b".FIT" or hsize < 12 or pos + hsize > n:
            if segments == 0:
                raise FitReadError("not a FIT file (no '.FIT' signature in the header)")
            warnings.append(
                f"ignored {n - pos} bytes after segment {segments}: not a valid FIT header"
            )
            partial = True
            break
        if hsize >= 14 and check_crc:
            stored = int.from_bytes(buf[pos + 12 : pos + 14], "little")
            if stored and stored != crc16.arc(bytes(buf[pos : pos + 12])):
                warnings.append(f"header CRC mismatch in segment {segments + 1}")
                partial = True  # every warning flags the read (FitFile.partial's promise)
        start = pos + hsize
        finalised = True
        if data_size == 0:
            if n - start <= 2:
                if segments == 0:
                    raise FitReadError("FIT file holds no data (header data size is 0)")
                warnings.append(f"segment {segments + 1} holds no data")
                partial = True
                break
            finalised = False
            end = n
            warnings.append(
                "unfinalised recording (header data size 0): recovered what could be read"
            )
            partial = True
        else:
            end = start + data_size
            if end > n:
                warnings.append(
                    f"truncated file: header declares {data_size} data bytes, "
                    f"only {n - start} present"
                )
                partial = True
                end = n
                finalised = False
        stop, error = _walk_messages(buf, start, end, cache, compressed)
        definitions = list(cache.values())
        if error:
            if finalised and stop > end:
                warnings.append(f"unterminated file: {error}")
            elif finalised or "undefined" in error or "definition" in error:
                warnings.append(error)
            partial = True
            # an unterminated file's last message may run past the declared size yet be whole
            limit = n if finalised and stop > end else end
            for d in definitions:
                d.finalise()
            _drop_messages_beyond(definitions, compressed, limit)
            segments += 1
            break
        segments += 1
        if not finalised:
            break
        if end + 2 > n:
            warnings.append("file ends without its CRC")
            partial = True
            break
        if check_crc:
            stored = int.from_bytes(buf[end : end + 2], "little")
            if stored != crc16.arc(bytes(buf[pos:end])):
                warnings.append(f"file CRC mismatch in segment {segments}: values may be corrupt")
                partial = True
        pos = end + 2
    definitions = list(cache.values())
    for d in definitions:
        d.finalise()
    return Walk(definitions, compressed, warnings, partial, segments)
