"""Test-only oracles for the FIT reader: the same file decoded by fitparse and by garmin-fit-sdk.

Both libraries are slow, pure-Python, independent decoders. Each function here decodes a whole file
and returns a `Decoded`: the `record` messages as a pandas DataFrame whose columns carry FIT profile
names (the same names as `FitFile.records`), and the `session`, `lap`, `file_id` and `device_info`
messages as lists of dicts. The conventions match the reader's contract:

* values are scaled (profile scale/offset applied, components expanded: speed -> enhanced_speed,
  altitude -> enhanced_altitude, compressed_speed_distance -> speed/distance);
* an invalid (0xFF..) or absent value is NaN in the frame and missing from the dicts;
* numbers are floats, timestamps are timezone-aware UTC `pd.Timestamp`s, enums are strings;
* developer fields and fields the profile does not name are left out.

Damaged files: decoding stops at the first error and everything read before it is kept (the
"readable prefix"), with the error text in `Decoded.error`. CRC checks are off in both oracles, so a
bad CRC alone never hides data.

Nothing here is imported by the package: fitparse and garmin-fit-sdk are test-only dependencies.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import pickle
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Record fields every oracle frame has (NaN when the file does not carry them). Other named record
# fields the oracle decodes are added as extra columns.
RECORD_FIELDS: tuple[str, ...] = (
    "timestamp",
    "position_lat",
    "position_long",
    "distance",
    "speed",
    "enhanced_speed",
    "altitude",
    "enhanced_altitude",
    "heart_rate",
    "cadence",
    "fractional_cadence",
    "power",
    "stance_time",
    "stance_time_balance",
    "stance_time_percent",
    "vertical_oscillation",
    "vertical_ratio",
    "step_length",
    "temperature",
)

# The running-dynamics (and related) record fields on which the research note found fitparse,
# fitdecode and garmin-fit-sdk to agree exactly on every file.
RUNNING_DYNAMICS_FIELDS: tuple[str, ...] = (
    "timestamp",
    "distance",
    "enhanced_speed",
    "heart_rate",
    "cadence",
    "fractional_cadence",
    "power",
    "stance_time",
    "stance_time_balance",
    "stance_time_percent",
    "vertical_oscillation",
    "vertical_ratio",
    "step_length",
)

SUMMARY_MESSAGES = ("session", "lap", "file_id", "device_info")
_WANTED = frozenset(("record", *SUMMARY_MESSAGES))
FIT_EPOCH = pd.Timestamp("1989-12-31T00:00:00Z")
REL_TOL = 1e-9


@dataclass
class Decoded:
    """One file as one oracle library decoded it."""

    library: str
    records: pd.DataFrame
    sessions: list[dict[str, Any]] = field(default_factory=list)
    laps: list[dict[str, Any]] = field(default_factory=list)
    file_id: list[dict[str, Any]] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None  # first decoding error; None when the whole file was read

    @property
    def complete(self) -> bool:
        return self.error is None

    @property
    def read_anything(self) -> bool:
        return bool(len(self.records) or self.sessions or self.laps or self.file_id or self.devices)


# --------------------------------------------------------------------------- value normalisation


def normalize(value: Any) -> Any:
    """One value in the oracles' common convention (see module docstring)."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if isinstance(value, dt.datetime):
        ts = pd.Timestamp(value)
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if isinstance(value, str | bytes):
        return value
    if isinstance(value, list | tuple):
        items = tuple(normalize(v) for v in value)
        # an array whose every element is invalid is an invalid value
        return math.nan if all(_is_missing(v) for v in items) else items
    return value


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _clean_dict(pairs: Iterable[tuple[Any, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, raw in pairs:
        if not isinstance(key, str) or key.startswith("unknown") or key == "developer_fields":
            continue
        value = normalize(raw)
        if _is_missing(value):
            continue
        out[key] = value
    return out


def records_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Record dicts (already cleaned) -> DataFrame with RECORD_FIELDS first, then extra columns."""
    extra: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key not in RECORD_FIELDS:
                extra.setdefault(key, None)
    columns = [*RECORD_FIELDS, *sorted(extra)]
    data: dict[str, Any] = {}
    for col in columns:
        values = [row.get(col, math.nan) for row in rows]
        if col == "timestamp":
            data[col] = pd.to_datetime(
                [None if _is_missing(v) else v for v in values], utc=True
            ).astype("datetime64[ns, UTC]")
        elif all(isinstance(v, float) for v in values):
            data[col] = np.asarray(values, dtype=np.float64)
        else:
            data[col] = pd.Series(values, dtype=object)
    frame = pd.DataFrame(data, columns=columns)
    if len(rows) == 0:
        frame["timestamp"] = frame["timestamp"].astype("datetime64[ns, UTC]")
        for col in columns[1:]:
            frame[col] = frame[col].astype(np.float64)
    return frame


# --------------------------------------------------------------------------- fitparse


def _fitparse_value(fd: Any) -> Any:
    # fitparse leaves a date_time below 0x10000000 (seconds since device power-on, e.g. the FR70's
    # compressed timestamps) as a raw int; garmin-fit-sdk converts every date_time from the FIT
    # epoch. Use the SDK's convention so that both oracles (and the reader) agree.
    value = fd.value
    if isinstance(value, int) and getattr(fd.type, "name", None) == "date_time":
        return FIT_EPOCH + pd.Timedelta(seconds=value)
    return value


def _decode_fitparse(path: Path) -> Decoded:
    import fitparse
    from fitparse.records import DevField

    rows: list[dict[str, Any]] = []
    summaries: dict[str, list[dict[str, Any]]] = {name: [] for name in SUMMARY_MESSAGES}
    error = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ff = fitparse.FitFile(str(path), check_crc=False)
            for message in ff.get_messages():
                if message.name not in _WANTED:
                    continue
                cleaned = _clean_dict(
                    (fd.name, _fitparse_value(fd))
                    for fd in message.fields
                    if not isinstance(fd.field, DevField)
                )
                if message.name == "record":
                    rows.append(cleaned)
                else:
                    summaries[message.name].append(cleaned)
    except Exception as exc:  # any failure ends the readable prefix
        error = f"{type(exc).__name__}: {exc}"
    return Decoded(
        library="fitparse",
        records=records_frame(rows),
        sessions=summaries["session"],
        laps=summaries["lap"],
        file_id=summaries["file_id"],
        devices=summaries["device_info"],
        error=error,
    )


# --------------------------------------------------------------------------- garmin-fit-sdk

# The options the SDK oracle uses. merge_heart_rates=False: the SDK would otherwise copy the
# HRM-Tri's stored `hr` messages into record.heart_rate (a by-design difference from every other
# decoder). enable_crc_check=False: like fitparse's check_crc=False, a bad CRC must not hide data.
SDK_READ_OPTIONS: dict[str, Any] = {
    "apply_scale_and_offset": True,
    "convert_datetimes_to_dates": True,
    "convert_types_to_strings": True,
    "enable_crc_check": False,
    "expand_sub_fields": True,
    "expand_components": True,
    "merge_heart_rates": False,
}


def _decode_sdk(path: Path) -> Decoded:
    from garmin_fit_sdk import Decoder, Stream

    error = None
    messages: dict[str, list[dict[str, Any]]] = {}
    try:
        stream = Stream.from_file(str(path))
        messages, errors = Decoder(stream).read(**SDK_READ_OPTIONS)
        if errors:
            error = f"{type(errors[0]).__name__}: {errors[0]}"
        stream.close()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"

    def cleaned(key: str) -> list[dict[str, Any]]:
        return [_clean_dict(m.items()) for m in messages.get(key, [])]

    return Decoded(
        library="garmin-fit-sdk",
        records=records_frame(cleaned("record_mesgs")),
        sessions=cleaned("session_mesgs"),
        laps=cleaned("lap_mesgs"),
        file_id=cleaned("file_id_mesgs"),
        devices=cleaned("device_info_mesgs"),
        error=error,
    )


# --------------------------------------------------------------------------- public entry points


# Where decoded oracle results are pickled between test sessions (conftest points it into pytest's
# cache folder). fitparse needs ~40 s for the 2 MB files, so this keeps repeated test runs fast.
# The key covers the file's bytes, the library and its version and this module's own source, so a
# stale entry cannot be used.
CACHE_DIR: Path | None = None


def _library_version(library: str) -> str:
    from importlib.metadata import version

    return version("fitparse" if library == "fitparse" else "garmin-fit-sdk")


def _cache_key(library: str, path: Path) -> str:
    digest = hashlib.sha256()
    digest.update(path.read_bytes())
    digest.update(library.encode())
    digest.update(_library_version(library).encode())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()


@cache
def _cached(library: str, path_str: str) -> Decoded:
    path = Path(path_str)
    decode = {"fitparse": _decode_fitparse, "garmin-fit-sdk": _decode_sdk}[library]
    if CACHE_DIR is None or not path.is_file():
        return decode(path)
    entry = Path(CACHE_DIR) / f"{_cache_key(library, path)}.pickle"
    if entry.is_file():
        try:
            with entry.open("rb") as fh:
                return pickle.load(fh)
        except Exception:  # a damaged cache entry is just recomputed
            pass
    result = decode(path)
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(entry)
    return result


def decode_fitparse(path: str | Path) -> Decoded:
    """The file as fitparse 1.2 decodes it (check_crc=False; readable prefix kept on error).

    Cached per path for the test session: treat the result as read-only.
    """
    return _cached("fitparse", str(Path(path).resolve()))


def decode_sdk(path: str | Path) -> Decoded:
    """The file as garmin-fit-sdk decodes it with SDK_READ_OPTIONS (readable prefix kept on error).

    Cached per path for the test session: treat the result as read-only.
    """
    return _cached("garmin-fit-sdk", str(Path(path).resolve()))


ORACLES = {"fitparse": decode_fitparse, "garmin-fit-sdk": decode_sdk}


def with_data_size(data: bytes, data_size: int) -> bytes:
    """`data` with the header's data_size field (bytes 4..8, little endian) replaced.

    Used to build the recovery oracle for an unfinalized recording whose header says data_size=0.
    The header CRC (if any) is zeroed, which FIT allows ("not computed").
    """
    header_size = data[0]
    patched = bytearray(data)
    patched[4:8] = int(data_size).to_bytes(4, "little")
    if header_size >= 14:
        patched[12:14] = b"\x00\x00"
    return bytes(patched)


# --------------------------------------------------------------------------- comparison helpers


def values_equal(a: Any, b: Any, rel_tol: float = REL_TOL) -> bool:
    """Equality in the oracles' convention: NaN == NaN, floats within rel_tol, sequences by item."""
    a, b = normalize(a), normalize(b)
    if _is_missing(a) or _is_missing(b):
        return _is_missing(a) and _is_missing(b)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=rel_tol, abs_tol=0.0)
    if isinstance(a, pd.Timestamp) and isinstance(b, pd.Timestamp):
        return a == b
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(
            values_equal(x, y, rel_tol) for x, y in zip(a, b, strict=True)
        )
    if type(a) is not type(b):
        return False
    return a == b


def _as_float(series: pd.Series) -> np.ndarray | None:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return None
    try:
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        return None


def _as_utc_ns(series: pd.Series) -> np.ndarray | None:
    if not pd.api.types.is_datetime64_any_dtype(series.dtype):
        return None
    s = series if series.dt.tz is not None else series.dt.tz_localize("UTC")
    return s.dt.tz_convert("UTC").astype("datetime64[ns, UTC]").to_numpy("datetime64[ns]")


def column_mismatch(
    actual: pd.Series, expected: pd.Series, rel_tol: float = REL_TOL
) -> tuple[int, Any, Any] | None:
    """First (index, actual, expected) where two equally long columns differ, or None.

    Positions are compared (the index is ignored). Datetimes compare exactly as UTC instants
    (a naive datetime column is taken as UTC); numbers compare as floats within rel_tol with
    NaN == NaN; anything else compares item by item with `values_equal`.
    """
    if len(actual) != len(expected):
        raise ValueError(f"length {len(actual)} != {len(expected)}")
    a_ts, e_ts = _as_utc_ns(actual), _as_utc_ns(expected)
    if a_ts is not None or e_ts is not None:
        if a_ts is None or e_ts is None:
            return (0, actual.iloc[0] if len(actual) else None, "a datetime column")
        bad = ~((a_ts == e_ts) | (np.isnat(a_ts) & np.isnat(e_ts)))
        if bad.any():
            i = int(np.argmax(bad))
            return (i, actual.iloc[i], expected.iloc[i])
        return None
    a_f, e_f = _as_float(actual), _as_float(expected)
    if a_f is not None and e_f is not None:
        both_nan = np.isnan(a_f) & np.isnan(e_f)
        with np.errstate(invalid="ignore"):
            close = np.abs(a_f - e_f) <= rel_tol * np.maximum(np.abs(a_f), np.abs(e_f))
        bad = ~(both_nan | close)
        if bad.any():
            i = int(np.argmax(bad))
            return (i, actual.iloc[i], expected.iloc[i])
        return None
    for i, (x, y) in enumerate(zip(actual.tolist(), expected.tolist(), strict=True)):
        if not values_equal(x, y, rel_tol):
            return (i, x, y)
    return None


def frame_mismatches(
    actual: pd.DataFrame,
    expected: pd.DataFrame,
    columns: Iterable[str] | None = None,
    rows: int | None = None,
    rel_tol: float = REL_TOL,
) -> list[str]:
    """One line per column that differs between two record frames, over their first `rows` rows.

    `columns` defaults to the columns both frames have. A column missing from `expected` is only
    accepted when it is all-NaN in `actual`; a column missing from `actual` is not checked.
    """
    n = min(len(actual), len(expected)) if rows is None else rows
    if columns is None:
        columns = [c for c in actual.columns if c in expected.columns]
    out = []
    for col in columns:
        if col not in actual.columns:
            continue
        a = actual[col].iloc[:n].reset_index(drop=True)
        if col not in expected.columns:
            if a.notna().any():
                i = int(np.argmax(a.notna().to_numpy()))
                out.append(f"{col}: not decoded by the oracle, but record {i} = {a.iloc[i]!r}")
            continue
        e = expected[col].iloc[:n].reset_index(drop=True)
        hit = column_mismatch(a, e, rel_tol)
        if hit is not None:
            i, x, y = hit
            out.append(f"{col}: first difference at record {i}: {x!r} != {y!r}")
    return out


def dict_mismatches(
    actual: Mapping[str, Any], expected: Mapping[str, Any], rel_tol: float = REL_TOL
) -> list[str]:
    """Keys present in both dicts whose values differ (one line each)."""
    return [
        f"{key}: {actual[key]!r} != {expected[key]!r}"
        for key in actual
        if key in expected and not values_equal(actual[key], expected[key], rel_tol)
    ]


def fit_seconds(ts: pd.Timestamp) -> float:
    """Seconds since the FIT epoch (1989-12-31 UTC)."""
    return (ts - FIT_EPOCH).total_seconds()
