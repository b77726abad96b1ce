"""read_fit(): the public entry point of the FIT decoder."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from evenstride.metrics.fit.errors import FitReadError
from evenstride.metrics.fit.messages import decode_dict_messages
from evenstride.metrics.fit.model import FitFile
from evenstride.metrics.fit.profile import DICT_MESSAGES
from evenstride.metrics.fit.records import decode_records
from evenstride.metrics.fit.walk import walk


def _load(source: bytes | bytearray | memoryview | str | Path) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise FitReadError(f"cannot read {source}: {exc.strerror or exc}") from None


def read_fit(
    source: bytes | bytearray | memoryview | str | Path, *, check_crc: bool = True
) -> FitFile:
    """Decode a FIT file. Raises FitReadError (one-line reason) when nothing usable can be read.

    A damaged file whose beginning is readable comes back with `partial=True` and `warnings`
    saying what was wrong; nothing after the damage is guessed.
    """
    buf = _load(source)
    try:
        w = walk(buf, check_crc=check_crc)
        records = decode_records(buf, w.definitions, w.compressed)
        messages: dict[str, list[tuple[int, dict[str, Any]]]] = {
            n: [] for n in DICT_MESSAGES.values()
        }
        for d in w.definitions:
            name = DICT_MESSAGES.get(d.global_num)
            if name and len(d.offsets):
                messages[name].extend(decode_dict_messages(buf, d))
    except FitReadError:
        raise
    except (
        struct.error,
        ValueError,
        IndexError,
        OverflowError,
    ) as exc:  # defensive: never a traceback
        raise FitReadError(f"undecodable FIT data ({type(exc).__name__}: {exc})") from None
    ordered = {
        name: [m for _, m in sorted(items, key=lambda x: x[0])] for name, items in messages.items()
    }
    if not ordered["file_id"] and not len(records["timestamp"]) and not ordered["session"]:
        raise FitReadError("FIT file holds no activity data (no file_id, records or sessions)")
    return FitFile(
        size=len(buf),
        file_id=ordered["file_id"][0] if ordered["file_id"] else {},
        devices=ordered["device_info"],
        sessions=ordered["session"],
        laps=ordered["lap"],
        columns=records,
        events=ordered["event"],
        sports=ordered["sport"],
        developer_fields=ordered["field_description"],
        warnings=w.warnings,
        partial=w.partial,
        segments=w.segments,
    )


def describe(ff: FitFile) -> str:
    """A one-line human summary (used by the CLI and the demo)."""
    sports = (
        ", ".join(f"{s.get('sport')}/{s.get('sub_sport')}" for s in ff.sessions) or "no session"
    )
    return f"{ff.record_count} records, {sports}" + (" (partial)" if ff.partial else "")


__all__ = ["describe", "read_fit"]
