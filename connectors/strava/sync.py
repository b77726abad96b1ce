"""Incremental, resumable Strava sync of runs as streams (cadence, pace, HR; no GCT balance).

* Cursor (sync state ``strava/cursor``): the UTC start of the last activity this athlete's sync
  handled (stored, already there, not a run, or stored without streams). A run lists
  ``after = cursor - overlap`` (2 days: catches late uploads) or ``--since``, sorts client-side
  (Strava's order with ``after`` is not documented), and handles the activities oldest first;
  each stored activity and the cursor move commit in ONE transaction. Activities already stored
  are skipped by id without fetching their streams.
* Budget: one listing call per 200 activities and one streams call per new run. The client
  stops before the rate budget runs out and a 429 stops at once (exit 4); the cursor stays on
  the last handled activity, so the next run resumes there.
* A run also synced from Garmin is stored once: `ingest_records` matches start and duration and
  lets the FIT version win, and a later FIT supersedes a stored Strava copy.
* Manual activities (and runs without a time stream) are stored without runs and with a note.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pydantic
from stravalib import model

from evenstride.cli import exitcodes
from evenstride.connectors.base import (
    DEFAULT_OVERLAP,
    stopped_text,
    window_start,
)
from evenstride.connectors.strava.client import StravaClient
from evenstride.connectors.strava.errors import StravaError
from evenstride.connectors.strava.streams import frame_from_streams
from evenstride.ingest import ingest_records

SOURCE = "strava"
CURSOR_KEY = "cursor"
RUN_SUB_SPORTS = {"Run": "generic", "TrailRun": "trail", "VirtualRun": "virtual_activity"}
NO_STREAMS_NOTE = "no streams from Strava (manual activity or no sensor data): nothing to measure"
# Fields copied into the activity's `extra` (explicit: the raw JSON stays in the archive only).
EXTRA_FIELDS = (
    "name", "sport_type", "start_date_local", "timezone", "external_id", "upload_id_str",
    "manual", "trainer", "workout_type", "gear_id", "average_cadence", "average_heartrate",
    "average_speed", "moving_time", "total_elevation_gain", "device_name",
)  # fmt: skip


@dataclass
class SyncOptions:
    athlete: str = "default"
    since: dt.date | None = None
    overlap: dt.timedelta = DEFAULT_OVERLAP


@dataclass
class SyncSummary:
    """What one sync did; `exit_code` follows cli/exitcodes.py."""

    athlete: str
    window_start: str | None = None
    listed: int = 0
    running: int = 0
    imported: int = 0
    already: int = 0
    same_as_other_source: int = 0
    not_running: int = 0
    without_streams: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    cursor: str | None = None
    stopped: str | None = None
    retry_hint: str | None = None
    rate_usage: dict[str, Any] = field(default_factory=dict)
    exit_code: int = exitcodes.OK

    def line(self) -> str:
        text = (
            f"strava/{self.athlete}: {self.imported} imported, {self.already} already stored, "
            f"{self.same_as_other_source} same run as another source, "
            f"{len(self.without_streams)} without streams, {len(self.failed)} failed "
            f"({self.running} runs among {self.listed} activities listed)"
        )
        return text + stopped_text(self.stopped, self.retry_hint)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def start_of(raw: dict[str, Any]) -> dt.datetime | None:
    text = raw.get("start_date")
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
    except ValueError:
        return None


def sub_sport_of(sport_type: str, trainer: bool | None) -> str:
    """trail / virtual_activity by sport type, treadmill when on a trainer, else generic."""
    sub = RUN_SUB_SPORTS.get(sport_type, "generic")
    return "treadmill" if sub == "generic" and trainer else sub


def is_run(raw: dict[str, Any]) -> bool:
    return raw.get("sport_type") in RUN_SUB_SPORTS


class _Run:
    """State of one sync run."""

    def __init__(self, client: StravaClient, store: Any, opts: SyncOptions) -> None:
        self.client, self.store, self.opts = client, store, opts
        self.summary = SyncSummary(athlete=opts.athlete)
        self.summary.cursor = store.get_sync_state(opts.athlete, SOURCE, CURSOR_KEY)

    def list_window(self, bound: dt.datetime) -> list[dict[str, Any]]:
        """Every activity after `bound`, oldest first, each id once."""
        seen: dict[str, dict[str, Any]] = {}
        for page in self.client.activity_pages(int(bound.timestamp())):
            for raw in page:
                if isinstance(raw, dict) and raw.get("id") is not None:
                    seen.setdefault(str(raw["id"]), raw)
        epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
        return sorted(seen.values(), key=lambda r: (start_of(r) or epoch, int(r["id"])))

    def _cursor(self, raw: dict[str, Any]) -> None:
        start = start_of(raw)
        if start is not None and (
            not self.summary.cursor or start.isoformat() > self.summary.cursor
        ):
            self.store.set_sync_state(self.opts.athlete, SOURCE, CURSOR_KEY, start.isoformat())
            self.summary.cursor = start.isoformat()

    def handle(self, raw: dict[str, Any]) -> None:
        aid = str(raw["id"])
        if not is_run(raw):
            self.summary.not_running += 1
            with self.store.transaction():
                self._cursor(raw)
            return
        self.summary.running += 1
        found = self.store.find_activity(self.opts.athlete, SOURCE, aid)
        if found is not None and found["status"] != "failed":
            self.summary.already += 1
            with self.store.transaction():
                self._cursor(raw)
            return
        try:
            act = model.SummaryActivity.model_validate(raw)
        except pydantic.ValidationError as e:
            self._failed(raw, f"Strava's activity JSON did not validate ({e.error_count()} errors)")
            return
        streams = None if raw.get("manual") else self.client.streams(aid)
        self._store(raw, act, streams)

    def _common(self, raw: dict[str, Any], act: model.SummaryActivity) -> dict[str, Any]:
        sport_type = str(raw.get("sport_type"))
        extra = {"strava": {k: raw[k] for k in EXTRA_FIELDS if raw.get(k) is not None}}
        return {
            "source": SOURCE,
            "source_id": str(raw["id"]),
            "athlete": self.opts.athlete,
            "start_time": start_of(raw),
            "elapsed_s": float(act.elapsed_time) if act.elapsed_time is not None else None,
            "distance_m": float(act.distance) if act.distance is not None else None,
            "sub_sport": sub_sport_of(sport_type, act.trainer),
            "device": act.device_name,
            "extra": extra,
        }

    def _store(self, raw: dict[str, Any], act: model.SummaryActivity, streams: Any) -> None:
        common = self._common(raw, act)
        records, notes = frame_from_streams(
            streams or {}, common["start_time"], str(raw.get("sport_type"))
        )
        common["extra"]["streams"] = notes
        blob = json.dumps({"activity": raw, "streams": streams}, ensure_ascii=False).encode()
        if records.empty:
            self._without_streams(raw, common, blob)
            return
        with self.store.transaction():
            result = ingest_records(self.store, records, blob, **common)
            self._cursor(raw)
        if result.status == "imported":
            self.summary.imported += 1
        elif result.status == "duplicate" and result.reason:
            self.summary.same_as_other_source += 1
        else:
            self.summary.already += 1

    def _without_streams(self, raw: dict[str, Any], common: dict[str, Any], blob: bytes) -> None:
        """Keep the activity (so it is not missing) with a note, but no run to summarise."""
        note = "manual activity: " + NO_STREAMS_NOTE if raw.get("manual") else NO_STREAMS_NOTE
        sha = self.store.archive.put(blob)
        with self.store.transaction():
            aid = self.store.upsert_activity(
                self.opts.athlete, source=SOURCE, source_id=common["source_id"], sha256=sha,
                start_time=common["start_time"], duration_s=common["elapsed_s"],
                distance_m=common["distance_m"], sport="running", sub_sport=common["sub_sport"],
                device=common["device"], status="ok", reason=note, extra=common["extra"],
            )  # fmt: skip
            self.store.replace_runs(aid, [])
            self._cursor(raw)
        self.summary.without_streams.append({"activity_id": common["source_id"], "note": note})

    def _failed(self, raw: dict[str, Any], reason: str) -> None:
        self.summary.failed.append({"activity_id": str(raw["id"]), "reason": reason})
        with self.store.transaction():
            self.store.upsert_activity(
                self.opts.athlete, source=SOURCE, source_id=str(raw["id"]), sha256=None,
                start_time=start_of(raw), sport="running", status="failed", reason=reason,
            )  # fmt: skip
            self._cursor(raw)


def sync(
    client: StravaClient,
    store: Any,
    opts: SyncOptions,
    *,
    on_listed: Callable[[int], None] | None = None,
    on_handled: Callable[[], None] | None = None,
    now: dt.datetime | None = None,
) -> SyncSummary:
    """Run one sync. Never raises StravaError: a stop is reported in the summary."""
    store.ensure_athlete(opts.athlete)
    run = _Run(client, store, opts)
    summary = run.summary
    bound = window_start(opts.since, summary.cursor, opts.overlap, now or dt.datetime.now(dt.UTC))
    summary.window_start = bound.isoformat()
    try:
        items = run.list_window(bound)
        summary.listed = len(items)
        if on_listed:
            on_listed(len(items))
        for raw in items:
            run.handle(raw)
            if on_handled:
                on_handled()
    except StravaError as e:
        summary.stopped = e.message
        summary.exit_code = e.exit_code
        summary.retry_hint = getattr(e, "retry_hint", None)
    summary.rate_usage = client.budget.snapshot()
    if summary.exit_code == exitcodes.OK and summary.failed:
        summary.exit_code = exitcodes.SOME_FAILED
    return summary
