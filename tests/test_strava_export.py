"""Strava bulk export: activities.csv + activities/*.fit.gz|gpx|tcx[.gz] through `import`."""

from __future__ import annotations

import datetime as dt
import gzip
import inspect
import io
import math
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fake_strava import (
    FakeStrava,
    login,
    strava_fake_fixture,  # noqa: F401 - the `fake` fixture
    strava_keyring_fixture,  # noqa: F401 - the `strava_keyring` fixture
)

from evenstride.cli import import_cmd
from evenstride.connectors.base import RawItem
from evenstride.connectors.local_files import LocalFilesConnector
from evenstride.connectors.strava import auth, export
from evenstride.connectors.strava.sync import SyncOptions, sync
from evenstride.ingest import IngestResult
from evenstride.metrics.summary import NO_BALANCE_FLAG
from evenstride.store import Store, open_store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
START = dt.datetime(2026, 2, 1, 8, 0, tzinfo=dt.UTC)
FIT_START = dt.datetime(2024, 5, 12, 6, 15, tzinfo=dt.UTC)  # steady_left_51_2.fit
HEADER = (
    "Activity ID,Activity Date,Activity Name,Activity Type,Activity Description,Elapsed Time,"
    "Distance,Max Heart Rate,Relative Effort,Commute,Activity Private Note,Activity Gear,"
    "Filename,Athlete Weight,Bike Weight,Elapsed Time,Moving Time,Distance,Max Speed,"
    "Average Speed,Max Cadence,Average Cadence,Average Heart Rate,Calories,Total Steps,Media"
)


def _csv_row(aid: int, kind: str, filename: str, seconds: int, metres: float) -> str:
    return (
        f'{aid},"Feb 1, 2026, 8:00:00 AM",Morning {kind},{kind},,{seconds},{metres / 1000:.2f},'
        f",,false,,,{filename},,,{seconds}.0,{seconds}.0,{metres},4.1,3.0,95,85,150,400,,"
    )


def _points(n: int, spacing_m: float = 3.0) -> list[tuple[dt.datetime, float, float]]:
    lat0, lon0 = 60.17, 24.94
    dlat = spacing_m / 111_195.0
    return [(START + dt.timedelta(seconds=i), lat0 + i * dlat, lon0) for i in range(n)]


def make_gpx(n: int = 1800, cad: int = 85, start: dt.datetime = START) -> bytes:
    pts = "".join(
        f'<trkpt lat="{lat:.7f}" lon="{lon:.7f}"><ele>12.0</ele>'
        f"<time>{(t - START + start).strftime('%Y-%m-%dT%H:%M:%SZ')}</time><extensions>"
        f"<gpxtpx:TrackPointExtension><gpxtpx:hr>{150 + i % 3}</gpxtpx:hr>"
        f"<gpxtpx:cad>{cad + (i % 2)}</gpxtpx:cad></gpxtpx:TrackPointExtension></extensions>"
        "</trkpt>"
        for i, (t, lat, lon) in enumerate(_points(n))
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><gpx creator="Garmin Forerunner 255" '
        'version="1.1" xmlns="http://www.topografix.com/GPX/1/1" '
        'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">'
        f"<trk><name>Run</name><type>running</type><trkseg>{pts}</trkseg></trk></gpx>"
    ).encode()


def make_tcx(n: int = 1800, cad: int = 86) -> bytes:
    pts = "".join(
        f"<Trackpoint><Time>{t.strftime('%Y-%m-%dT%H:%M:%S.000Z')}</Time><Position>"
        f"<LatitudeDegrees>{lat:.7f}</LatitudeDegrees><LongitudeDegrees>{lon:.7f}"
        f"</LongitudeDegrees></Position><AltitudeMeters>30.0</AltitudeMeters>"
        f"<DistanceMeters>{i * 3.0:.1f}</DistanceMeters><HeartRateBpm><Value>148</Value>"
        f"</HeartRateBpm><Extensions><ns3:TPX><ns3:Speed>3.0</ns3:Speed>"
        f"<ns3:RunCadence>{cad}</ns3:RunCadence></ns3:TPX></Extensions></Trackpoint>"
        for i, (t, lat, lon) in enumerate(_points(n))
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><TrainingCenterDatabase '
        'xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2" '
        'xmlns:ns3="http://www.garmin.com/xmlschemas/ActivityExtension/v2">'
        f'<Activities><Activity Sport="Running"><Id>{START:%Y-%m-%dT%H:%M:%SZ}</Id>'
        f'<Lap StartTime="{START:%Y-%m-%dT%H:%M:%SZ}"><Track>{pts}</Track></Lap>'
        "<Creator><Name>Forerunner 945</Name></Creator></Activity></Activities>"
        "</TrainingCenterDatabase>"
    ).encode()


@pytest.fixture
def export_zip(tmp_path: Path) -> Path:
    fit = (FIXTURES / "synthetic" / "steady_left_51_2.fit").read_bytes()
    rows = [
        _csv_row(1001, "Run", "activities/1001.gpx", 1799, 5400.0),
        _csv_row(1002, "Trail Run", "activities/1002.tcx.gz", 1799, 5397.0),
        _csv_row(1003, "Run", "activities/1003.fit.gz", 1799, 5383.4),
        _csv_row(1004, "Ride", "activities/1004.gpx", 1799, 15000.0),
        _csv_row(1005, "Run", "", 1800, 5000.0),  # manual: no file
        _csv_row(1006, "Run", "activities/1006.gpx.gz", 1799, 5400.0),
        _csv_row(1007, "Run", "activities/1007.gpx", 1799, 5400.0),
    ]
    path = tmp_path / "export_7777001.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("activities.csv", "\n".join([HEADER, *rows]) + "\n")
        zf.writestr("profile.csv", "Athlete ID\n7777001\n")
        zf.writestr("activities/1001.gpx", make_gpx(start=FIT_START))  # same run as 1003
        zf.writestr("activities/1002.tcx.gz", gzip.compress(make_tcx()))
        zf.writestr("activities/1003.fit.gz", gzip.compress(fit))
        zf.writestr("activities/1004.gpx", make_gpx(60))
        later = START + dt.timedelta(days=1)
        zf.writestr("activities/1006.gpx.gz", gzip.compress(make_gpx(cad=172, start=later)))
        zf.writestr("activities/1007.gpx", b"<gpx><trk><trkseg><trkpt")  # truncated
        zf.writestr("media/x.jpg", b"\xff\xd8")
    return path


def ingest(store: Store, item: RawItem, athlete: str = "default") -> IngestResult:
    """What `import` does with each item once it dispatches GPX/TCX (see the report)."""
    if item.kind in ("gpx", "tcx"):
        return export.ingest_track(store, item, athlete)
    return import_cmd.ingest_item(store, item, athlete)


def by_id(store: Store) -> dict[str, dict[str, Any]]:
    return {a["source_id"]: a for a in store.list_activities("default")}


def test_items_of_a_strava_export(export_zip: Path) -> None:
    items = list(LocalFilesConnector().items(paths=[export_zip]))
    got = {i.name.split(":")[-1]: (i.kind, i.source, i.source_id) for i in items}
    assert got == {
        "activities/1001.gpx": ("gpx", "strava", "1001"),
        "activities/1002.tcx.gz": ("tcx", "strava", "1002"),
        "activities/1003.fit.gz": ("fit", "file", None),  # the normal FIT path
        "activities/1006.gpx.gz": ("gpx", "strava", "1006"),
        "activities/1007.gpx": ("gpx", "strava", "1007"),
    }  # the ride and the manual run have nothing to import
    fit = next(i for i in items if i.kind == "fit")
    assert fit.extra == {"strava_activity_id": "1003"}
    gpx = next(i for i in items if i.source_id == "1002")
    assert gpx.extra["strava_export"]["sub_sport"] == "trail"
    assert gpx.extra["strava_export"]["distance_m"] == 5397.0  # the metres column, not km
    assert gpx.extra["strava_export"]["elapsed_s"] == 1799


def test_plain_zips_are_unchanged(tmp_path: Path) -> None:
    fit = (FIXTURES / "synthetic" / "steady_left_51_2.fit").read_bytes()
    path = tmp_path / "garmin.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.fit", fit)
        zf.writestr("b.gpx", make_gpx(10))
    items = list(LocalFilesConnector().items(paths=[path]))
    assert [(i.name, i.kind, i.source, i.extra) for i in items] == [
        (f"{path}:a.fit", "fit", "file", {})
    ]
    assert items[0].load() == fit


def test_import_export(export_zip: Path, tmp_path: Path) -> None:
    with open_store(tmp_path / "home") as store:
        results = {
            i.name.split("/")[-1]: ingest(store, i)
            for i in LocalFilesConnector().items(paths=[export_zip])
        }
        assert {k: r.status for k, r in results.items()} == {
            "1001.gpx": "imported",
            "1002.tcx.gz": "imported",
            "1003.fit.gz": "imported",
            "1006.gpx.gz": "imported",
            "1007.gpx": "failed",
        }
        assert "readable GPX" in results["1007.gpx"].reason
        acts = by_id(store)
        fit_act = next(a for a in acts.values() if a["source"] == "file")
        assert fit_act["extra"]["strava_activity_id"] == "1003"
        runs = {r["source_id"]: r for r in store.list_runs("default")}
        # FIT original: GCT balance; it wins over the GPX/TCX copies of the same run
        assert runs[fit_act["source_id"]]["summary"]["balance_median"] is not None
        assert acts["1001"]["extra"]["duplicate_of"] == fit_act["id"]
        assert "1001" not in runs
        assert acts["1002"]["sub_sport"] == "trail"
        assert 170 <= runs["1002"]["summary"]["cadence_median"] <= 174
        gpx = runs["1006"]["summary"]
        assert 171 <= gpx["cadence_median"] <= 173  # already steps/min: not doubled
        assert gpx["balance_median"] is None and NO_BALANCE_FLAG in gpx["flags"]
        assert acts["1006"]["extra"]["track"]["cadence_scale"] == "already_spm"
        assert acts["1006"]["device"] == "Garmin Forerunner 255"
        assert store.archive.get(acts["1006"]["sha256"]).startswith(b"<?xml")  # raw, untouched
        assert acts["1007"]["status"] == "failed"
        # twice: nothing new
        again = [ingest(store, i) for i in LocalFilesConnector().items(paths=[export_zip])]
        assert {r.status for r in again} <= {"duplicate", "failed"}


def test_gpx_and_tcx_parsing() -> None:
    gpx = export.parse_track(make_gpx(600), "gpx")
    assert gpx.cadence_scale == "doubled" and gpx.records["cadence_spm"].iloc[0] == 170
    assert math.isclose(gpx.distance_m, 599 * 3.0, rel_tol=0.01)
    assert 2.9 <= gpx.records["speed_mps"].median() <= 3.1
    assert gpx.records["heart_rate_bpm"].iloc[0] == 150 and gpx.elapsed_s == 599
    assert str(gpx.records["timestamp"].dt.tz) == "UTC"
    assert "moving" not in gpx.records
    tcx = export.parse_track(make_tcx(600), "tcx")
    assert tcx.records["cadence_spm"].iloc[0] == 172 and tcx.device == "Forerunner 945"
    assert tcx.distance_m == 599 * 3.0 and tcx.records["speed_mps"].iloc[3] == 3.0
    with pytest.raises(ValueError, match="no track points"):
        export.parse_track(b"<gpx/>", "gpx")


def test_zip_bomb_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "MAX_TRACK_BYTES", 1000)
    with pytest.raises(ValueError, match="more than 1000"):
        export._bounded(gzip.compress(b"x" * 5000), "a.gpx.gz")


@pytest.mark.usefixtures("strava_keyring")
def test_export_then_api_sync_is_the_same_activity(
    export_zip: Path, tmp_path: Path, fake: FakeStrava
) -> None:
    login(fake)
    fake.add_run(1006, START + dt.timedelta(days=1), seconds=1799)
    with open_store(tmp_path / "home") as store:
        for item in LocalFilesConnector().items(paths=[export_zip]):
            ingest(store, item)
        summary = sync(auth.open_client("default"), store, SyncOptions(since=START.date()))
    assert summary.already == 1 and summary.imported == 0
    assert not [r for r in fake.api_calls() if r["path"].endswith("/streams")]


def _import_dispatches() -> bool:
    return "ingest_track" in inspect.getsource(import_cmd)


@pytest.mark.skipif(not _import_dispatches(), reason="import_cmd does not dispatch GPX/TCX yet")
def test_import_command_with_a_strava_export(export_zip: Path, tmp_path: Path) -> None:
    import click

    @click.group()
    @click.pass_context
    def root(ctx: click.Context) -> None:
        ctx.obj = {"home": tmp_path / "home"}

    root.add_command(import_cmd.import_cmd)
    result = CliRunner().invoke(root, ["import", str(export_zip)])
    assert result.exit_code == 1  # the truncated GPX
    # FIT originals go first, so the GPX copy of the FIT run (1001 ~ 1003) is a duplicate
    assert "3 imported, 1 already stored, 1 failed" in result.output
    with open_store(tmp_path / "home") as store:
        runs = {r["source_id"]: r for r in store.list_runs("default")}
        acts = {a["source_id"]: a for a in store.list_activities("default")}
    fit_run = next(a for a in acts.values() if a["source"] == "file" and a["status"] == "ok")
    assert acts["1001"]["extra"]["duplicate_of"] == fit_run["id"]
    assert "1001" not in runs  # the run counts once, from its FIT file


def test_csv_tolerates_odd_input() -> None:
    assert export.read_activities_csv(b"") == {}
    assert export.read_activities_csv(b"foo,bar\n1,2\n") == {}
    rows = export.read_activities_csv(
        (
            "\ufeff" + HEADER + "\n" + _csv_row(9, "Virtual Run", "activities/9.tcx", 60, 1.5e4)
        ).encode()
    )
    assert rows["activities/9.tcx"].sub_sport == "virtual_activity"
    assert rows["activities/9.tcx"].distance_m == 15000.0
    assert isinstance(io, object)
