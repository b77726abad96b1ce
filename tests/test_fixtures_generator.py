"""The synthetic FIT fixtures must say what their truth JSON says, to two independent decoders.

Why: every metric test downstream trusts ``fixtures/synthetic/*.truth.json`` as exact ground truth,
so here the committed files are decoded with Garmin's official SDK and with fitparse (a separate
code base) and compared to the truth, and the generator is re-run to prove the committed bytes are
reproducible.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import fitparse
import pytest
from garmin_fit_sdk import Decoder, Stream

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SYNTHETIC = FIXTURES / "synthetic"
TRUTH_FILES = sorted(SYNTHETIC.rglob("*.truth.json"))
NAMES = [str(p.relative_to(SYNTHETIC)).removesuffix(".truth.json") for p in TRUTH_FILES]
RD_KEYS = ("stance_time_balance", "stance_time")

# fitparse 1.2.0 calls datetime.utcfromtimestamp for every timestamp; that noise is not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:datetime.datetime.utcfromtimestamp:DeprecationWarning"
)


def _load_generator() -> ModuleType:
    """Import fixtures/make_synthetic.py by path (fixtures/ is not part of the package)."""
    spec = importlib.util.spec_from_file_location("make_synthetic", FIXTURES / "make_synthetic.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@cache
def truth(name: str) -> dict[str, Any]:
    return json.loads((SYNTHETIC / f"{name}.truth.json").read_text(encoding="utf-8"))


@cache
def sdk(name: str) -> dict[str, list[dict[str, Any]]]:
    """Decode with garmin-fit-sdk; HR merging off so records are exactly what was written."""
    decoder = Decoder(Stream.from_file(str(SYNTHETIC / f"{name}.fit")))
    messages, errors = decoder.read(merge_heart_rates=False)
    assert errors == []
    return messages


@cache
def fp(name: str) -> dict[str, list[dict[str, Any]]]:
    """Decode with fitparse into {message name: [ {field: value} ]}; absent fields are missing."""
    out: dict[str, list[dict[str, Any]]] = {}
    ff = fitparse.FitFile(str(SYNTHETIC / f"{name}.fit"), check_crc=True)
    for m in ff.get_messages():
        out.setdefault(m.name, []).append({f.name: f.value for f in m.fields})
    return out


def _epoch(ts: datetime) -> float:
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()


def _valid(values: list[Any]) -> list[float]:
    return [v for v in values if v is not None and v != 0]


def _time_weighted_balance(records: list[dict[str, Any]], events: list[dict[str, Any]]) -> float:
    """Time weight = timer-running seconds to the next record; 0 where the timer stops."""
    stops = {
        _epoch(e["timestamp"])
        for e in events
        if e.get("event") == "timer" and e.get("event_type") == "stop_all"
    }
    ts = [_epoch(r["timestamp"]) for r in records]
    num = den = 0.0
    for i, r in enumerate(records):
        b = r.get("stance_time_balance")
        if b is None or b == 0:
            continue
        w = 1.0 if i == len(records) - 1 else (0.0 if ts[i] in stops else ts[i + 1] - ts[i])
        num += b * w
        den += w
    return num / den


def test_fixture_set_is_complete() -> None:
    expected = {
        "steady_left_51_2",
        "walk_break_and_stop",
        "sensor_dropout",
        "treadmill_right_48_5",
        "trail_hills",
        "walking_with_rd",
        "wrist_only_run",
    }
    assert expected <= set(NAMES)
    assert len([n for n in NAMES if n.startswith("season/")]) == 22


@pytest.mark.parametrize("name", NAMES)
def test_file_is_valid_fit_and_small(name: str) -> None:
    path = SYNTHETIC / f"{name}.fit"
    assert path.stat().st_size < 150_000
    assert Decoder(Stream.from_file(str(path))).check_integrity()


@pytest.mark.parametrize("name", NAMES)
def test_records_sport_and_session(name: str) -> None:
    t = truth(name)
    for decoded in (sdk(name), fp(name)):
        records = decoded["record"] if "record" in decoded else decoded["record_mesgs"]
        sessions = decoded["session"] if "session" in decoded else decoded["session_mesgs"]
        laps = decoded["lap"] if "lap" in decoded else decoded["lap_mesgs"]
        assert len(records) == t["n_records"]
        assert len(sessions) == 1
        assert sessions[0]["sport"] == t["sport"]
        assert sessions[0]["sub_sport"] == t["sub_sport"]
        assert sessions[0]["total_distance"] == pytest.approx(t["distance_m"], abs=1e-9)
        assert records[-1]["distance"] == pytest.approx(t["distance_m"], abs=1e-9)
        assert sessions[0]["total_timer_time"] == t["total_timer_time_s"]
        assert sessions[0]["total_elapsed_time"] == t["total_elapsed_time_s"]
        assert len(laps) == len(t["laps"])
        for lap, lap_truth in zip(laps, t["laps"], strict=True):
            assert lap["total_distance"] == pytest.approx(lap_truth["distance_m"], abs=1e-9)
        start = datetime.fromisoformat(t["start_time_utc"].replace("Z", "+00:00"))
        assert _epoch(records[0]["timestamp"]) == start.timestamp()
        assert _epoch(sessions[0]["start_time"]) == start.timestamp()


@pytest.mark.parametrize("name", NAMES)
def test_balance_gct_and_cadence_match_truth(name: str) -> None:
    t = truth(name)
    for decoded, rec_key, ev_key, ses_key in (
        (sdk(name), "record_mesgs", "event_mesgs", "session_mesgs"),
        (fp(name), "record", "event", "session"),
    ):
        records = decoded[rec_key]
        bal = _valid([r.get("stance_time_balance") for r in records])
        assert len(bal) == t["n_balance_valid"]
        session = decoded[ses_key][0]
        if not bal:
            assert t["balance_mean_valid"] is None
            assert session.get("avg_stance_time_balance") is None
            assert all(k not in r or r[k] is None for r in records for k in RD_KEYS)
            continue
        assert sum(bal) / len(bal) == pytest.approx(t["balance_mean_valid"], abs=1e-9)
        tw = _time_weighted_balance(records, decoded[ev_key])
        assert tw == pytest.approx(t["balance_time_weighted_mean"], abs=1e-9)
        assert abs(session["avg_stance_time_balance"] - tw) <= 0.01
        assert session["avg_stance_time_balance"] == t["session"]["avg_stance_time_balance"]

        gct = _valid([r.get("stance_time") for r in records])
        assert len(gct) == t["n_gct_valid"]
        assert sum(gct) / len(gct) == pytest.approx(t["gct_mean_valid_ms"], abs=1e-9)

        spm = [
            2 * (r["cadence"] + (r.get("fractional_cadence") or 0.0))
            for r in records
            if r.get("cadence") or r.get("fractional_cadence")
        ]
        assert len(spm) == t["n_cadence_nonzero"]
        assert sum(spm) / len(spm) == pytest.approx(t["cadence_mean_spm"], abs=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_invalid_and_absent_balance_counts(name: str) -> None:
    """fitparse keeps absent (not in definition) and invalid (0xFFFF -> None) apart."""
    t = truth(name)
    if "n_balance_absent" not in t:
        assert all("stance_time_balance" not in r for r in fp(name)["record"])
        return
    records = fp(name)["record"]
    absent = sum("stance_time_balance" not in r for r in records)
    invalid = sum("stance_time_balance" in r and r["stance_time_balance"] is None for r in records)
    zero = sum(r.get("stance_time_balance") == 0 for r in records)
    assert (absent, invalid, zero) == (
        t["n_balance_absent"],
        t["n_balance_invalid_0xffff"],
        t["n_balance_zero"],
    )
    # the SDK drops both absent and invalid values from the record dict
    sdk_missing = sum("stance_time_balance" not in r for r in sdk(name)["record_mesgs"])
    assert sdk_missing == absent + invalid


@pytest.mark.parametrize("name", NAMES)
def test_devices(name: str) -> None:
    t = truth(name)
    infos = sdk(name)["device_info_mesgs"]
    file_id = sdk(name)["file_id_mesgs"][0]
    watch = t["devices"][0]
    assert file_id["type"] == "activity"
    assert file_id["manufacturer"] == "garmin"
    assert (file_id["product"], file_id["serial_number"]) == (
        watch["product_id"],
        watch["serial_number"],
    )
    seen = {(d.get("product"), d.get("serial_number"), d.get("device_type")) for d in infos}
    for dev in t["devices"]:
        dtype = dev["antplus_device_type"]
        dtype = 120 if dtype == "heart_rate" else dtype
        assert (dev["product_id"], dev["serial_number"], dtype) in seen
    has_strap = any(d["product"] == "hrm_pro" for d in t["devices"])
    assert has_strap == any(d.get("garmin_product") == "hrm_pro" for d in infos)
    assert has_strap == (t["n_balance_valid"] > 0)


def test_season_shift() -> None:
    season = sorted(n for n in NAMES if n.startswith("season/"))
    starts = [truth(n)["start_time_utc"] for n in season]
    assert starts == sorted(starts)
    serials = {truth(n)["devices"][0]["serial_number"] for n in season}
    assert len(serials) == 1
    before = [truth(n)["balance_mean_valid"] for n in season[:10]]
    after = [truth(n)["balance_mean_valid"] for n in season[10:]]
    assert all(49.8 < b < 50.8 for b in before)
    assert all(51.4 < a < 52.4 for a in after)


def test_index_lists_every_file_with_its_hash() -> None:
    index = json.loads((SYNTHETIC / "index.json").read_text(encoding="utf-8"))
    listed = {e["file"]: e["sha256"] for e in index["files"]}
    assert set(listed) == {f"{n}.fit" for n in NAMES}
    for rel, digest in listed.items():
        assert hashlib.sha256((SYNTHETIC / rel).read_bytes()).hexdigest() == digest


def test_regeneration_is_byte_identical(tmp_path: Path) -> None:
    generator = _load_generator()
    written = generator.generate(tmp_path)
    committed = sorted(p.relative_to(SYNTHETIC) for p in SYNTHETIC.rglob("*") if p.is_file())
    regenerated = sorted(p.relative_to(tmp_path) for p in written)
    assert regenerated == committed
    for rel in regenerated:
        assert (tmp_path / rel).read_bytes() == (SYNTHETIC / rel).read_bytes(), rel
