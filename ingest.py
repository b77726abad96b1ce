"""The one path every raw file takes: archive untouched -> decode -> summarise -> store.

Connectors (Garmin, Strava, local files) hand raw bytes to `ingest_file`; it does no network I/O.
The raw bytes are archived before anything else, so a decoder bug or a crash never loses data and
`reprocess` can recompute every number later. Activity and runs are written in one transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from evenstride.metrics.fit import FitFile, FitReadError, Run, read_fit
from evenstride.metrics.fit.sensors import balance_sensor, device_name, sensors
from evenstride.metrics.summary import summarise_fit_run, summarise_run
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
    means = {c: _finite(run.watch_mean(c)) for c in MEAN_COLUMNS}
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
            "records": int(len(run.records)),
            "balance_records": int(run.records["gct_balance_pct"].notna().sum()),
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
    sha = store.archive.put(data)
    source_id = source_id or sha
    existing = store.find_activity(athlete, source, source_id) or store.find_activity_by_sha(
        athlete, sha
    )
    if existing and existing["status"] != "failed" and not force:
        return IngestResult(
            "duplicate", sha, existing["id"], file_name=file_name, sport=existing.get("sport")
        )
    return _decode_and_store(store, data, sha, source, source_id, athlete, file_name, extra)


def _decode_and_store(
    store: Store,
    data: bytes,
    sha: str,
    source: str,
    source_id: str,
    athlete: str,
    file_name: str | None,
    extra: dict[str, Any] | None,
) -> IngestResult:
    common = {"source": source, "source_id": source_id, "sha256": sha, "file_name": file_name}
    try:
        ff = read_fit(data)
        runs = ff.runs()
        fields = _activity_fields(ff, runs)
        sensor = balance_sensor(fields["sensors"])
        rows = [run_row(r, sensor) for r in runs]
    except FitReadError as exc:
        return _record_failure(store, athlete, common, exc.reason, extra)
    except Exception as exc:  # noqa: BLE001 - one odd file must not stop an import or a sync
        log.exception("unexpected error decoding %s (%s)", file_name or sha, sha)
        reason = f"could not be processed ({type(exc).__name__}: {exc}); raw file kept"
        return _record_failure(store, athlete, common, reason, extra)
    status = "partial" if ff.partial else "ok"
    reason = "; ".join(ff.warnings) if ff.partial else None
    info = dict(extra or {})
    if ff.warnings:
        info["warnings"] = ff.warnings
    with store.transaction():
        aid = store.upsert_activity(
            athlete, **common, **fields, status=status, reason=reason, extra=info or None
        )
        store.replace_runs(aid, rows)
        if rows:
            _supersede_stream_twins(store, athlete, aid, fields["start_time"], fields["duration_s"])
    return IngestResult(
        "partial" if ff.partial else "imported",
        sha,
        aid,
        reason=reason,
        runs=len(rows),
        file_name=file_name,
        warnings=ff.warnings,
        sport=fields["sport"],
    )


TWIN_START_S = 120.0  # a run synced from two platforms starts within this many seconds ...
TWIN_DURATION_FRACTION = 0.05  # ... and lasts within 5 % (at least 60 s) of the other


def _same_run_candidates(
    store: Store, athlete: str, start, duration_s: float | None
) -> list[dict[str, Any]]:
    """Stored activities that look like the same run (start within 2 min, duration within 5 %)."""
    if start is None:
        return []
    start = pd.Timestamp(start)
    window = pd.Timedelta(seconds=TWIN_START_S)
    found = []
    for act in store.list_activities(
        athlete, since=(start - window).to_pydatetime(), until=(start + window).to_pydatetime()
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
    for twin in _same_run_candidates(store, athlete, start, duration):
        if twin["source"] not in STREAM_SOURCES or twin["id"] == act_id:
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


def reprocess(store: Store, athlete: str | None = None) -> list[IngestResult]:
    """Recompute every stored activity from its archived raw file (after a reader/metric fix)."""
    out = []
    for act in store.list_activities(athlete):
        if not act.get("sha256") or not store.archive.has(act["sha256"]):
            continue
        data = store.archive.get(act["sha256"])
        out.append(
            _decode_and_store(
                store,
                data,
                act["sha256"],
                act["source"],
                act["source_id"],
                act["athlete"],
                act.get("file_name"),
                act.get("extra"),
            )  # fmt: skip
        )
    return out
