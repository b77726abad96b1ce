"""read_fit(): the public entry point of the FIT decoder."""

from __future__ import annotations

from pathlib import Path

from evenstride.metrics.fit.model import FitFile


def read_fit(source: bytes | bytearray | memoryview | str | Path, *, check_crc: bool = True) -> FitFile:
    """Decode a FIT file. Raises FitReadError (one-line reason) when nothing usable can be read."""
    raise NotImplementedError
