"""The compiled header walk gives exactly what the Python reference walk gives."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from evenstride.metrics.fit import walk as W

ROOT = Path(__file__).resolve().parents[1] / "fixtures"
FILES = sorted(ROOT.rglob("*.fit"))

pytestmark = pytest.mark.skipif(W._kernel is None, reason="numba not available")


def _run(fn, data: bytes):
    cache: dict = {}
    compressed: list = []
    stop, error = fn(data, data[0], len(data) - 2, cache, compressed)
    for d in cache.values():
        d.finalise()
    # the compiled walk keeps offsets only for the messages the reader decodes (unless the file
    # has compressed timestamps); those must be identical
    keep = bool(compressed) or None
    layouts = sorted(
        (
            (d.global_num, d.fields, d.dev_size, tuple(d.offsets.tolist()))
            for d in cache.values()
            if keep or d.global_num in W.DECODED
        ),
        key=repr,
    )
    return stop, error, layouts, compressed


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_same_walk_on_every_fixture(path: Path) -> None:
    data = path.read_bytes()
    if len(data) < 14:
        pytest.skip("not a FIT file")
    assert _run(W._walk_messages_jit, data) == _run(W._walk_messages_py, data)


def test_same_walk_on_damaged_copies() -> None:
    """Truncations and byte flips: same messages, same stop position, same error text."""
    rng = random.Random(7)
    sources = [p.read_bytes() for p in FILES if p.stat().st_size > 1000][:12]
    for data in sources:
        for _ in range(25):
            buf = bytearray(data[: rng.randrange(14, len(data))])
            for _ in range(rng.randrange(0, 4)):
                buf[rng.randrange(14, len(buf))] = rng.randrange(256)
            blob = bytes(buf)
            assert _run(W._walk_messages_jit, blob) == _run(W._walk_messages_py, blob)
