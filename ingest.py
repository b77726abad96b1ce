"""The one path every raw file takes: archive untouched -> decode -> summarise -> store.

Connectors (Garmin, Strava, local files) hand raw bytes to `ingest_file`; it does no network I/O.
The raw bytes are archived before anything else, so a decoder bug or a crash never loses data and
`reprocess` can recompute every number later. Activity and runs are written in one transaction.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from evenstride.analysis_helper import (
    ForkedHelper,
    HelperProcess,
    helper_wanted,
    shared_process,
    shared_running,
)
from evenstride.metrics.fit import FitFile, FitReadError, Run, read_fit
from evenstride.metrics.fit.sensors import balance_sensor, device_name, sensors
from evenstride.metrics.summary import summarise_fit_run, summarise_run
from evenstride.metrics.weights import watch_means
from evenstride.store import Store

log = logging.getLogger(__name__)

# Watch session fields kept beside our own numbers (the watch is the reference we check against).
WATCH_FIELDS = (
    "avg_stance_time_balance",
    "avg_stance_time",
    "avg_running_cadence",
    "avg_fractional_cadence",
    "avg_vertical_oscillation",
    "avg_vertical_ratio",
    "avg_step_length",
    "avg_heart_rate",
    "enhanced_avg_speed",
    "total_ascent",
)
MEAN_COLUMNS = (
    "speed_mps",
    "heart_rate_bpm",
    "cadence_spm",
    "gct_ms",
    "gct_balance_pct",
    "vertical_oscillation_mm",
    "vertical_ratio_pct",
    "step_length_mm",
    "power_w",
)


@dataclass
class IngestResult:
    """What happened to one file."""

    status: str  # imported | duplicate | partial | failed
    sha256: str
    activity_id: int | None = None
    reason: str | None = None
    runs: int = 0
    file_name: str | None = None
    warnings: list[str] = field(default_factory=list)
    sport: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _finite(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def run_row(run: Run, sensor: str | None) -> dict[str, Any]:
    """The stored form of one running session: headline means plus the full clean summary."""
    values = watch_means(run.seconds, run.timer_intervals, [run.columns[c] for c in MEAN_COLUMNS])
    means = {c: _finite(m) for c, m in zip(MEAN_COLUMNS, values, strict=True)}
    sensor = sensor if means["gct_balance_pct"] is not None else None
    clean = summarise_fit_run(run, sensor=sensor).to_dict()
    watch = {k: run.session[k] for k in WATCH_FIELDS if k in run.session}
    return {
        "session_index": run.index,
        "start_time": run.start_time,
        "sport": run.sport,
        "sub_sport": run.sub_sport,
        "sensor": sensor,
        "summary": {
            **clean,
            "elapsed_s": run.elapsed_s,
            "timer_s": run.timer_s,
            "records": len(run.columns["timestamp"]),
            "balance_records": int(np.isfinite(run.columns["gct_balance_pct"]).sum()),
            "watch_means": means,  # our means, weighted as the watch averages (metrics.weights)
            "watch": watch,  # the watch's own session values, for comparison
        },
    }


def _activity_fields(ff: FitFile, runs: list[Run]) -> dict[str, Any]:
    main = runs[0].session if runs else (ff.sessions[0] if ff.sessions else {})
    start = main.get("start_time")
    if not isinstance(start, datetime):
        start = ff.file_id.get("time_created")
    return {
        "start_time": start if isinstance(start, datetime) else None,
        "duration_s": sum(r.elapsed_s for r in runs) if runs else main.get("total_elapsed_time"),
        "distance_m": sum(r.distance_m or 0 for r in runs) if runs else main.get("total_distance"),
        "sport": "running" if runs else main.get("sport"),
        "sub_sport": runs[0].sub_sport if runs else main.get("sub_sport"),
        "device": device_name(ff.devices, ff.file_id),
        "sensors": sensors(ff.devices),
    }


def ingest_file(
    store: Store,
    data: bytes,
    *,
    source: str = "file",
    source_id: str | None = None,
    athlete: str = "default",
    file_name: str | None = None,
    extra: dict[str, Any] | None = None,
    force: bool = False,
) -> IngestResult:
    """Archive, decode and store one FIT file. Idempotent on (athlete, source, id) and on content."""
    job = Job(data, source=source, source_id=source_id, file_name=file_name, extra=extra)
    prepared = _prepare(store, job, athlete, force)
    if isinstance(prepared, IngestResult):
        return prepared
    return store_analysis(
        store, analyse(data, label=file_name or prepared), prepared, source,
        source_id or prepared, athlete, file_name, extra,
    )  # fmt: skip


@dataclass
class Analysis:
    """Everything decoded and summarised from one file: pure data, picklable across processes."""

    fields: dict[str, Any] | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    partial: bool = False
    warnings: list[str] = field(default_factory=list)
    failure: str | None = None


def analyse(data: bytes, *, label: str = "") -> Analysis:
    """Decode and summarise one FIT file (no I/O, so it can run in a worker process)."""
    try:
        ff = read_fit(data)
        runs = ff.runs()
        fields = _activity_fields(ff, runs)
        sensor = balance_sensor(fields["sensors"])
        rows = [run_row(r, sensor) for r in runs]
    except FitReadError as exc:
        return Analysis(failure=exc.reason)
    except Exception as exc:  # noqa: BLE001 - one odd file must not stop an import or a sync
        log.exception("unexpected error decoding %s", label)
        return Analysis(
            failure=f"could not be processed ({type(exc).__name__}: {exc}); raw file kept"
        )
    return Analysis(fields, rows, ff.partial, list(ff.warnings))


def store_analysis(
    store: Store,
    result: Analysis,
    sha: str,
    source: str,
    source_id: str,
    athlete: str,
    file_name: str | None,
    extra: dict[str, Any] | None,
) -> IngestResult:
    """Write one analysed file (activity + runs) in one transaction."""
    common = {"source": source, "source_id": source_id, "sha256": sha, "file_name": file_name}
    if result.failure is not None:
        return _record_failure(store, athlete, common, result.failure, extra)
    fields, rows = result.fields or {}, result.rows
    status = "partial" if result.partial else "ok"
    reason = "; ".join(result.warnings) if result.partial else None
    info = dict(extra or {})
    if result.warnings:
        info["warnings"] = result.warnings
    with store.transaction():
        aid = store.upsert_activity(
            athlete, **common, **fields, status=status, reason=reason, extra=info or None
        )
        store.replace_runs(aid, rows)
        if rows:
            _supersede_stream_twins(store, athlete, aid, fields["start_time"], fields["duration_s"])
    return IngestResult(
        "partial" if result.partial else "imported",
        sha,
        aid,
        reason=reason,
        runs=len(rows),
        file_name=file_name,
        warnings=result.warnings,
        sport=fields["sport"],
    )


TWIN_START_S = 120.0  # a run synced from two platforms starts within this many seconds ...
TWIN_DURATION_FRACTION = 0.05  # ... and lasts within 5 % (at least 60 s) of the other


def _same_run_candidates(
    store: Store,
    athlete: str,
    start,
    duration_s: float | None,
    sources: tuple[str, ...] | None = None,
) -> list[dict[str, Any]]:
    """Stored activities that look like the same run (start within 2 min, duration within 5 %),
    only from `sources` when given (filtered in the query, which uses the start-time index)."""
    if start is None:
        return []
    if not isinstance(start, datetime):  # pd.Timestamp is a datetime: no costly conversion
        start = pd.Timestamp(start)
    window = timedelta(seconds=TWIN_START_S)
    found = []
    for act in store.list_activities(
        athlete, since=start - window, until=start + window, source=sources
    ):
        if act["status"] == "failed" or (act.get("extra") or {}).get("duplicate_of"):
            continue
        if duration_s and act.get("duration_s"):
            tolerance = max(60.0, TWIN_DURATION_FRACTION * duration_s)
            if abs(act["duration_s"] - duration_s) > tolerance:
                continue
        found.append(act)
    return found


def find_twin(
    store: Store, athlete: str, start, duration_s: float | None, *, exclude_source: str
) -> dict[str, Any] | None:
    """The same run stored from another source (matched on start time and duration)."""
    for act in _same_run_candidates(store, athlete, start, duration_s):
        if act["source"] != exclude_source:
            return act
    return None


def ingest_records(
    store: Store,
    records: pd.DataFrame,
    raw: bytes,
    *,
    source: str,
    source_id: str,
    athlete: str = "default",
    start_time,
    elapsed_s: float | None,
    distance_m: float | None,
    sport: str = "running",
    sub_sport: str = "generic",
    device: str | None = None,
    file_name: str | None = None,
    extra: dict[str, Any] | None = None,
) -> IngestResult:
    """Store a run that arrived as per-record columns (Strava streams), not as a FIT file.

    `raw` (e.g. the activity and streams JSON) is archived untouched first. When the same run is
    already stored from a FIT file (matched on start time and duration) the FIT version wins: this
    one is kept as a duplicate without runs, so no run is counted twice.
    """
    sha = store.archive.put(raw)
    existing = store.find_activity(athlete, source, source_id)
    if existing and existing["status"] != "failed":
        return IngestResult("duplicate", sha, existing["id"], file_name=file_name, sport=sport)
    info = dict(extra or {})
    twin = find_twin(store, athlete, start_time, elapsed_s, exclude_source=source)
    common = {
        "source": source, "source_id": source_id, "sha256": sha, "file_name": file_name,
        "start_time": pd.Timestamp(start_time).to_pydatetime(), "duration_s": elapsed_s,
        "distance_m": distance_m, "sport": sport, "sub_sport": sub_sport, "device": device,
        "sensors": [],
    }  # fmt: skip
    if twin is not None:
        info["duplicate_of"] = twin["id"]
        with store.transaction():
            aid = store.upsert_activity(athlete, **common, status="ok", extra=info)
            store.replace_runs(aid, [])
        return IngestResult(
            "duplicate", sha, aid, reason=f"same run as activity {twin['id']} ({twin['source']})",
            file_name=file_name, sport=sport,
        )  # fmt: skip
    clean = summarise_run(
        records, sub_sport=sub_sport, start_time=pd.Timestamp(start_time), sensor=None,
        run_id=f"{source}:{source_id}",
    ).to_dict()  # fmt: skip
    means = {c: _finite(float(records[c].mean())) if c in records else None for c in MEAN_COLUMNS}
    row = {
        "session_index": 0,
        "start_time": common["start_time"],
        "sport": sport,
        "sub_sport": sub_sport,
        "sensor": None,
        "summary": {**clean, "elapsed_s": elapsed_s, "records": int(len(records)),
                    "balance_records": 0, "watch_means": means, "watch": {}},
    }  # fmt: skip
    with store.transaction():
        aid = store.upsert_activity(athlete, **common, status="ok", extra=info or None)
        store.replace_runs(aid, [row])
    return IngestResult("imported", sha, aid, runs=1, file_name=file_name, sport=sport)


def _supersede_stream_twins(store: Store, athlete: str, act_id: int, start, duration) -> None:
    """A FIT file arrived for a run stored from streams: the FIT version wins."""
    for twin in _same_run_candidates(store, athlete, start, duration, STREAM_SOURCES):
        if twin["id"] == act_id:
            continue
        extra = dict(twin.get("extra") or {})
        extra["duplicate_of"] = act_id
        store.upsert_activity(athlete, **{k: twin[k] for k in ACTIVITY_FIELDS}, extra=extra)
        store.replace_runs(twin["id"], [])


STREAM_SOURCES = ("strava",)
ACTIVITY_FIELDS = (
    "source", "source_id", "sha256", "start_time", "duration_s", "distance_m", "sport",
    "sub_sport", "device", "sensors", "status", "reason", "file_name",
)  # fmt: skip


def _record_failure(
    store: Store, athlete: str, common: dict[str, Any], reason: str, extra: dict[str, Any] | None
) -> IngestResult:
    with store.transaction():
        aid = store.upsert_activity(athlete, **common, status="failed", reason=reason, extra=extra)
        store.replace_runs(aid, [])
    return IngestResult(
        "failed", common["sha256"], aid, reason=reason, file_name=common["file_name"]
    )


BULK_FILES = 50  # files per transaction in bulk work: little lost to a crash, few commits


@contextlib.contextmanager
def bulk(store: Store, *, background: bool = True) -> Iterator[None]:
    """One transaction for many files, with the raw files made durable before it commits.

    Per-file fsync and commit cost more than decoding a file; in bulk the archive defers its
    fsync and syncs once, inside the transaction, so nothing committed can point at a raw file
    that is not on disk. A crash loses at most the open batch, which the next run redoes.
    """
    with store.transaction(), store.archive.deferred_sync(background=background):
        yield


@dataclass
class Job:
    """One file for `ingest_many`: bytes (or the reason they could not be read) and identity."""

    data: bytes | None
    source: str = "file"
    source_id: str | None = None
    file_name: str | None = None
    extra: dict[str, Any] | None = None
    error: str | None = None


PARALLEL_MIN_FILES = 1500
"""Below this many files no worker pool is started. Starting worker processes (numpy, pandas,
numba's cached kernels) costs 3-4 s: re-summarising a season of 300 one-hour runs (44 MB) took
1.7-2.0 s in one process and 4.6-4.9 s with two workers on the 2-core machine
(benchmarks/bench_pipeline.py). Smaller imports still use a second CPU: an analysis helper
(analysis_helper), forked at the first batch and kept for the next ones, starts in milliseconds
because it shares what this process has loaded. ingest_many decides on its first batch of
BULK_FILES."""


def _pool(n_workers: int) -> ProcessPoolExecutor | None:
    """Worker processes for the pure analysis; forkserver, so no open database is forked."""
    if n_workers <= 1:
        return None
    ctx = multiprocessing.get_context("forkserver")
    return ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx)


def _worker_count(n_jobs: int, workers: int | None) -> int:
    if workers is not None:
        return max(1, workers)
    if n_jobs < PARALLEL_MIN_FILES:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def ingest_many(
    store: Store,
    jobs: Iterable[Job],
    *,
    athlete: str = "default",
    force: bool = False,
    workers: int | None = None,
    on_result: Callable[[IngestResult], None] | None = None,
) -> list[IngestResult]:
    """Ingest many files: archive, decode + summarise, and store them in order.

    The main process archives each raw file first and checks for duplicates. The pure analysis
    runs in a pool of `workers` processes (asked for, or PARALLEL_MIN_FILES files or more); else,
    with `workers=None` on a Linux machine with two CPUs, this process and a helper process
    (forked once and kept between batches and imports, analysis_helper) share it, file by file,
    while this process stores; `workers=1`, or
    EVENSTRIDE_NO_HELPER=1, keeps it all in this process. Results are stored in file order, in
    bulk batches (one commit and one disk sync per batch), and come back in input order; every
    way gives the same stored rows.
    """
    batches = itertools.batched(jobs, BULK_FILES)  # lazy: an account export never sits in memory
    first = next(batches, None)
    if first is None:
        return []
    n_workers = _worker_count(len(first), workers)
    pool = _pool(n_workers)
    results: list[IngestResult] = []
    try:
        for batch in itertools.chain([first], batches):
            # the helper's batch ends after the commit (a failed batch stops the helper)
            with contextlib.ExitStack() as end_last, contextlib.ExitStack() as stack:
                n_data = sum(job.data is not None for job in batch)
                may_help = pool is None and workers is None and _helper_allowed(n_data)
                stack.enter_context(bulk(store, background=not may_help))
                helper: ForkedHelper[Analysis] | None = None
                pending: list[IngestResult | str] = []
                for job in batch:
                    pending.append(_prepare(store, job, athlete, force))
                    if may_help and isinstance(pending[-1], str):
                        if helper is None:  # the first file to analyse: fork now if need be,
                            proc = _helper_process(store)  # not for a batch of duplicates
                            may_help = proc is not None
                            if proc is not None:
                                helper = end_last.enter_context(
                                    ForkedHelper([j.data for j in batch], analyse, process=proc)
                                )
                        if helper is not None:
                            helper.offer(len(pending) - 1)  # the helper may start on it now
                store.archive.start_sync()  # the raw files reach the disk while we analyse
                analyses = _analyses(batch, pending, pool, helper)
                for job, prep, analysis in zip(batch, pending, analyses, strict=True):
                    result = prep if isinstance(prep, IngestResult) else store_analysis(
                        store, analysis, prep, job.source, job.source_id or prep, athlete,
                        job.file_name, job.extra,
                    )  # fmt: skip
                    results.append(result)
                    if on_result is not None:
                        on_result(result)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return results


def _helper_allowed(n_files: int) -> bool:
    """Whether a batch of `n_files` may use the analysis helper (analysis_helper)."""
    return n_files >= 2 and helper_wanted()


def _helper_process(store: Store) -> HelperProcess[Analysis] | None:
    """The kept analysis helper, forked now if none runs.

    A fork needs a single-threaded process: the archive's writer thread of an earlier batch
    (idle: its writes settled) is stopped first, and a batch with the helper archives in this
    thread (a third runnable thread would only take turns with the other two).
    """
    if not shared_running(analyse):
        store.archive.close()
    return shared_process(analyse)


def _prepare(store: Store, job: Job, athlete: str, force: bool) -> IngestResult | str:
    """Archive the raw bytes and check for a duplicate: an IngestResult when done, else the sha."""
    if job.error is not None or job.data is None:
        return IngestResult("failed", "", reason=job.error or "no data", file_name=job.file_name)
    sha = store.archive.put(job.data)
    existing = store.find_duplicate(athlete, job.source, job.source_id or sha, sha)
    if existing and existing["status"] != "failed" and not force:
        return IngestResult(
            "duplicate", sha, existing["id"], file_name=job.file_name, sport=existing.get("sport")
        )
    return sha


def _analyses(
    batch: Sequence[Job],
    pending: list[IngestResult | str],
    pool: ProcessPoolExecutor | None,
    helper: ForkedHelper[Analysis] | None,
) -> Iterator[Analysis | None]:
    """Analyses in batch order (None where `_prepare` already settled the job).

    With a helper they come as each is ready, so storing overlaps the helper's analysing.
    """
    todo = [i for i, p in enumerate(pending) if isinstance(p, str)]
    if helper is not None:
        done: Iterator[tuple[int, Analysis]] = helper.results(todo)
    else:
        done = zip(todo, _run_analyses([batch[i].data for i in todo], pool), strict=True)
    for p in pending:  # `done` follows `todo`, which is in batch order
        yield next(done)[1] if isinstance(p, str) else None


def reprocess(
    store: Store, athlete: str | None = None, *, workers: int | None = None
) -> list[IngestResult]:
    """Recompute every stored activity from its archived raw file (after a reader/metric fix)."""
    out: list[IngestResult] = []
    acts = [
        a
        for a in store.list_activities(athlete)
        if a.get("sha256")
        and a["source"] not in STREAM_SOURCES
        and not (a.get("extra") or {}).get("duplicate_of")
        and store.archive.has(a["sha256"])
    ]  # fmt: skip  (stream runs are re-summarised from their own raw JSON by their connector)
    pool = _pool(_worker_count(len(acts), workers))
    try:
        for batch in itertools.batched(acts, BULK_FILES):
            blobs = [store.archive.get(a["sha256"]) for a in batch]
            with contextlib.ExitStack() as stack:
                helper = None
                proc = None
                if pool is None and workers is None and _helper_allowed(len(blobs)):
                    proc = _helper_process(store)
                if proc is not None:
                    helper = stack.enter_context(ForkedHelper(blobs, analyse, process=proc))
                    for i in range(len(blobs)):
                        helper.offer(i)
                    analyses: Iterable[Analysis] = (a for _, a in helper.results(range(len(blobs))))
                else:
                    analyses = _run_analyses(blobs, pool)
                stack.enter_context(bulk(store, background=helper is None))
                for act, analysis in zip(batch, analyses, strict=True):
                    out.append(
                        store_analysis(
                            store,
                            analysis,
                            act["sha256"],
                            act["source"],
                            act["source_id"],
                            act["athlete"],
                            act.get("file_name"),
                            act.get("extra"),
                        )  # fmt: skip
                    )
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return out


def _run_analyses(blobs: list[bytes], pool) -> list[Analysis]:
    """Analyse blobs in order, in the pool when there is one."""
    if pool is None:
        return [analyse(b) for b in blobs]
    return list(pool.map(analyse, blobs, chunksize=max(1, len(blobs) // 8)))
