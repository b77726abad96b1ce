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


def _range(bt: BaseType) -> tuple[int, int] | None:
    """Raw integer range of a base type (None for floats and strings)."""
    if bt.is_float or bt.is_string:
        return None
    bits = 8 * bt.size
    if bt.code.islower():  # signed struct/numpy codes: b, h, i, q
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _fits(declared: BaseType, profile: BaseType) -> bool:
    d, p = _range(declared), _range(profile)
    if d is None or p is None:
        return declared.is_float == profile.is_float and declared.is_string == profile.is_string
    return p[0] <= d[0] and d[1] <= p[1]


_BY_NAME = {bt.name: bt for bt in BASE_TYPES.values()}
_FITS = {(d.name, p.name): _fits(d, p) for d in _BY_NAME.values() for p in _BY_NAME.values()}


def compatible(declared: BaseType, field: object) -> bool:
    """May a value of the declared base type stand for this profile field (a fitparse Field)?

    Only when every value it can hold is one the profile's type can: a damaged definition that
    declares e.g. a float or a sint32 for a uint16 field would otherwise yield numbers the field
    cannot have (a negative GCT balance, a timestamp past year 2262, a float where bits are
    expected). Real devices declare the profile's type (or a narrower one), so nothing is lost.
    """
    ftype = getattr(field, "type", None)
    name = getattr(getattr(ftype, "base_type", ftype), "name", None)
    return _FITS.get((declared.name, name), True)


FIT_EPOCH_UNIX = 631065600  # 1989-12-31T00:00:00Z
