"""Fuzz evenstride's FIT reader with structure-aware mutations of every sample file.

    /work/venv/bin/python benchmarks/fuzz_reader.py --seconds 60         # random mutations
    /work/venv/bin/python benchmarks/fuzz_reader.py --executions 20000 --seed 7
    /work/venv/bin/python benchmarks/fuzz_reader.py --atheris --seconds 120  # coverage-guided

Every input is a sample file (fixtures/ and ../shared/fit-samples/ when present) with 1-3
mutations stacked: bit flips, byte replacements, FIT header fields (size, data_size, protocol,
profile, '.FIT', header CRC), definition messages (architecture, global number, field count, field
number/size/base type, developer fields), truncation, chained-segment duplication and splicing,
inserted/deleted bytes and appended garbage. `read_fit` must either raise FitReadError with a
one-line reason or return a FitFile that passes `check_fitfile`; anything else is a failure,
reported by signature (exception type + innermost evenstride frame). Inputs slower than
`--slow` seconds, and (every `--mem-every` inputs) decodes whose peak traced memory exceeds
`--mem-factor` x the input size + 16 MB, are failures too. Exits 1 when any failure occurred.

`--atheris` runs libFuzzer (atheris, when installed) with the reader's code instrumented for
coverage and these mutations as its custom mutator (mixed with libFuzzer's own byte mutations), in
a child process whose failures are collected here. tests/test_fuzz_reader.py imports this module
for its mutators and invariants.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import tracemalloc
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_SAMPLES = REPO_ROOT.parent / "shared" / "fit-samples"
FIXTURES = REPO_ROOT / "fixtures"

# Values that tend to sit on boundaries of the reader's checks.
INTERESTING_BYTES = (0x00, 0x01, 0x02, 0x0E, 0x0C, 0x10, 0x20, 0x3F, 0x40, 0x7F, 0x80, 0xFE, 0xFF)
GLOBAL_NUMS = (0, 12, 18, 19, 20, 21, 23, 34, 206, 207, 0xFFFF, 1, 2, 101, 160)
BASE_TYPE_BYTES = (
    0x00, 0x01, 0x02, 0x83, 0x84, 0x85, 0x86, 0x07, 0x88, 0x89,
    0x0A, 0x8B, 0x8C, 0x0D, 0x8E, 0x8F, 0x90, 0x1F, 0xFF, 0x11,
)  # fmt: skip
FIELD_SIZES = (0, 1, 2, 3, 4, 5, 7, 8, 16, 255)


@dataclass
class Layout:
    """Where a file's structures are: enough for mutations that hit them on purpose."""

    segments: list[tuple[int, int, int]] = field(default_factory=list)  # (start, hsize, data end)
    definitions: list[int] = field(default_factory=list)  # header byte of each definition message
    data_messages: list[int] = field(default_factory=list)  # header byte of data messages


def layout_of(data: bytes, limit: int = 200_000) -> Layout:
    """A forgiving walk (independent of the reader's) that notes message positions."""
    out = Layout()
    n = len(data)
    pos = 0
    while pos + 12 <= n and data[pos + 8 : pos + 12] == b".FIT":
        hsize = data[pos]
        dsize = int.from_bytes(data[pos + 4 : pos + 8], "little")
        start = pos + max(hsize, 12)
        end = min(start + dsize, n) if dsize else n
        out.segments.append((pos, hsize, end))
        sizes: dict[int, int] = {}
        p = start
        while p < end and len(out.data_messages) < limit:
            h = data[p]
            if h & 0x80 or not h & 0x40:
                local = (h >> 5) & 3 if h & 0x80 else h & 0x0F
                if local not in sizes:
                    break
                out.data_messages.append(p)
                p += 1 + sizes[local]
                continue
            if p + 6 > end:
                break
            nf = data[p + 5]
            q = p + 6 + 3 * nf
            size = sum(data[p + 7 : min(q, n) : 3])
            if h & 0x20 and q < n:
                nd = data[q]
                size += sum(data[q + 2 : min(q + 1 + 3 * nd, n) : 3])
                q += 1 + 3 * nd
            out.definitions.append(p)
            sizes[h & 0x0F] = size
            p = q
        if not dsize or end + 2 > n:
            break
        pos = end + 2
    return out


def _header_crc(buf: bytearray, start: int) -> None:
    from fastcrc import crc16

    if buf[start] >= 14 and start + 14 <= len(buf):
        buf[start + 12 : start + 14] = struct.pack("<H", crc16.arc(bytes(buf[start : start + 12])))


def _file_crc(buf: bytearray, start: int, end: int) -> None:
    from fastcrc import crc16

    if end + 2 <= len(buf):
        buf[end : end + 2] = struct.pack("<H", crc16.arc(bytes(buf[start:end])))


def _pick(rng: random.Random, items: list[int], fallback: int) -> int:
    return rng.choice(items) if items else fallback


def m_bitflip(rng: random.Random, buf: bytearray, lay: Layout) -> str:
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(buf))
        buf[i] ^= 1 << rng.randrange(8)
    return "bitflip"


def m_bytes(rng: random.Random, buf: bytearray, lay: Layout) -> str:
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(buf))
        buf[i] = rng.choice(INTERESTING_BYTES) if rng.random() < 0.5 else rng.randrange(256)
    return "bytes"


def m_header(rng: random.Random, buf: bytearray, lay: Layout) -> str:
    """Corrupt one header field of one segment (optionally re-signing the header CRC)."""
    start, hsize, end = rng.choice(lay.segments) if lay.segments else (0, 14, len(buf))
    what = rng.choice(("size", "protocol", "profile", "data_size", "magic", "crc"))
    if start + 14 > len(buf):
        return "header-none"
    if what == "size":
        buf[start] = rng.choice((0, 1, 11, 12, 13, 14, 15, 16, 64, 255, rng.randrange(256)))
    elif what == "protocol":
        buf[start + 1] = rng.randrange(256)
    elif what == "profile":
        buf[start + 2 : start + 4] = struct.pack("<H", rng.randrange(65536))
    elif what == "data_size":
        data_size = end - start - max(hsize, 12)
        value = rng.choice(
            (0, 1, 2, 0xFFFFFFFF, 0x7FFFFFFF, data_size - 1, data_size + 1, data_size + 2)
            + (data_size * 2, data_size // 2, rng.randrange(1 << 32), rng.randrange(64))
        )
        buf[start + 4 : start + 8] = struct.pack("<I", value % (1 << 32))
    elif what == "magic":
        i = start + 8 + rng.randrange(4)
        buf[i] = rng.randrange(256)
    else:
        buf[start + 12 : start + 14] = struct.pack(
            "<H", rng.choice((0, 0xFFFF, rng.randrange(65536)))
        )
        return "header-crc"
    if rng.random() < 0.7:
        _header_crc(buf, start)
    return f"header-{what}"


def m_definition(rng: random.Random, buf: bytearray, lay: Layout) -> str:
    """Corrupt one definition message: architecture, global number, fields or developer fields."""
    pos = _pick(rng, lay.definitions, -1)
    if pos < 0 or pos + 6 > len(buf):
        return "definition-none"
    nfields = buf[pos + 5]
    what = rng.choice(("arch", "global", "nfields", "fnum", "fsize", "btype", "dev", "local"))
    if what == "arch":
        buf[pos + 2] = rng.choice((0, 1, 2, 0xFF))
    elif what == "global":
        gnum = rng.choice(GLOBAL_NUMS) if rng.random() < 0.8 else rng.randrange(65536)
        order = "big" if buf[pos + 2] == 1 else "little"
        buf[pos + 3 : pos + 5] = gnum.to_bytes(2, order)
    elif what == "nfields":
        buf[pos + 5] = rng.choice((0, 1, 255, nfields + 1, max(nfields - 1, 0), rng.randrange(256)))
        buf[pos + 5] %= 256
    elif what == "local":
        buf[pos] = (buf[pos] & 0xF0) | rng.randrange(16)
    elif what == "dev":
        buf[pos] ^= 0x20  # toggle the developer-data flag
        q = pos + 6 + 3 * nfields
        if q < len(buf) and rng.random() < 0.7:
            buf[q] = rng.choice((0, 1, 2, 255, rng.randrange(256)))
            for k in range(min(buf[q], 4)):
                if q + 3 + 3 * k < len(buf):
                    buf[q + 2 + 3 * k] = rng.choice(FIELD_SIZES)
    elif nfields:
        f = pos + 6 + 3 * rng.randrange(nfields)
        if f + 3 > len(buf):
            return "definition-none"
        if what == "fnum":
            buf[f] = rng.choice((253, 254, 0, 1, 2, 5, 6, 8, 41, 42, 73, 78, rng.randrange(256)))
        elif what == "fsize":
            buf[f + 1] = rng.choice(FIELD_SIZES) if rng.random() < 0.8 else rng.randrange(256)
        else:
            buf[f + 2] = rng.choice(BASE_TYPE_BYTES) if rng.random() < 0.8 else rng.randrange(256)
    return f"definition-{what}"


def m_data_header(rng: random.Random, buf: bytearray, lay: Layout) -> str:
    """Point a data message at another (often undefined) local type, or make it compressed."""
    pos = _pick(rng, lay.data_messages, -1)
    if not 0 <= pos < len(buf):
        pos = rng.randrange(len(buf))
    buf[pos] = rng.choice((rng.randrange(16), 0x80 | rng.randrange(128), 0x40 | rng.randrange(16)))
    return "data-header"


def m_truncate(rng: random.Random, buf: bytearray, lay: Layout) -> str:
    anchors = lay.definitions + lay.data_messages + [s[2] for s in lay.segments]
    if anchors and rng.random() < 0.5:
        cut = rng.choice(anchors) + rng.randint(-2, 8)
    else:
        cut = rng.randrange(len(buf) + 1)
    del buf[max(cut, 1) :]
    return "truncate"


def _segment_bytes(buf: bytearray, lay: Layout, rng: random.Random) -> bytes:
    if not lay.segments:
        return bytes(buf)
    start, _h, end = rng.choice(lay.segments)
    return bytes(buf[start : end + 2])


def m_chain(rng: random.Random, buf: bytearray, lay: Layout, other: bytes | None = None) -> str:
    """Duplicate, splice (from another sample) or inject a segment; optionally damage its header."""
    seg = _segment_bytes(buf, lay, rng)
    if other is not None and rng.random() < 0.5:
        seg = other
    what = rng.choice(("append", "insert", "replace-tail"))
    if what == "append":
        buf.extend(seg)
    elif what == "insert":
        at = rng.choice([s[2] + 2 for s in lay.segments] or [len(buf)]) if rng.random() < 0.6 else 0
        at = min(at, len(buf)) if at else rng.randrange(len(buf) + 1)
        buf[at:at] = seg
    else:
        cut = rng.randrange(len(buf) + 1)
        del buf[cut:]
        buf.extend(seg[: rng.randrange(len(seg) + 1)])
    return f"chain-{what}"


def m_garbage(rng: random.Random, buf: bytearray, lay: Layout) -> str:
    """Append bytes: random, zeros, a lone or partial FIT header, or a header with a huge size."""
    kind = rng.choice(("random", "zeros", "header", "partial-header", "huge"))
    if kind == "random":
        buf.extend(rng.randbytes(rng.randint(1, 64)))
    elif kind == "zeros":
        buf.extend(bytes(rng.randint(1, 64)))
    else:
        size = 0xFFFFFFFF if kind == "huge" else rng.randrange(256)
        head = bytearray(struct.pack("<BBHI4sH", 14, 0x20, 2132, size, b".FIT", 0))
        _header_crc(head, 0)
        buf.extend(head[: rng.randint(1, 13)] if kind == "partial-header" else head)
        if kind != "partial-header":
            buf.extend(rng.randbytes(rng.randint(0, 32)))
    return f"garbage-{kind}"


def m_insert_delete(rng: random.Random, buf: bytearray, lay: Layout) -> str:
    i = rng.randrange(len(buf))
    if rng.random() < 0.5:
        del buf[i : i + rng.randint(1, 16)]
        return "delete"
    buf[i:i] = rng.randbytes(rng.randint(1, 16))
    return "insert"


MUTATORS = (
    (m_bitflip, 3),
    (m_bytes, 2),
    (m_header, 3),
    (m_definition, 5),
    (m_data_header, 2),
    (m_truncate, 3),
    (m_chain, 2),
    (m_garbage, 1),
    (m_insert_delete, 1),
)
_FUNCS = [m for m, _ in MUTATORS]
_WEIGHTS = [w for _, w in MUTATORS]


def mutate(
    rng: random.Random, data: bytes, lay: Layout, other: bytes | None = None
) -> tuple[bytes, list[str]]:
    """1-3 stacked mutations of `data`; sometimes re-signs the file CRCs so they don't mask bugs."""
    buf = bytearray(data)
    names = []
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
        if not buf:
            break
        (func,) = rng.choices(_FUNCS, _WEIGHTS)
        names.append(func(rng, buf, lay, other) if func is m_chain else func(rng, buf, lay))
    if buf and rng.random() < 0.3:
        for start, _hsize, end in layout_of(bytes(buf), limit=0).segments:
            _file_crc(buf, start, end)
    return bytes(buf), names


# --- invariants -------------------------------------------------------------------------------

TS_MIN = 631065600  # FIT epoch (1989-12-31)
TS_MAX = TS_MIN + 0xFFFFFFFF  # the largest uint32 date_time


class InvariantError(AssertionError):
    """A read that returned but broke one of the reader's promises."""


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise InvariantError(what)


def check_fitfile(ff) -> None:  # noqa: ANN001 - FitFile, imported lazily (atheris instrumentation)
    """The promises of a successful read, damaged input or not."""
    import numpy as np
    import pandas as pd

    _require(isinstance(ff.warnings, list), "warnings is not a list")
    _require(ff.partial or not ff.warnings, f"partial=False but warnings {ff.warnings!r}")
    _require(not ff.partial or bool(ff.warnings), "partial=True without a warning")
    for w in ff.warnings:
        _require(isinstance(w, str) and w and "\n" not in w, f"bad warning {w!r}")
    lengths = {k: len(v) for k, v in ff.columns.items()}
    _require(len(set(lengths.values())) <= 1, f"record columns of unequal length {lengths}")
    ts = ff.columns["timestamp"]
    ok_ts = (ts == -1) | ((ts >= TS_MIN) & (ts <= TS_MAX))
    _require(bool(ok_ts.all()), f"implausible record timestamps {ts[~ok_ts][:3]}")
    rec = ff.records
    _require(len(rec) == ff.record_count, "records frame length differs from the columns")
    frame_ts = rec["timestamp"]
    good = frame_ts.dropna()
    _require(
        good.empty
        or (good.min() >= pd.Timestamp(TS_MIN, unit="s", tz="UTC"))
        and (good.max() <= pd.Timestamp(TS_MAX, unit="s", tz="UTC")),
        "implausible timestamps in the records frame",
    )
    bal = rec["stance_time_balance"].to_numpy()
    okb = np.isnan(bal) | ((bal >= 0) & (bal <= 655.34))
    _require(bool(okb.all()), f"stance_time_balance out of range {bal[~okb][:3]}")
    from evenstride.metrics.fit.sensors import balance_sensor, device_name, sensors

    balance_sensor(sensors(ff.devices))  # callers label runs with these: must not raise either
    device_name(ff.devices, ff.file_id)
    for run in ff.runs():
        g = run.records["gct_balance_pct"].to_numpy()
        okg = np.isnan(g) | ((g > 0) & (g < 100))
        _require(bool(okg.all()), f"gct_balance_pct out of (0, 100): {g[~okg][:3]}")
        rts = run.records["timestamp"].dropna()
        _require(
            rts.empty or rts.min() >= pd.Timestamp(TS_MIN, unit="s", tz="UTC"),
            "implausible run timestamps",
        )
        _require(math.isfinite(run.elapsed_s) or math.isnan(run.elapsed_s), "elapsed_s not float")


def check_input(data: bytes, *, check_crc: bool = True) -> str:
    """Read `data` and check the contract. Returns 'ok' or 'error'; raises on a broken promise."""
    from evenstride.metrics.fit import FitReadError, read_fit

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # numpy overflow / invalid cast
            ff = read_fit(data, check_crc=check_crc)
            check_fitfile(ff)
    except FitReadError as exc:
        reason = exc.reason
        if not isinstance(reason, str) or not reason.strip() or "\n" in reason:
            raise InvariantError(f"FitReadError without a one-line reason: {reason!r}") from None
        return "error"
    return "ok"


def signature(exc: BaseException) -> str:
    """Exception type plus the innermost frame in evenstride code (else the innermost frame)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "evenstride" in f.filename or "/main/" in f.filename]
    ours = [f for f in ours if "fuzz_reader" not in f.filename] or ours or frames
    top = ours[-1] if ours else None
    where = f"{Path(top.filename).name}:{top.lineno} {top.name}" if top else "?"
    if isinstance(exc, InvariantError):
        return f"InvariantError({str(exc).split(' ')[0:4]}) at {where}"
    return f"{type(exc).__name__} at {where}"


# --- samples ----------------------------------------------------------------------------------


def sample_files() -> list[Path]:
    """Every sample .fit file: the repository's fixtures and, when present, ../shared samples."""
    paths = sorted(FIXTURES.rglob("*.fit"))
    if SHARED_SAMPLES.is_dir():
        paths += sorted(SHARED_SAMPLES.rglob("*.fit"))
    seen: set[str] = set()
    out = []
    for p in paths:
        digest = hashlib.sha1(p.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            out.append(p)
    return out


@dataclass
class Failure:
    count: int = 0
    example: bytes = b""
    detail: str = ""


@dataclass
class Stats:
    executions: int = 0
    errors: int = 0  # FitReadError (fine)
    ok: int = 0
    slow: list[tuple[float, str]] = field(default_factory=list)
    failures: dict[str, Failure] = field(default_factory=dict)
    mutations: Counter = field(default_factory=Counter)

    def fail(self, sig: str, data: bytes, detail: str) -> None:
        f = self.failures.setdefault(sig, Failure())
        f.count += 1
        if not f.example or len(data) < len(f.example):
            f.example, f.detail = data, detail


def run_one(data: bytes, stats: Stats, args: argparse.Namespace, label: str) -> None:
    """One input: the contract, the time budget and (sometimes) the memory budget."""
    check_crc = stats.executions % 5 != 4
    measure = args.mem_every and stats.executions % args.mem_every == 0
    stats.executions += 1
    if measure:
        tracemalloc.start()
    t0 = time.process_time()  # CPU time: other processes' load must not look like a hang
    try:
        outcome = check_input(data, check_crc=check_crc)
    except Exception as exc:  # every other exception is what we are looking for
        stats.fail(signature(exc), data, f"{label}: {type(exc).__name__}: {exc}"[:300])
        outcome = "failure"
    finally:
        elapsed = time.process_time() - t0
        peak = 0
        if measure:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    if outcome == "ok":
        stats.ok += 1
    elif outcome == "error":
        stats.errors += 1
    if elapsed > args.slow * (3 if measure else 1):
        stats.slow.append((elapsed, label))
        stats.fail("slow input", data, f"{label}: {elapsed:.2f} CPU s for {len(data)} bytes")
    if measure and peak > args.mem_factor * len(data) + 16_000_000:
        stats.fail(
            "memory", data, f"{label}: peak {peak / 1e6:.1f} MB for {len(data) / 1e6:.2f} MB"
        )


def fuzz_random(args: argparse.Namespace) -> Stats:
    """Plain random structure-aware mutation of the samples for a time or execution budget."""
    files = sample_files()
    if args.max_size:
        files = [p for p in files if p.stat().st_size <= args.max_size]
    blobs = [p.read_bytes() for p in files]
    layouts = [layout_of(b) for b in blobs]
    print(f"{len(files)} distinct sample files, {sum(map(len, blobs)) / 1e6:.1f} MB", flush=True)
    rng = random.Random(args.seed)
    stats = Stats()
    # The unmutated samples first: they must pass too, and they warm imports and decoder caches
    # (which would otherwise count against the first inputs' time and memory).
    warm = argparse.Namespace(**{**vars(args), "mem_every": 0, "slow": 10 * args.slow})
    for path, blob in zip(files, blobs, strict=True):
        run_one(blob, stats, warm, f"{path.name} unmutated")
    deadline = time.monotonic() + args.seconds if args.seconds else math.inf
    next_report = time.monotonic() + 30
    while stats.executions < (args.executions or math.inf) and time.monotonic() < deadline:
        i = rng.randrange(len(blobs))
        other = blobs[rng.randrange(len(blobs))]
        other_lay = layouts[blobs.index(other)]
        seg = _segment_bytes(bytearray(other), other_lay, rng) if other_lay.segments else other
        data, names = mutate(rng, blobs[i], layouts[i], seg)
        stats.mutations.update(names)
        run_one(data, stats, args, f"{files[i].name} {'+'.join(names)}")
        if time.monotonic() > next_report:
            next_report += 30
            print(
                f"  ... {stats.executions} executions, {len(stats.failures)} failure signatures",
                flush=True,
            )
    return stats


# --- atheris (coverage-guided) -----------------------------------------------------------------


def _atheris_child(args: argparse.Namespace) -> None:
    """Run inside the libFuzzer process: failures go to a JSON-lines file the parent reads."""
    import atheris

    with atheris.instrument_imports(include=["evenstride"]):
        import evenstride.metrics.fit.messages  # noqa: F401
        import evenstride.metrics.fit.reader  # noqa: F401
        import evenstride.metrics.fit.records  # noqa: F401
        import evenstride.metrics.fit.runs  # noqa: F401
        import evenstride.metrics.fit.walk  # noqa: F401

    out = open(args.child_out, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
    state = {"n": 0, "t": time.monotonic()}
    seen: set[str] = set()

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if rng.random() < 0.4 or not data:
            return atheris.Mutate(data, max_size)
        mutated, _ = mutate(rng, data, layout_of(data))
        return mutated[:max_size]

    def test_one(data: bytes) -> None:
        state["n"] += 1
        t0 = time.process_time()
        try:
            outcome = check_input(data, check_crc=state["n"] % 5 != 4)
            state[outcome] = state.get(outcome, 0) + 1
        except Exception as exc:
            sig = signature(exc)
            if sig not in seen or state["n"] % 100 == 0:
                seen.add(sig)
                detail = f"atheris: {type(exc).__name__}: {exc}"[:300]
                out.write(json.dumps({"sig": sig, "hex": data.hex(), "detail": detail}) + "\n")
        elapsed = time.process_time() - t0
        if elapsed > args.slow:
            detail = f"atheris: {elapsed:.2f} s for {len(data)} bytes"
            out.write(json.dumps({"sig": "slow input", "hex": data.hex(), "detail": detail}) + "\n")
        if state["n"] % 200 == 0:
            counts = {"executions": state["n"], "ok": state.get("ok", 0)}
            out.write(json.dumps({**counts, "errors": state.get("error", 0)}) + "\n")

    argv = [sys.argv[0], *args.libfuzzer_args]
    atheris.Setup(argv, test_one, custom_mutator=custom_mutator)
    atheris.Fuzz()


def fuzz_atheris(args: argparse.Namespace) -> Stats | None:
    """Start libFuzzer in a child (it exits the process when done) and collect its findings."""
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris is not installed: skipping the coverage-guided run")
        return None
    files = [p for p in sample_files() if p.stat().st_size <= (args.max_size or 400_000)]
    stats = Stats()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        for p in files:
            (corpus / p.name).write_bytes(p.read_bytes())
        out = Path(tmp) / "findings.jsonl"
        budget = [f"-max_total_time={int(args.seconds or 60)}"]
        if args.executions:
            budget = [f"-runs={args.executions}"]
        max_len = max(p.stat().st_size for p in files) + 4096
        lf_args = [
            *budget,
            f"-max_len={max_len}",
            f"-seed={args.seed}",
            "-timeout=20",
            f"-rss_limit_mb={args.rss_limit_mb}",
            "-print_final_stats=1",
            f"-artifact_prefix={tmp}/",
            str(corpus),
        ]
        cmd = [sys.executable, __file__, "--atheris-child", "--child-out", str(out)]
        cmd += ["--slow", str(args.slow), "--", *lf_args]
        print(f"atheris: {len(files)} seed files, libFuzzer args {' '.join(lf_args[:-1])}")
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        tail = [ln for ln in proc.stderr.splitlines() if "stat::" in ln or "DONE" in ln]
        for line in tail[-8:]:
            print(f"  libFuzzer {line}")
        if proc.returncode not in (0,):
            crash = [ln for ln in proc.stderr.splitlines() if "ERROR" in ln or "==" in ln]
            artifacts = sorted(Path(tmp).glob("crash-*")) + sorted(Path(tmp).glob("timeout-*"))
            example = artifacts[0].read_bytes() if artifacts else b""
            if args.save_dir:  # the child's own traceback / signal report, for a native crash
                Path(args.save_dir).mkdir(parents=True, exist_ok=True)
                (Path(args.save_dir) / "libfuzzer-stderr.txt").write_text(proc.stderr[-20000:])
            stats.fail(
                f"libFuzzer exit {proc.returncode}",
                example,
                " | ".join(crash[-3:]) or "(no detail)",
            )
        for line in out.read_text().splitlines() if out.exists() else []:
            rec = json.loads(line)
            if "executions" in rec:  # periodic counts (the last line is the latest)
                stats.executions, stats.ok, stats.errors = (
                    rec["executions"],
                    rec["ok"],
                    rec["errors"],
                )
            else:
                stats.fail(rec["sig"], bytes.fromhex(rec["hex"]), rec["detail"])
        for line in proc.stderr.splitlines():
            if "stat::number_of_executed_units" in line:
                stats.executions = int(line.split(":")[-1])
    return stats


# --- main -------------------------------------------------------------------------------------


def report(name: str, stats: Stats, elapsed: float, args: argparse.Namespace) -> None:
    rate = stats.executions / elapsed if elapsed else 0.0
    print(
        f"{name}: {stats.executions} executions in {elapsed:.1f} s ({rate:.0f} exec/s); "
        f"{stats.ok} read, {stats.errors} FitReadError; "
        f"failures: {sum(f.count for f in stats.failures.values())} "
        f"({len(stats.failures)} unique signatures)"
    )
    if stats.mutations:
        top = ", ".join(f"{k} {v}" for k, v in stats.mutations.most_common(12))
        print(f"  mutations: {top}")
    for sig, f in sorted(stats.failures.items(), key=lambda kv: -kv[1].count):
        print(f"  FAIL x{f.count}: {sig}\n      {f.detail}")
        if args.save_dir and f.example:
            Path(args.save_dir).mkdir(parents=True, exist_ok=True)
            name_ = hashlib.sha1(sig.encode()).hexdigest()[:10]
            path = Path(args.save_dir) / f"{name_}.fit"
            path.write_bytes(f.example)
            print(f"      smallest input ({len(f.example)} bytes) saved to {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=0.0, help="time budget per mode")
    parser.add_argument("--executions", type=int, default=0, help="execution budget per mode")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--atheris", action="store_true", help="also run coverage-guided")
    parser.add_argument("--atheris-only", action="store_true", help="only the atheris run")
    parser.add_argument("--slow", type=float, default=1.0, help="seconds per input that fail")
    parser.add_argument("--mem-every", type=int, default=25, help="trace memory every N inputs")
    parser.add_argument("--mem-factor", type=float, default=40.0, help="peak memory / input size")
    parser.add_argument("--max-size", type=int, default=0, help="skip larger sample files")
    parser.add_argument("--rss-limit-mb", type=int, default=2048)
    parser.add_argument("--save-dir", help="write the smallest failing input of each signature")
    parser.add_argument("--atheris-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    parser.add_argument("libfuzzer_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.atheris_child:
        _atheris_child(args)
        return 0
    if not args.seconds and not args.executions:
        args.seconds = 60.0
    failed = False
    if not args.atheris_only:
        t0 = time.monotonic()
        stats = fuzz_random(args)
        report("random", stats, time.monotonic() - t0, args)
        failed |= bool(stats.failures)
    if args.atheris or args.atheris_only:
        t0 = time.monotonic()
        astats = fuzz_atheris(args)
        if astats is not None:
            report("atheris", astats, time.monotonic() - t0, args)
            failed |= bool(astats.failures)
    print("FAILED" if failed else "OK: no failures")
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
