"""Decode the few non-record messages (session, lap, device_info, ...) into plain dicts.

Semantics follow the FIT profile as fitparse applies it: invalid values are left out, sub-fields
are chosen by their reference fields, components are expanded (e.g. avg_speed ->
enhanced_avg_speed), enums become their profile names, date_time becomes a timezone-aware UTC datetime (10x cheaper to make than a pandas Timestamp).
Per definition, a plan (struct layout, names, scales) is compiled once, because laps and sessions
carry a hundred fields each and a per-value profile lookup would dominate the reader's time.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from evenstride.metrics.fit.basetypes import (
    FIT_EPOCH_UNIX,
    BaseType,
    base_type,
    compatible,
)
from evenstride.metrics.fit.profile import MESSAGE_TYPES
from evenstride.metrics.fit.walk import Definition

_DATE_TYPES = {"date_time", "local_date_time"}


_ENUMS: dict[str, dict[int, str]] = {}


def enum_values(ftype) -> dict[int, str] | None:
    """Enum names for a profile type: fitparse's table, completed by Garmin's current SDK profile.

    fitparse's profile dates from 2020, so newer watches and sensors (e.g. garmin_product 3113
    'fr945', manufacturer 294 'coros') would stay bare numbers; garmin-fit-sdk (a runtime
    dependency for FIT workout files anyway) knows them. fitparse's names win where both exist.
    """
    values = getattr(ftype, "values", None)
    if not values:
        return values
    name = getattr(ftype, "name", None)
    merged = _ENUMS.get(name)
    if merged is None:
        newer = _sdk_types().get(name) or {}
        merged = {**{int(k): v for k, v in newer.items()}, **values}
        _ENUMS[name] = merged
    return merged


def _sdk_types() -> dict[str, dict]:
    try:
        from garmin_fit_sdk import Profile
    except ImportError:  # pragma: no cover - garmin-fit-sdk is a declared dependency
        return {}
    return Profile["types"]


def _render(field, raw: Any) -> Any:
    """Apply enum names / dates / scale and offset as the profile says."""
    ftype = field.type
    if getattr(ftype, "name", None) in _DATE_TYPES and isinstance(raw, int):
        return datetime.fromtimestamp(raw + FIT_EPOCH_UNIX, UTC)  # as garmin-fit-sdk does
    values = enum_values(ftype)
    if values and isinstance(raw, int) and raw in values:
        return values[raw]
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value = raw
        if field.scale:
            value = float(value) / field.scale
        if field.offset:
            value = value - field.offset
        return value
    return raw


@dataclass(slots=True)
class _FieldPlan:
    num: int
    first: int  # index in the struct's flat tuple
    count: int  # number of elements (arrays); strings count 1
    bt: BaseType
    field: Any  # fitparse profile Field
    simple: bool  # no sub-fields, no components: render directly


def _compile(definition: Definition, mtype) -> tuple[struct.Struct, list[_FieldPlan]]:
    """Struct layout plus the known fields; unknown fields and odd sizes are skipped once here."""
    fmt = [">" if definition.big_endian else "<"]
    plans: list[_FieldPlan] = []
    index = 0
    for num, size, bt_byte in definition.fields:
        bt = base_type(bt_byte)
        field = mtype.fields.get(num)
        if (
            field is None
            or size == 0
            or (not bt.is_string and size % bt.size)
            or not compatible(bt, field)
        ):
            # unknown to the profile, a size that does not fit its type, or a type whose values
            # the field cannot hold (damaged definition)
            fmt.append(f"{size}x")
            continue
        if bt.is_string:
            fmt.append(f"{size}s")
            count = 1
        else:
            count = size // bt.size
            fmt.append(f"{count}{bt.code}")
        simple = not field.subfields and not field.components
        plans.append(_FieldPlan(num, index, count, bt, field, simple))
        index += count
    if definition.dev_size:
        fmt.append(f"{definition.dev_size}x")
    return struct.Struct("".join(fmt)), plans


def _raw(flat: tuple, p: _FieldPlan) -> Any:
    """The field's raw value, or None when it holds the base type's invalid pattern."""
    bt = p.bt
    if p.count == 1:
        v = flat[p.first]
        if bt.is_string:
            text = v.split(b"\x00", 1)[0]
            return text.decode("utf-8", errors="replace") if text else None
        if bt.is_float:
            return None if (v != v or math.isinf(v)) else v
        return None if v == bt.invalid else v
    vals = flat[p.first : p.first + p.count]
    if bt.name == "byte":
        return None if all(v == 0xFF for v in vals) else tuple(vals)
    if bt.is_float:
        items = tuple(None if (v != v or math.isinf(v)) else v for v in vals)
    else:
        items = tuple(None if v == bt.invalid else v for v in vals)
    return None if all(v is None for v in items) else items


def _bits(raw: Any, bt: BaseType) -> int | None:
    """An integer holding the field's bits (arrays are little-endian, as in fitparse)."""
    if isinstance(raw, tuple):
        value = 0
        for i, b in enumerate(raw):
            if b is None:
                return None
            value |= b << (8 * i * bt.size)
        return value
    return raw if isinstance(raw, int) else None


_SUBFIELD_INDEX: dict[int, tuple[Any, tuple[tuple[int, dict[Any, Any]], ...]]] = {}


def _subfield_index(field) -> tuple[tuple[int, dict[Any, Any]], ...]:
    """Per reference field: {raw value: sub-field}, so resolution is one dict lookup each.

    Profile fields are module-level objects, so an index built once serves every file.
    """
    entry = _SUBFIELD_INDEX.get(id(field))
    if entry is None or entry[0] is not field:
        groups: dict[int, dict[Any, Any]] = {}
        for sub in field.subfields or ():
            for ref in sub.ref_fields:
                groups.setdefault(ref.def_num, {}).setdefault(ref.raw_value, sub)
        entry = (field, tuple(groups.items()))
        _SUBFIELD_INDEX[id(field)] = entry
    return entry[1]


def _resolve_subfield(field, raws: dict[int, Any]):
    """The sub-field selected by the message's reference fields (first match in profile order)."""
    if not field.subfields:
        return field
    best = None
    for ref_num, table in _subfield_index(field):
        sub = table.get(raws.get(ref_num))
        if sub is not None and (
            best is None or field.subfields.index(sub) < field.subfields.index(best)
        ):
            best = sub
    return best if best is not None else field


def _expand(message: dict, mtype, field, raw: Any, bt: BaseType, raws: dict[int, Any]) -> None:
    """Add the values of a field's non-accumulating components (e.g. enhanced_avg_speed)."""
    bits = _bits(raw, bt)
    if bits is None:
        return
    for comp in field.components:
        if comp.accumulate:
            continue  # accumulating components only occur in records, decoded elsewhere
        cval = (bits >> comp.bit_offset) & ((1 << comp.bits) - 1)
        target = _resolve_subfield(mtype.fields[comp.def_num], raws)
        if (
            getattr(target.type, "values", None)
            or getattr(target.type, "name", None) in _DATE_TYPES
        ):
            message[target.name] = _render(target, cval)
            continue
        value: Any = cval
        if comp.scale:
            value = float(value) / comp.scale
        if comp.offset:
            value = value - comp.offset
        message[target.name] = value


def _raws_for(flat: tuple, plans: list[_FieldPlan], nums: set[int]) -> dict[int, Any]:
    return {p.num: _raw(flat, p) for p in plans if p.num in nums}


def _render_expr(target, var: str, env: dict[str, Any], key: str) -> str:
    """Python expression rendering raw int `var` as `target` (field or sub-field) would."""
    if getattr(target.type, "name", None) in _DATE_TYPES:
        return f"fromtimestamp({var} + EPOCH, UTC)"
    values = enum_values(target.type)
    if values:
        env[f"enum{key}"] = values
        return f"enum{key}.get({var}, {var})"
    expr = var
    if target.scale:
        expr = f"{var} / {float(target.scale)!r}"
    if target.offset:
        expr = f"({expr}) - {target.offset!r}"
    return expr


def _fast_subfields(field, mtype) -> bool:
    """Whether a field's sub-fields and components can be generated as straight-line code."""
    for candidate in (field, *(field.subfields or ())):
        for comp in candidate.components or ():
            target = mtype.fields.get(comp.def_num)
            if comp.accumulate or target is None or target.subfields:
                return False
    return True


def _subfield_branches(field, scalar_index: dict[int, int]) -> list[tuple[str, Any]]:
    """(condition on raw reference values, sub-field) in profile order; first match wins."""
    out = []
    for sub in field.subfields:
        tests = [
            f"f[{scalar_index[ref.def_num]}] == {ref.raw_value!r}"
            for ref in sub.ref_fields
            if ref.def_num in scalar_index
        ]
        if tests:
            out.append((" or ".join(tests), sub))
    return out


def _emit_value(lines: list[str], env: dict[str, Any], mtype, target, key: str, pad: str) -> None:
    """Code for one (sub-)field value of raw int v: its components first, then itself."""
    for j, comp in enumerate(target.components or ()):
        dest = mtype.fields[comp.def_num]
        mask = (1 << comp.bits) - 1
        lines.append(f"{pad}c = (v >> {comp.bit_offset}) & {mask}")
        if enum_values(dest.type) or getattr(dest.type, "name", None) in _DATE_TYPES:
            lines.append(f"{pad}m[{dest.name!r}] = {_render_expr(dest, 'c', env, f'{key}c{j}')}")
        else:
            expr = "c"
            if comp.scale:
                expr = f"c / {float(comp.scale)!r}"
            if comp.offset:
                expr = f"({expr}) - {comp.offset!r}"
            lines.append(f"{pad}m[{dest.name!r}] = {expr}")
    lines.append(f"{pad}m[{target.name!r}] = {_render_expr(target, 'v', env, key)}")


def _compile_decoder(definition: Definition, mtype):
    """Generate `decode(buf, off) -> dict` for one definition.

    Simple scalar fields (the vast majority) become straight-line code with their invalid value,
    scale, offset and enum table baked in; arrays, strings, sub-fields and components go through
    the generic helpers above. Semantics are identical either way; only the speed differs.
    """
    st, plans = _compile(definition, mtype)
    env: dict[str, Any] = {
        "unpack_from": st.unpack_from,
        "fromtimestamp": datetime.fromtimestamp,
        "UTC": UTC,
        "EPOCH": FIT_EPOCH_UNIX,
        "_raw": _raw,
        "_render": _render,
        "_resolve_subfield": _resolve_subfield,
        "_expand": _expand,
        "_raws_for": _raws_for,
        "mtype": mtype,
        "plans": plans,
    }
    ref_nums = {
        ref.def_num
        for p in plans
        if not p.simple
        for sub in (p.field.subfields or ())
        for ref in sub.ref_fields
    }
    lines = ["def decode(buf, off):", "    f = unpack_from(buf, off)", "    m = {}"]
    env["ref_nums"] = ref_nums
    scalar_index = {
        p.num: p.first for p in plans if p.count == 1 and not p.bt.is_string and not p.bt.is_float
    }
    for k, p in enumerate(plans):
        field, bt = p.field, p.bt
        scalar_int = p.count == 1 and not bt.is_string and not bt.is_float
        if scalar_int and (p.simple or _fast_subfields(field, mtype)):
            lines.append(f"    v = f[{p.first}]")
            lines.append(f"    if v != {bt.invalid}:")
            branches = _subfield_branches(field, scalar_index) if field.subfields else []
            for i, (cond, sub) in enumerate(branches):
                lines.append(f"        {'if' if i == 0 else 'elif'} {cond}:")
                _emit_value(lines, env, mtype, sub, f"{k}_{i}", "            ")
            if branches:
                lines.append("        else:")
                _emit_value(lines, env, mtype, field, f"{k}_b", "            ")
            else:
                _emit_value(lines, env, mtype, field, f"{k}_b", "        ")
            continue
        if p.simple and p.count > 1 and not bt.is_string and not bt.is_float:
            # arrays of a plain integer type (e.g. time in each HR zone): rendered inline
            invalid = (bt.invalid,) * p.count
            lines.append(f"    vals = f[{p.first}:{p.first + p.count}]")
            lines.append(f"    if vals != {invalid!r}:")
            expr = _render_expr(field, "x", env, f"{k}_a")
            if bt.name == "byte":  # byte arrays keep every element
                lines.append(f"        m[{field.name!r}] = tuple({expr} for x in vals)")
            else:
                lines.append(
                    f"        m[{field.name!r}] = "
                    f"tuple(None if x == {bt.invalid} else {expr} for x in vals)"
                )
            continue
        # Generic path: strings, floats, arrays with sub-fields or components.
        pad = "    "
        if p.count > 1 and not bt.is_float and not bt.is_string:
            # arrays are usually all invalid (e.g. cycling power phases in a run's laps)
            invalid = (bt.invalid,) * p.count
            lines.append(f"    if f[{p.first}:{p.first + p.count}] != {invalid!r}:")
            pad = "        "
        lines.append(f"{pad}p = plans[{k}]")
        lines.append(f"{pad}v = _raw(f, p)")
        lines.append(f"{pad}if v is not None:")
        body = []
        if p.simple:
            body.append("    fld = p.field")
        else:
            body.append("    raws = _raws_for(f, plans, ref_nums)")
            body.append("    fld = _resolve_subfield(p.field, raws)")
            body.append("    if fld.components:")
            body.append("        _expand(m, mtype, fld, v, p.bt, raws)")
        body.append("    if isinstance(v, tuple):")
        body.append(
            "        m[fld.name] = tuple(None if r is None else _render(fld, r) for r in v)"
        )
        body.append("    else:")
        body.append("        m[fld.name] = _render(fld, v)")
        lines.extend(pad + line for line in body)
    lines.append("    return m")
    exec(compile("\n".join(lines), f"<fit decoder {mtype.name}>", "exec"), env)  # noqa: S102
    return env["decode"]


@lru_cache(maxsize=2048)
def _decoder_for(global_num: int, big_endian: bool, fields: tuple, dev_size: int):
    """Generated decoders are cached by layout: a watch writes the same layouts in every file."""
    layout = Definition(global_num, big_endian, fields, dev_size, 0)
    return _compile_decoder(layout, MESSAGE_TYPES[global_num])


def decode_dict_messages(buf: bytes, definition: Definition) -> list[tuple[int, dict[str, Any]]]:
    """Decode every data message of one definition: [(payload offset, {name: value})]."""
    if definition.global_num not in MESSAGE_TYPES:
        return []
    decode = _decoder_for(
        definition.global_num, definition.big_endian, definition.fields, definition.dev_size
    )
    return [(off, decode(buf, off)) for off in definition.offsets.tolist()]
