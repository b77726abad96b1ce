"""Bulk ingestion: worker processes give exactly the serial result; batches commit durably."""

from __future__ import annotations

from pathlib import Path

from evenstride.ingest import Job, ingest_file, ingest_many, reprocess
from evenstride.store import open_store

SYNTHETIC = Path(__file__).resolve().parents[1] / "fixtures" / "synthetic"
FILES = sorted(SYNTHETIC.glob("*.fit")) + sorted(SYNTHETIC.glob("season/*.fit"))


def _jobs() -> list[Job]:
    return [Job(p.read_bytes(), file_name=p.name) for p in FILES]


def _snapshot(store) -> list[tuple]:
    return [
        (
            r["source_id"],
            r["session_index"],
            r["d"],
            r["cadence_median"],
            r["summary"]["watch_means"],
        )
        for r in store.list_runs()
    ]


def test_parallel_equals_serial_and_single_file_path(tmp_path: Path) -> None:
    with open_store(tmp_path / "a") as serial, open_store(tmp_path / "b") as parallel:
        one = ingest_many(serial, _jobs(), workers=1)
        two = ingest_many(parallel, _jobs(), workers=2)
        assert [r.status for r in one] == [r.status for r in two]
        expected = _snapshot(serial)
        assert _snapshot(parallel) == expected
        assert len(expected) == 22 + 6  # season + runs among the scenario files
    with open_store(tmp_path / "c") as single:
        for p in FILES:
            ingest_file(single, p.read_bytes(), file_name=p.name)
        assert _snapshot(single) == expected


def test_duplicates_and_failures_in_a_batch(tmp_path: Path) -> None:
    jobs = _jobs()[:3] + [Job(b"", file_name="empty.fit"), Job(None, error="cannot read: boom")]
    with open_store(tmp_path / "h") as store:
        first = ingest_many(store, jobs, workers=1)
        assert [r.status for r in first][-2:] == ["failed", "failed"]
        again = ingest_many(store, _jobs()[:3], workers=1)
        assert {r.status for r in again} == {"duplicate"}


def test_reprocess_in_parallel_rebuilds_the_same_runs(tmp_path: Path) -> None:
    with open_store(tmp_path / "h") as store:
        ingest_many(store, _jobs(), workers=1)
        before = _snapshot(store)
        results = reprocess(store, workers=2)
        assert len(results) == len(FILES)
        assert _snapshot(store) == before
