"""Every value read_fit returns equals what fitparse and garmin-fit-sdk decode (test-only oracles).

Parametrised over every file in ../shared/fit-samples (skipped when absent) and in fixtures/.

Known oracle disagreements (checked by `test_oracles_agree`, so a new one fails):

* broken/coros_cycling_misaligned_fields.fit: fitparse stops after 1,785 of 11,272 records ("Invalid
  field size 1 for type 'uint32'"); garmin-fit-sdk (and fitdecode) skip the bad field and read the
  whole file, so the SDK is the reference there.
* broken/fr70_compressed_speed_distance.fit: garmin-fit-sdk stops at the first compressed-timestamp
  header ("not currently supported"), before any record; fitparse reads all 755 records, so
  fitparse is the reference there.
* fitparse 1.2.0 carries the 2020 FIT profile: enum values added since (manufacturer coros=294,
  newer garmin_product ids, antplus_device_type shifting, ...) stay numbers in fitparse and are
  names in the SDK; newer fields (cycle_length16, enhanced_respiration_rate, sport_profile_name,
  ...) are only in the SDK. For those the SDK is the reference.
* Sub-fields: the SDK keeps the main field next to the sub-field it expands to (product and
  garmin_product, avg_cadence and avg_running_cadence); fitparse only has the sub-field. Dicts are
  therefore compared on the keys both sides have.
* With merge_heart_rates=False the SDK's record heart_rate equals fitparse's everywhere (with the
  default True it differs in 408 records of fr920xt_triathlon_chained4.fit).
"""

from __future__ import annotations

from pathlib import Path

import oracles
import pytest
from conftest import SHARED_SAMPLES, fixture_files, sample_id, shared_sample_files

from evenstride.metrics.fit import FitReadError, read_fit

ALL_FILES = shared_sample_files() + fixture_files()
FILE_PARAMS = [pytest.param(p, id=sample_id(p)) for p in ALL_FILES]
LIBRARIES = tuple(oracles.ORACLES)

# Files on which one oracle legitimately reads less than the other (see module docstring).
KNOWN_SHORT_READS = {
    "broken/coros_cycling_misaligned_fields.fit": "fitparse",
    "broken/fr70_compressed_speed_distance.fit": "garmin-fit-sdk",
}
# Files that are damaged: the reader must flag them (partial=True and a warning).
DAMAGED = {
    "broken/activity-unexpected-eof.fit": "truncated",
    "broken/activity-settings-corruptheader.fit": "second segment has a corrupt header",
    "broken/activity-settings-nodata.fit": "second segment header without data",
    "broken/strava_android_undefined_local_msg.fit": "undefined local message",
    "broken/elemnt_roam_unterminated.fit": "last message crosses the declared data size",
}
# Files no oracle can read at all: the reader must raise FitReadError (or, for the unfinalized
# recording, may recover: then it must match the oracles on a copy with data_size patched).
UNREADABLE = {
    "broken/zero_bytes.fit": None,
    "broken/header_datasize_zero_unfinalized.fit": "recoverable",
}


def _key(path: Path) -> str:
    """'broken/x.fit' for ../shared/fit-samples/broken/x.fit and fixtures/samples/broken/x.fit."""
    return f"{path.parent.name}/{path.name}"


def _oracles(path: Path) -> dict[str, oracles.Decoded]:
    return {name: decode(path) for name, decode in oracles.ORACLES.items()}


def _reference(path: Path) -> oracles.Decoded:
    """The oracle that reads furthest (most records; on a tie fitparse, the design card's)."""
    decoded = _oracles(path)
    return max(decoded.values(), key=lambda d: (len(d.records), d.library == "fitparse"))


def _profile_gap(fitparse_value, sdk_value) -> bool:
    """fitparse's 2020 profile has no name for this enum value, the SDK's has."""
    return isinstance(fitparse_value, float) and isinstance(sdk_value, str)


def _summary_lists(decoded, kind: str) -> list[dict]:
    return getattr(decoded, kind)


# --------------------------------------------------------------------------- oracle vs oracle


@pytest.mark.parametrize("path", FILE_PARAMS)
def test_oracles_agree(path):
    """fitparse and garmin-fit-sdk agree on every record field and summary value both decode."""
    fp, sdk = oracles.decode_fitparse(path), oracles.decode_sdk(path)
    name = sample_id(path)
    shorter = KNOWN_SHORT_READS.get(_key(path))
    if shorter is None:
        assert len(fp.records) == len(sdk.records), (
            f"{name}: fitparse {len(fp.records)} records ({fp.error}), "
            f"garmin-fit-sdk {len(sdk.records)} ({sdk.error})"
        )
    else:
        short, long_ = (fp, sdk) if shorter == "fitparse" else (sdk, fp)
        assert short.error is not None and len(short.records) < len(long_.records)
        assert long_.error is None
    problems = oracles.frame_mismatches(fp.records, sdk.records, rows=None)
    assert not problems, f"{name}: fitparse vs garmin-fit-sdk records: {problems}"
    for col in oracles.RUNNING_DYNAMICS_FIELDS:
        assert col in fp.records.columns and col in sdk.records.columns
    for kind in ("sessions", "laps", "file_id", "devices"):
        a, b = getattr(fp, kind), getattr(sdk, kind)
        if shorter is None and fp.complete and sdk.complete:
            assert len(a) == len(b), f"{name}: {kind} count {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            bad = [
                line
                for line in oracles.dict_mismatches(x, y)
                if not _profile_gap(x[line.split(":")[0]], y[line.split(":")[0]])
            ]
            assert not bad, f"{name}: {kind}[{i}]: {bad}"
            for key in ("sport", "sub_sport"):
                if key in x and key in y:
                    assert x[key] == y[key]


# --------------------------------------------------------------------------- reader vs oracles


def _read_or_none(path: Path):
    try:
        return read_fit(path)
    except FitReadError:
        return None


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("path", FILE_PARAMS)
def test_reader_records_match_oracle(path, library):
    name = sample_id(path)
    oracle = oracles.ORACLES[library](path)
    if not oracle.read_anything:
        pytest.skip(f"{library} reads nothing from {name}: {oracle.error}")
    if len(oracle.records) == 0 and KNOWN_SHORT_READS.get(_key(path)) == library:
        pytest.skip(f"{library} cannot decode the records of {name}: {oracle.error}")
    ff = read_fit(path)
    reference = _reference(path)
    n_reader, n_oracle = len(ff.records), len(oracle.records)
    if KNOWN_SHORT_READS.get(_key(path)) == library:
        # this oracle stops early by its own limitation: compare its prefix only
        assert n_reader >= n_oracle, f"{name}: reader {n_reader} records, {library} {n_oracle}"
    else:
        assert n_reader == len(reference.records), (
            f"{name}: reader returned {n_reader} records, {reference.library} "
            f"reads {len(reference.records)} ({reference.error})"
        )
    assert str(ff.records["timestamp"].dtype) == "datetime64[ns, UTC]"
    other = oracles.decode_sdk(path) if library == "fitparse" else oracles.decode_fitparse(path)
    problems = []
    expected = oracle.records
    if library == "fitparse" and "compressed_speed_distance" in expected.columns:
        # FR70: fitparse expands compressed_speed_distance into speed but does not expand that
        # speed further into enhanced_speed (the SDK's profile would: speed's own component); the
        # reader does, so its enhanced_speed must equal fitparse's speed.
        expected = expected.assign(enhanced_speed=expected["speed"])
    for col in ff.records.columns:
        if col not in expected.columns and col in other.records.columns:
            continue  # a field of the newer profile that only the other oracle decodes
        problems += oracles.frame_mismatches(ff.records, expected, columns=[col], rows=None)
    assert not problems, f"{name}: reader vs {library}: {problems}"


def _reader_summaries(ff, kind: str) -> list[dict]:
    if kind == "file_id":
        return [ff.file_id] if ff.file_id else []
    return getattr(ff, kind)


@pytest.mark.parametrize("kind", ["sessions", "laps", "file_id", "devices"])
@pytest.mark.parametrize("path", FILE_PARAMS)
def test_reader_summaries_match_oracles(path, kind):
    """Session/lap/file_id/device_info values equal the oracles' (sport/sub_sport included)."""
    name = sample_id(path)
    decoded = _oracles(path)
    if not any(d.read_anything for d in decoded.values()):
        pytest.skip(f"no oracle reads anything from {name}")
    ff = read_fit(path)
    ours = _reader_summaries(ff, kind)
    fp, sdk = (_summary_lists(decoded[lib], kind) for lib in LIBRARIES)
    reference = max((fp, sdk), key=len)
    if kind == "file_id":
        ours_n, ref_n = min(len(ours), 1), min(len(reference), 1)
    else:
        ours_n, ref_n = len(ours), len(reference)
    assert ours_n == ref_n, f"{name}: reader has {ours_n} {kind}, oracles {len(fp)}/{len(sdk)}"
    problems = []
    for i, mine in enumerate(ours[:ref_n]):
        a = fp[i] if i < len(fp) else {}
        b = sdk[i] if i < len(sdk) else {}
        for key, value in mine.items():
            if key not in a and key not in b:
                problems.append(f"{kind}[{i}].{key}={value!r}: decoded by neither oracle")
                continue
            for lib, theirs in (("fitparse", a), ("garmin-fit-sdk", b)):
                if key not in theirs:
                    continue
                if lib == "fitparse" and key in b and _profile_gap(theirs[key], b[key]):
                    continue  # fitparse's older profile; the SDK check covers this key
                if not oracles.values_equal(value, theirs[key]):
                    problems.append(f"{kind}[{i}].{key}: reader {value!r} != {lib} {theirs[key]!r}")
    assert not problems, f"{name}: {problems[:20]}"


@pytest.mark.parametrize("path", FILE_PARAMS)
def test_reader_runs_sports(path):
    """runs() are exactly the running sessions, with the oracles' sport and sub_sport strings."""
    name = sample_id(path)
    sdk, fp = oracles.decode_sdk(path), oracles.decode_fitparse(path)
    sessions = max((sdk.sessions, fp.sessions), key=len)
    if not any(d.read_anything for d in (sdk, fp)):
        pytest.skip(f"no oracle reads anything from {name}")
    ff = read_fit(path)
    expected = [
        (i, s.get("sport"), s.get("sub_sport"))
        for i, s in enumerate(sessions)
        if s.get("sport") == "running"
    ]
    got = [(r.index, r.sport, r.sub_sport) for r in ff.runs()]
    # a session without sub_sport is reported as "generic"
    expected = [(i, sp, sub if sub is not None else "generic") for i, sp, sub in expected]
    if not sessions and len(ff.records):
        pytest.skip(f"{name} has no session message: runs() from records is the reader's design")
    assert got == expected, f"{name}: runs {got} != running sessions {expected}"


# --------------------------------------------------------------------------- damaged files


def _shared(name: str) -> Path:
    return SHARED_SAMPLES / name


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_damaged_file_returns_flagged_prefix(shared_samples, name):
    path = _shared(name)
    reference = _reference(path)
    assert reference.error is not None  # the oracles do see the damage
    ff = read_fit(path)
    assert ff.partial, f"{name}: damaged ({DAMAGED[name]}) but partial=False"
    assert ff.warnings, f"{name}: damaged ({DAMAGED[name]}) but no warning"
    # the readable prefix: every complete record before the damage (both oracles agree on it)
    assert len(ff.records) == len(reference.records), (
        f"{name}: reader {len(ff.records)} records, {reference.library} {len(reference.records)}"
    )
    problems = oracles.frame_mismatches(ff.records, reference.records)
    assert not problems, f"{name}: {problems}"


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_unreadable_file(shared_samples, name, tmp_path):
    path = _shared(name)
    for decoded in _oracles(path).values():
        assert not decoded.read_anything
    try:
        ff = read_fit(path)
    except FitReadError as exc:
        assert exc.reason and "\n" not in exc.reason
        return
    assert UNREADABLE[name] == "recoverable", f"{name}: expected FitReadError"
    assert ff.partial and ff.warnings
    data = path.read_bytes()
    patched = oracles.with_data_size(data, len(data) - data[0])
    copy = tmp_path / path.name
    copy.write_bytes(patched)
    reference = oracles.decode_fitparse(copy)
    assert len(reference.records) > 0
    assert len(ff.records) <= len(reference.records)
    problems = oracles.frame_mismatches(ff.records, reference.records)
    assert not problems, f"{name} (recovered): {problems}"


@pytest.mark.parametrize(
    "name", ["broken/activity-filecrc.fit", "broken/activity-activity-filecrc.fit"]
)
def test_bad_crc_is_reported(shared_samples, name):
    """A wrong file CRC hides no data, but the reader says so."""
    ff = read_fit(_shared(name))
    assert ff.warnings, f"{name}: file CRC is wrong but no warning"
    assert len(ff.records) == len(_reference(_shared(name)).records)
    ff_nocheck = read_fit(_shared(name), check_crc=False)
    assert len(ff_nocheck.records) == len(ff.records)


def test_fixture_files_are_found(fixtures_dir):
    """The parametrisation sees the project's own fixtures (guards against a silent empty glob)."""
    if not any(fixtures_dir.rglob("*.fit")):
        pytest.skip("fixtures/ has no .fit files yet")
    ids = {sample_id(p) for p in fixture_files()}
    assert ids and all(i.startswith("fixtures/") for i in ids)
