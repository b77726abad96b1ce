"""FIT base types: sizes, numpy/struct codes and the bit patterns that mean "invalid"."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BaseType:
    name: str
    size: int
    code: str  # numpy/struct letter (without byte order)
    invalid: int | None  # raw integer meaning "no value"; None for strings/floats (handled apart)
    is_float: bool = False
    is_string: bool = False


# Indexed by the base type number's low 5 bits (the FIT spec's "base type number").
BASE_TYPES: dict[int, BaseType] = {
    0x00: BaseType("enum", 1, "B", 0xFF),
    0x01: BaseType("sint8", 1, "b", 0x7F),
    0x02: BaseType("uint8", 1, "B", 0xFF),
    0x03: BaseType("sint16", 2, "h", 0x7FFF),
    0x04: BaseType("uint16", 2, "H", 0xFFFF),
    0x05: BaseType("sint32", 4, "i", 0x7FFFFFFF),
    0x06: BaseType("uint32", 4, "I", 0xFFFFFFFF),
    0x07: BaseType("string", 1, "s", None, is_string=True),
    0x08: BaseType("float32", 4, "f", None, is_float=True),
    0x09: BaseType("float64", 8, "d", None, is_float=True),
    0x0A: BaseType("uint8z", 1, "B", 0x00),
    0x0B: BaseType("uint16z", 2, "H", 0x0000),
    0x0C: BaseType("uint32z", 4, "I", 0x00000000),
    0x0D: BaseType("byte", 1, "B", 0xFF),
    0x0E: BaseType("sint64", 8, "q", 0x7FFFFFFFFFFFFFFF),
    0x0F: BaseType("uint64", 8, "Q", 0xFFFFFFFFFFFFFFFF),
    0x10: BaseType("uint64z", 8, "Q", 0x0000000000000000),
}
BYTE = BASE_TYPES[0x0D]


def base_type(number: int) -> BaseType:
    """Resolve a definition's base-type byte; unknown types are read as raw bytes, like fitparse."""
    return BASE_TYPES.get(number & 0x1F, BYTE)


FIT_EPOCH_UNIX = 631065600  # 1989-12-31T00:00:00Z
MIN_DATE_TIME = 0x10000000  # smaller date_time values are relative (seconds since power-on)
