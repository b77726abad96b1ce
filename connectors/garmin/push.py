"""Push the athlete's plan to Garmin Connect as scheduled strength workouts, idempotently.

The decisions are pure (planner/reconcile.py); this module only does the I/O around them:

1. Plan: always plan afresh for ``today`` from the store, exactly like ``evenstride plan
   --today`` (``make_plan``: past sessions of the saved plan are kept as they were), keeping the
   horizon of the saved plan (``plan --weeks 8`` sticks; 4 weeks otherwise), and save it as the
   latest plan. Why not reuse today's saved plan: a coach override or newly synced runs since
   then would silently not reach the watch; the rebuild is deterministic, so when nothing
   changed it *is* the saved plan. A dry run saves nothing.
2. Validate every exercise of every session to send against garminconnect's catalogue (Garmin
   silently blanks unknown names) -- before the first request, so nothing is sent on failure.
3. Read Garmin: the workout library (paged) and the calendar months around the plan (deduped
   by item id, since Garmin's month view spills over). Garmin is the source of truth.
4. Reconcile and carry the groups out day by day, creation before removal: upload, schedule,
   then unschedule + delete what it replaces. Whatever point a run dies at (SIGKILL, 429, lost
   connection), Garmin then holds at worst an extra or an unscheduled evenstride workout; the
   next run reads it back, keeps the right one (by content hash) and removes the rest, so the
   end state has no duplicates. A write whose answer was lost (the POST may or may not have
   happened) is never blindly retried: the push re-reads Garmin and reconciles again (up to
   ``MAX_PASSES`` times). A 429 stops at once (retrying prolongs Garmin's lockout).
5. After each finished day, a small record goes to the store's sync state
   (``garmin/push:<date>`` -> workout id + hash), for reports without a network call. It is
   never used to decide anything: a kill between Garmin and the store only leaves it stale.

Past sessions (before ``today``) and the athlete's own workouts (no marker) are never touched.
Limitation: evenstride assumes one Garmin account per athlete (the marker does not name the
athlete), and a session the athlete moved more than a month away may be scheduled again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evenstride.connectors.base import stopped_text
from evenstride.connectors.garmin.client import GarminClient
from evenstride.connectors.garmin.errors import (
    EXIT_OK,
    GarminError,
    RateLimitedError,
    UnavailableError,
)
from evenstride.planner import Plan, garmin_workout_payloads
from evenstride.planner.reconcile import (
    Action,
    Desired,
    Group,
    Reconciliation,
    Remote,
    desired_from_payloads,
    reconcile,
    remote_workouts,
)

log = logging.getLogger("evenstride.push")

SOURCE = "garmin"
RECORD_PREFIX = "push:"
DEFAULT_WEEKS = 4
MAX_WEEKS = 24
MAX_PASSES = 10  # read -> reconcile -> write rounds per run (repairs after ambiguous writes)
MAX_STALLED = 2  # give up after this many passes in a row failed before any write succeeded
PAGE_SIZE = 100
MAX_PAGES = 100


@dataclass
class PushSummary:
    """What one push did (or, with ``dry_run``, would do); the lists hold session dates."""

    athlete: str
    today: dt.date
    dry_run: bool = False
    created: list[dt.date] = field(default_factory=list)
    replaced: list[dt.date] = field(default_factory=list)
    removed: list[dt.date] = field(default_factory=list)
    unchanged: list[dt.date] = field(default_factory=list)
    skipped_past: list[dt.date] = field(default_factory=list)
    repaired: list[dt.date] = field(default_factory=list)  # duplicates/leftovers cleaned up
    pending: list[dt.date] = field(default_factory=list)  # days not finished when it stopped
    changes: list[dict[str, Any]] = field(default_factory=list)  # per day: outcome, actions
    writes: int = 0
    stopped: str | None = None
    retry_hint: str | None = None
    exit_code: int = EXIT_OK

    def line(self) -> str:
        """The one-line summary (cron mails, the nightly log)."""
        text = (
            f"garmin/{self.athlete} push: {len(self.created)} created, "
            f"{len(self.replaced)} replaced, {len(self.removed)} removed, "
            f"{len(self.unchanged)} unchanged, {len(self.skipped_past)} past untouched"
        )
        if self.repaired:
            text += f", {len(self.repaired)} repaired"
        if self.dry_run:
            text = text.replace(" push: ", " push (dry run, nothing sent): ")
        text += stopped_text(self.stopped, self.retry_hint)
        if self.stopped and self.pending:
            text += f"; {len(self.pending)} day(s) pending: the next push completes them"
        return text

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types (dates as YYYY-MM-DD)."""
        return json.loads(json.dumps(asdict(self), default=dt.date.isoformat))


# --------------------------------------------------------------------------- the plan


def horizon_weeks(plan: Plan | None) -> int:
    """How many program weeks a saved plan covers (so a re-plan keeps `plan --weeks N`)."""
    if plan is None or not plan.sessions:
        return DEFAULT_WEEKS
    last = max(s.week for s in plan.sessions)
    return max(1, min(MAX_WEEKS, last - plan.week + 1))


def plan_for_push(
    store: Any, home: Path, athlete: str, *, today: dt.date, weeks: int | None, save: bool
) -> Plan:
    """The athlete's current plan for `today` (see the module docstring, step 1)."""
    from evenstride.plans import last_plan, make_plan, save_plan

    weeks = weeks or horizon_weeks(last_plan(home, athlete))
    plan = make_plan(store, home, athlete, today=today, weeks=weeks)
    if save:
        save_plan(home, plan)
    return plan


# --------------------------------------------------------------------------- reading Garmin


def _month_range(lo: dt.date, hi: dt.date) -> list[tuple[int, int]]:
    months = []
    y, m = lo.year, lo.month
    while (y, m) <= (hi.year, hi.month):
        months.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return months


def read_remote(client: GarminClient, today: dt.date, desired: list[Desired]) -> list[Remote]:
    """evenstride's workouts on Garmin with their calendar entries from last month on."""
    workouts: list[dict[str, Any]] = []
    for page_no in range(MAX_PAGES):
        page = client.workouts_page(page_no * PAGE_SIZE, PAGE_SIZE)
        workouts.extend(page)
        if len(page) < PAGE_SIZE:
            break
    ours = remote_workouts(workouts, [])
    later = [r.session_date for r in ours if r.session_date and r.session_date >= today]
    last = max([today, *later, *(d.date for d in desired)])
    first = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    items: dict[Any, dict[str, Any]] = {}
    for year, month in _month_range(first, last + dt.timedelta(days=31)):
        for item in client.calendar_month(year, month):
            items.setdefault(item.get("id"), item)
    return remote_workouts(workouts, items.values())


# --------------------------------------------------------------------------- writing


class _Run:
    """One push: passes of read -> reconcile -> write, and the bookkeeping of outcomes."""

    def __init__(
        self, client: GarminClient, store: Any, summary: PushSummary, today: dt.date
    ) -> None:
        self.client, self.store, self.summary, self.today = client, store, summary, today
        self.intent: dict[dt.date, str] = {}  # outcome per day, as the first pass saw it
        self.done: set[dt.date] = set()

    def plan_pass(self, desired: list[Desired]) -> Reconciliation:
        rec = reconcile(desired, read_remote(self.client, self.today, desired), self.today)
        for g in rec.groups:
            self.intent.setdefault(g.date, g.outcome)
        return rec

    def execute(self, rec: Reconciliation) -> None:
        for group in rec.groups:
            keeper = group.keeper
            for action in group.actions:
                keeper = self.write(action, keeper)
                self.summary.writes += 1
            self.done.add(group.date)
            if group.actions:
                self.summary.changes.append(_change(group, done=True))
                log.info("garmin push %s: %s", group.date, group.outcome)
            self.record(group, keeper)

    def write(self, action: Action, keeper: int | None) -> int | None:
        c = self.client
        if action.kind == "create":
            assert action.desired is not None
            keeper = c.upload_workout(dict(action.desired.workout))
            self.summary.writes += 1
            c.schedule_workout(keeper, action.date)
        elif action.kind == "schedule":
            c.schedule_workout(int(action.workout_id or 0), action.date)
        elif action.kind == "unschedule":
            c.unschedule_workout(int(action.schedule_id or 0))
        else:
            c.delete_workout(int(action.workout_id or 0))
        return keeper

    def record(self, group: Group, keeper: int | None) -> None:
        """The local mirror of what is on Garmin for that day (informational only)."""
        key = f"{RECORD_PREFIX}{group.date.isoformat()}"
        athlete = self.summary.athlete
        if group.outcome == "removed":
            self.store.delete_sync_state(athlete, SOURCE, key)
            return
        value = json.dumps({"workout_id": keeper, "content_hash": group.content_hash})
        if self.store.get_sync_state(athlete, SOURCE, key) != value:
            self.store.set_sync_state(athlete, SOURCE, key, value)

    def finish(self, skipped_past: list[dt.date]) -> None:
        s = self.summary
        for day, outcome in sorted(self.intent.items()):
            if day in self.done or s.dry_run:
                getattr(s, outcome).append(day)
            else:
                s.pending.append(day)
        s.skipped_past = sorted(set(skipped_past))


def _change(group: Group, *, done: bool) -> dict[str, Any]:
    return {
        "date": group.date.isoformat(),
        "outcome": group.outcome,
        "name": next((a.name for a in group.actions if a.name), ""),
        "actions": [a.describe() for a in group.actions],
        "done": done,
    }


def push_plan(
    store: Any,
    home: Path,
    athlete: str,
    *,
    today: dt.date,
    dry_run: bool = False,
    client: GarminClient | None = None,
    weeks: int | None = None,
) -> PushSummary:
    """Make Garmin Connect's calendar match the athlete's plan from `today` on.

    Raises ``UnknownExerciseError`` (before any request) when an exercise is not in Garmin's
    catalogue, and the connector's ``GarminError`` subclasses (429 -> RateLimitedError, auth,
    unavailable) when Garmin stops the push; the error then carries the partial summary as
    ``.summary`` (what was done is kept; the next push completes the rest). Without `client`
    the athlete's tokens come from the keyring and refreshed ones are saved back.
    """
    plan = plan_for_push(store, home, athlete, today=today, weeks=weeks, save=not dry_run)
    desired = desired_from_payloads(garmin_workout_payloads(plan), today)
    past_in_plan = [s.date for s in plan.sessions if s.date < today]
    summary = PushSummary(athlete=athlete, today=today, dry_run=dry_run)
    if client is not None:
        return _push(client, store, summary, today, desired, past_in_plan)
    from evenstride.connectors.garmin import auth

    client, before = auth.open_session(athlete)
    try:
        return _push(client, store, summary, today, desired, past_in_plan)
    finally:
        auth.save_if_changed(athlete, client, before)


def _push(
    client: GarminClient,
    store: Any,
    summary: PushSummary,
    today: dt.date,
    desired: list[Desired],
    past_in_plan: list[dt.date],
) -> PushSummary:
    run = _Run(client, store, summary, today)
    past: list[dt.date] = list(past_in_plan)
    stalled = 0
    try:
        for attempt in range(MAX_PASSES):
            rec = run.plan_pass(desired)
            past.extend(rec.skipped_past)
            if summary.dry_run:
                summary.changes = [_change(g, done=False) for g in rec.groups if g.actions]
                break
            writes = summary.writes
            try:
                run.execute(rec)
                break
            except UnavailableError as e:  # a write that may have happened: read Garmin again
                stalled = 0 if summary.writes > writes else stalled + 1
                if stalled >= MAX_STALLED or attempt + 1 >= MAX_PASSES:
                    raise
                log.warning("garmin push: %s; reading Garmin again to reconcile", e.message)
    except GarminError as e:
        summary.stopped = e.message
        summary.exit_code = e.exit_code
        if isinstance(e, RateLimitedError):
            summary.retry_hint = e.retry_hint()
        run.finish(past)
        e.summary = summary  # type: ignore[attr-defined]
        raise
    run.finish(past)
    return summary
