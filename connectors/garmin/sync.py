"""Incremental, resumable Garmin Connect sync: never lose a run, never store one twice.

How it stays exact (the users' pain: gaps and re-downloads, see research anchors §2 #4):

* The cursor (sync state ``garmin/cursor``) is the GMT start time of the last activity this
  athlete's sync *handled*: stored, already there, not a run, or definitively failed.
* A run lists the activity list newest-first, page by page, back to ``cursor - overlap``
  (2 days: catches watches that upload late) or ``--since``, then handles the activities
  oldest-first. Each stored activity and the cursor move commit in ONE transaction, so a kill
  at any moment leaves the cursor at or before the last stored activity: the next run re-lists
  from there and skips by activity id (no download) what is already stored.
* 429 stops at once; 5xx/timeouts stop after bounded retries; either way the cursor stays on the
  last handled activity and the next run resumes there. A corrupt zip, a missing original or an
  undecodable FIT marks that one activity failed (with its reason) and the sync goes on.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from evenstride.connectors.base import (
    DEFAULT_OVERLAP,
    stopped_text,
    window_start,
)
from evenstride.connectors.garmin.client import GarminClient
from evenstride.connectors.garmin.errors import (
    EXIT_AUTH,
    EXIT_OK,
    EXIT_SOME_FAILED,
    ActivityFetchError,
    GarminError,
)

SOURCE = "garmin"
CURSOR_KEY = "cursor"
BALANCE_TOLERANCE_PP = 0.05
MAX_FIT_BYTES = 256 * 1024 * 1024  # refuse zip bombs

# Garmin activityType.typeKey values of runs (parentTypeId 1 = running catches new ones).
RUNNING_TYPE_KEYS = frozenset(
    {
        "running",
        "street_running",
        "track_running",
        "trail_running",
        "treadmill_running",
        "indoor_running",
        "virtual_run",
        "obstacle_run",
        "ultra_run",
    }
)
RUNNING_PARENT_TYPE_ID = 1


class Ingest(Protocol):
    def __call__(
        self,
        store: Any,
        data: bytes,
        *,
        source: str,
        source_id: str,
        athlete: str = "default",
        file_name: str | None = None,
        extra: dict | None = None,
    ) -> Any: ...


class BadDownloadError(Exception):
    """The ORIGINAL download is not a usable zip holding one FIT file."""


@dataclass
class SyncOptions:
    athlete: str = "default"
    since: dt.date | None = None
    page_size: int = 100
    overlap: dt.timedelta = DEFAULT_OVERLAP
    retry_failed: bool = False


@dataclass
class SyncSummary:
    """What one sync did; `exit_code` follows connectors.garmin.errors."""

    athlete: str
    window_start: str | None = None
    listed: int = 0
    running: int = 0
    imported: int = 0
    partial: int = 0
    already: int = 0
    not_running: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    balance_mismatches: list[dict[str, Any]] = field(default_factory=list)
    cursor: str | None = None
    stopped: str | None = None
    retry_hint: str | None = None
    exit_code: int = EXIT_OK

    def line(self) -> str:
        """The final one-line summary."""
        text = (
            f"garmin/{self.athlete}: {self.imported} imported, {self.partial} partial, "
            f"{self.already} already stored, {len(self.failed)} failed "
            f"({self.running} runs among {self.listed} activities listed)"
        )
        return text + stopped_text(self.stopped, self.retry_hint)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def start_time(entry: dict[str, Any]) -> dt.datetime | None:
    """The activity's start as an aware UTC datetime (startTimeGMT, else beginTimestamp)."""
    text = entry.get("startTimeGMT")
    if isinstance(text, str) and text:
        try:
            return dt.datetime.fromisoformat(text.replace("T", " ")).replace(tzinfo=dt.UTC)
        except ValueError:
            pass
    ms = entry.get("beginTimestamp")
    if isinstance(ms, int | float):
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return None


def is_running(entry: dict[str, Any]) -> bool:
    kind = entry.get("activityType") or {}
    return kind.get("typeKey") in RUNNING_TYPE_KEYS or kind.get("parentTypeId") == (
        RUNNING_PARENT_TYPE_ID
    )


def unzip_fit(blob: bytes) -> tuple[str | None, bytes]:
    """(inner file name, FIT bytes) from an ORIGINAL download; a bare FIT passes through."""
    if len(blob) >= 12 and blob[8:12] == b".FIT":
        return None, blob
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            fits = [i for i in zf.infolist() if i.filename.lower().endswith(".fit")]
            if not fits:
                names = ", ".join(zf.namelist()[:3]) or "nothing"
                raise BadDownloadError(f"the original is not a FIT file (zip holds {names})")
            if fits[0].file_size > MAX_FIT_BYTES:
                raise BadDownloadError(f"FIT file too large ({fits[0].file_size} bytes)")
            return fits[0].filename, zf.read(fits[0])
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise BadDownloadError(f"corrupt download: not a readable zip ({e})") from e


def balance_check(
    entry: dict[str, Any], fit: bytes, read_fit: Callable[[bytes], Any]
) -> dict[str, Any] | None:
    """Garmin's avgGroundContactBalance vs the FIT session's avg_stance_time_balance.

    Why: both are '% left' summaries of the same run; a disagreement points at a decoding or
    side-convention bug (or Garmin recomputing), which would silently bias every trend.
    """
    garmin = entry.get("avgGroundContactBalance")
    if not isinstance(garmin, int | float):
        return None
    try:
        sessions = read_fit(fit).sessions
    except Exception:  # noqa: BLE001 - ingest reports undecodable files; this is only a check
        return None
    values = [
        s["avg_stance_time_balance"]
        for s in sessions
        if s.get("avg_stance_time_balance") is not None and s.get("sport") in (None, "running")
    ]
    if not values:
        return None
    fit_value = float(values[0])
    diff = abs(float(garmin) - fit_value)
    return {
        "garmin_avg_gct_balance": float(garmin),
        "fit_avg_stance_time_balance": fit_value,
        "diff_pp": round(diff, 3),
        "agree": diff <= BALANCE_TOLERANCE_PP,
    }


def _default_ingest() -> Ingest:
    from evenstride.ingest import ingest_file

    return ingest_file


def _default_read_fit() -> Callable[[bytes], Any]:
    from evenstride.metrics.fit import read_fit

    return read_fit


class _Run:
    """State of one sync run (kept off the module functions to keep them small)."""

    def __init__(
        self,
        client: GarminClient,
        store: Any,
        opts: SyncOptions,
        ingest: Ingest,
        read_fit: Callable[[bytes], Any],
    ) -> None:
        self.client, self.store, self.opts = client, store, opts
        self.ingest, self.read_fit = ingest, read_fit
        self.summary = SyncSummary(athlete=opts.athlete)
        self.summary.cursor = store.get_sync_state(opts.athlete, SOURCE, CURSOR_KEY)
        self.pending: str | None = None  # cursor earned by skips, written with the next commit

    def list_window(self, bound: dt.datetime) -> list[dict[str, Any]]:
        """Every activity starting at or after `bound`, oldest first, each id once."""
        seen: dict[str, dict[str, Any]] = {}
        start = 0
        while True:
            page = self.client.activities_page(start, self.opts.page_size)
            if not page:
                break
            times = []
            for entry in page:
                if entry.get("activityId") is None:
                    continue
                seen.setdefault(str(entry["activityId"]), entry)
                times.append(start_time(entry))
            start += len(page)
            known = [t for t in times if t is not None]
            if known and min(known) < bound:
                break
        items = [e for e in seen.values() if (start_time(e) or bound) >= bound]
        epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
        items.sort(key=lambda e: (start_time(e) or epoch, int(e["activityId"])))
        return items

    def _set_cursor(self, value: str | None) -> None:
        if value is not None:
            self.store.set_sync_state(self.opts.athlete, SOURCE, CURSOR_KEY, value)
            self.summary.cursor = value
            self.pending = None

    def flush(self) -> None:
        if self.pending is not None:
            with self.store.transaction():
                self._set_cursor(self.pending)

    def handle(self, entry: dict[str, Any]) -> None:
        aid = str(entry["activityId"])
        t = start_time(entry)
        stamp = t.isoformat() if t else self.pending
        if not is_running(entry):
            self.summary.not_running += 1
            self.pending = stamp
            return
        self.summary.running += 1
        found = self.store.find_activity(self.opts.athlete, SOURCE, aid)
        if found is not None and not (self.opts.retry_failed and found["status"] == "failed"):
            self.summary.already += 1
            self.pending = stamp
            return
        try:
            name, fit = unzip_fit(self.client.download_original(aid))
        except (ActivityFetchError, BadDownloadError) as e:
            reason = e.message if isinstance(e, ActivityFetchError) else str(e)
            self.mark_failed(entry, aid, reason, stamp)
            return
        extra: dict[str, Any] = {"summary": entry}
        check = balance_check(entry, fit, self.read_fit)
        if check is not None:
            extra["balance_check"] = check
            if not check["agree"]:
                self.summary.balance_mismatches.append({"activity_id": aid, **check})
        with self.store.transaction():
            result = self.ingest(
                self.store,
                fit,
                source=SOURCE,
                source_id=aid,
                athlete=self.opts.athlete,
                file_name=name or f"{aid}_ACTIVITY.fit",
                extra=extra,
            )
            self._set_cursor(stamp)
        self.tally(aid, result)

    def tally(self, aid: str, result: Any) -> None:
        status = getattr(result, "status", "failed")
        if status == "imported":
            self.summary.imported += 1
        elif status == "partial":
            self.summary.partial += 1
        elif status == "duplicate":
            self.summary.already += 1
        else:
            reason = getattr(result, "reason", None) or "could not be imported"
            self.summary.failed.append({"activity_id": aid, "reason": reason})

    def mark_failed(self, entry: dict[str, Any], aid: str, reason: str, stamp: str | None) -> None:
        """Keep a failed row (so the run is never silently missing) and move past it."""
        self.summary.failed.append({"activity_id": aid, "reason": reason})
        with self.store.transaction():
            self.store.upsert_activity(
                self.opts.athlete,
                source=SOURCE,
                source_id=aid,
                sha256=None,
                start_time=start_time(entry),
                duration_s=entry.get("duration"),
                distance_m=entry.get("distance"),
                sport="running",
                status="failed",
                reason=reason,
                extra={"summary": entry},
            )
            self._set_cursor(stamp)


def sync(
    client: GarminClient,
    store: Any,
    opts: SyncOptions,
    *,
    ingest: Ingest | None = None,
    read_fit: Callable[[bytes], Any] | None = None,
    on_listed: Callable[[int], None] | None = None,
    on_handled: Callable[[], None] | None = None,
    now: dt.datetime | None = None,
) -> SyncSummary:
    """Run one sync. Never raises GarminError: a stop is reported in the summary."""
    run = _Run(client, store, opts, ingest or _default_ingest(), read_fit or _default_read_fit())
    summary = run.summary
    bound = window_start(opts.since, summary.cursor, opts.overlap, now or dt.datetime.now(dt.UTC))
    summary.window_start = bound.isoformat()
    try:
        items = run.list_window(bound)
        summary.listed = len(items)
        if on_listed:
            on_listed(len(items))
        for entry in items:
            run.handle(entry)
            if on_handled:
                on_handled()
    except GarminError as e:
        summary.stopped = e.message
        summary.exit_code = e.exit_code
        summary.retry_hint = e.retry_hint() if hasattr(e, "retry_hint") else None
    finally:
        run.flush()
    if summary.exit_code == EXIT_OK and summary.failed:
        summary.exit_code = EXIT_SOME_FAILED
    return summary


def run_sync(
    store: Any,
    opts: SyncOptions,
    *,
    client_factory: Callable[[], GarminClient] = GarminClient,
    **kwargs: Any,
) -> SyncSummary:
    """Sync one athlete with the tokens from the keyring, and save refreshed tokens after.

    Tokens are compared and written back in `finally`, so a refresh that happened before a 429
    or a crash is not lost (a stale refresh token would force a new password login). When the
    tokens are refused and the user chose --save-password, one non-interactive credential login
    is tried (no MFA prompt: an MFA account then needs `evenstride login garmin`).
    """
    from evenstride.connectors.garmin import auth

    client, before = auth.open_session(opts.athlete, client_factory)
    try:
        summary = sync(client, store, opts, **kwargs)
        creds = auth.saved_credentials(opts.athlete) if summary.exit_code == EXIT_AUTH else None
        if creds is not None:
            try:
                client.login_with_password(creds[0], creds[1], prompt_mfa=None)
            except GarminError as e:
                summary.stopped = f"{summary.stopped}; password login failed too: {e.message}"
                return summary
            summary = sync(client, store, opts, **kwargs)
        if summary.exit_code == EXIT_AUTH:
            summary.stopped = f"{summary.stopped}: {auth.login_hint(opts.athlete)}"
        return summary
    finally:
        auth.save_if_changed(opts.athlete, client, before)
