"""What the Garmin push must do: desired sessions vs evenstride's workouts on Garmin -> actions.

Pure data, no I/O: the connector reads Garmin, calls :func:`reconcile`, and carries the actions
out group by group. Garmin is the source of truth, so every run starts from what Garmin has and
any half-finished earlier run (killed, 429, dropped connection) simply shows up as a state to
repair. The rules:

* A workout is evenstride's when its name or description carries ``[evenstride]`` (or the
  ``[evenstride:<hash16>]`` tag); everything else is the athlete's and is never looked at again.
* A workout is *past* when its session date (from the name evenstride gave it) or any of its
  calendar entries is before ``today``: past workouts are never touched.
* For each desired session (date >= today) the *keeper* is a non-past evenstride workout with
  the session's content hash (the hash covers the date). Among several, the one already on the
  calendar wins, then the oldest id. No keeper -> create one; a keeper that is on no calendar
  date >= today -> schedule it (an upload whose schedule never happened); a keeper scheduled
  twice on the same day -> unschedule the extra entries (a schedule whose answer was lost).
  A keeper the athlete moved to another future day stays where the athlete put it.
* Every other non-past evenstride workout dated on that day (an older version, a duplicate) is
  removed: its calendar entries are unscheduled, then the workout is deleted.
* Non-past evenstride workouts on days without a desired session are removed too.

Groups are ordered by date and, within a group, creation comes before removal (make before
break): an interruption at any point leaves at worst an extra or an unscheduled workout that the
next run recognises and repairs; the athlete never loses a session in between.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from .catalog import validate_all
from .fingerprint import MARKER

TAG_RE = re.compile(r"\[evenstride:([0-9a-f]{16})\]")
NAME_DATE_RE = re.compile(re.escape(MARKER) + r"\s+(\d{4}-\d{2}-\d{2})\b")

ActionKind = Literal["create", "schedule", "unschedule", "delete"]
Outcome = Literal["created", "replaced", "removed", "unchanged", "repaired"]


@dataclass(frozen=True)
class Desired:
    """One session the plan wants on Garmin: its date, content hash, name and workout JSON."""

    date: date
    content_hash: str
    name: str
    workout: Mapping[str, Any] = field(compare=False, repr=False)


@dataclass(frozen=True)
class Remote:
    """An evenstride workout found on Garmin, with every calendar entry it has."""

    workout_id: int
    name: str
    content_hash: str | None
    session_date: date | None
    schedules: tuple[tuple[int, date], ...] = ()

    def is_past(self, today: date) -> bool:
        dates = [d for _, d in self.schedules]
        if self.session_date is not None:
            dates.append(self.session_date)
        return any(d < today for d in dates)


@dataclass(frozen=True)
class Action:
    """One write. `create` = upload `desired` then schedule it on `date` (two requests)."""

    kind: ActionKind
    date: date
    workout_id: int | None = None
    schedule_id: int | None = None
    name: str = ""
    content_hash: str | None = None
    desired: Desired | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        what = {
            "create": f"upload and schedule {self.name!r}",
            "schedule": f"schedule workout {self.workout_id} ({self.name!r})",
            "unschedule": f"unschedule calendar entry {self.schedule_id} ({self.name!r})",
            "delete": f"delete workout {self.workout_id} ({self.name!r})",
        }[self.kind]
        return f"{self.date.isoformat()}: {what}"


@dataclass(frozen=True)
class Group:
    """All actions for one day, in the order they must run, and what they amount to."""

    date: date
    outcome: Outcome
    actions: tuple[Action, ...]
    keeper: int | None = None  # the workout id that stays (None until a `create` ran)
    content_hash: str | None = None


@dataclass(frozen=True)
class Reconciliation:
    groups: tuple[Group, ...]
    skipped_past: tuple[date, ...]

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(a for g in self.groups for a in g.actions)


# --------------------------------------------------------------------------- reading Garmin


def is_evenstride(name: str | None, description: str | None) -> bool:
    text = f"{name or ''} {description or ''}"
    return MARKER in text or TAG_RE.search(text) is not None


def hash_of(name: str | None, description: str | None) -> str | None:
    m = TAG_RE.search(f"{description or ''} {name or ''}")
    return m.group(1) if m else None


def date_of(name: str | None) -> date | None:
    m = NAME_DATE_RE.search(name or "")
    if not m:
        return None
    try:
        return date.fromisoformat(m.group(1))
    except ValueError:
        return None


def remote_workouts(
    workouts: Iterable[Mapping[str, Any]], calendar_items: Iterable[Mapping[str, Any]]
) -> list[Remote]:
    """evenstride's workouts from the library list and calendar items (deduped by id).

    A calendar entry titled with the marker whose workout is not in the library list is kept
    too (a dangling entry), so it can be cleaned up.
    """
    schedules: dict[int, dict[int, date]] = {}
    titles: dict[int, str] = {}
    for item in calendar_items:
        if item.get("itemType") != "workout" or item.get("workoutId") is None:
            continue
        try:
            day = date.fromisoformat(str(item.get("date"))[:10])
            sid, wid = int(item["id"]), int(item["workoutId"])
        except (KeyError, TypeError, ValueError):
            continue
        schedules.setdefault(wid, {})[sid] = day
        titles.setdefault(wid, str(item.get("title") or ""))
    found: dict[int, Remote] = {}
    for w in workouts:
        name, desc = w.get("workoutName"), w.get("description")
        if w.get("workoutId") is None or not is_evenstride(name, desc):
            continue
        wid = int(w["workoutId"])
        found[wid] = _remote(wid, str(name or ""), hash_of(name, desc), schedules.get(wid, {}))
    for wid, title in titles.items():
        if wid not in found and is_evenstride(title, None):
            found[wid] = _remote(wid, title, hash_of(title, None), schedules[wid])
    return sorted(found.values(), key=lambda r: r.workout_id)


def _remote(wid: int, name: str, h: str | None, sched: Mapping[int, date]) -> Remote:
    entries = tuple(sorted(sched.items(), key=lambda kv: (kv[1], kv[0])))
    session_date = date_of(name) or (entries[0][1] if entries else None)
    return Remote(wid, name, h, session_date, entries)


def desired_from_payloads(payloads: Iterable[Mapping[str, Any]], today: date) -> list[Desired]:
    """Sessions from ``garmin_workout_payloads`` dated today or later, each validated again.

    The second validation walks the exact JSON that will be sent, so an exercise that reaches
    the payload by any route is still checked against garminconnect's catalogue.
    """
    out = []
    for p in payloads:
        day = date.fromisoformat(str(p["date"]))
        if day < today:
            continue
        validate_all(workout_exercises(p["workout"]))
        out.append(Desired(day, str(p["content_hash"]), str(p["workout_name"]), p["workout"]))
    return sorted(out, key=lambda d: d.date)


def workout_exercises(workout: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every (category, exerciseName) of a Garmin workout JSON, repeat groups included."""
    pairs: list[tuple[str, str]] = []

    def walk(steps: Iterable[Mapping[str, Any]]) -> None:
        for step in steps:
            if step.get("category"):
                pairs.append((str(step["category"]), str(step.get("exerciseName") or "")))
            walk(step.get("workoutSteps") or ())

    for segment in workout.get("workoutSegments") or ():
        walk(segment.get("workoutSteps") or ())
    return pairs


# --------------------------------------------------------------------------- the decision


def reconcile(desired: Iterable[Desired], remote: Iterable[Remote], today: date) -> Reconciliation:
    """The groups of actions that make Garmin match `desired` (see the module docstring)."""
    wanted = {d.date: d for d in desired if d.date >= today}
    live = [r for r in remote if not r.is_past(today)]
    past = sorted({r.session_date for r in remote if r.is_past(today) and r.session_date})
    by_hash: dict[str, list[Remote]] = {}
    for r in live:
        if r.content_hash:
            by_hash.setdefault(r.content_hash, []).append(r)
    groups: list[Group] = []
    used: set[int] = set()
    for day, want in sorted(wanted.items()):
        twins = by_hash.get(want.content_hash, [])
        groups.append(_desired_group(want, twins, live, today))
        used.update(r.workout_id for r in live if r.session_date == day or r in twins)
    leftovers: dict[date, list[Remote]] = {}
    for r in live:
        if r.workout_id not in used and r.session_date is not None:
            leftovers.setdefault(r.session_date, []).append(r)
    for day, rs in leftovers.items():
        groups.append(Group(day, "removed", tuple(a for r in rs for a in _removal(r, day))))
    groups.sort(key=lambda g: g.date)
    return Reconciliation(tuple(groups), tuple(past))


def _desired_group(
    want: Desired, same_hash: list[Remote], live: list[Remote], today: date
) -> Group:
    day = want.date
    ranked = sorted(same_hash, key=lambda r: (not _future_entries(r, today), r.workout_id))
    keeper = ranked[0] if ranked else None
    actions: list[Action] = []
    if keeper is None:
        actions.append(
            Action("create", day, name=want.name, content_hash=want.content_hash, desired=want)
        )
    else:
        entries = _future_entries(keeper, today)
        if not entries:
            actions.append(
                Action(
                    "schedule",
                    day,
                    keeper.workout_id,
                    name=keeper.name,
                    content_hash=want.content_hash,
                )
            )
        seen: set[date] = set()
        for sid, d in entries:
            if d in seen:
                actions.append(Action("unschedule", day, keeper.workout_id, sid, keeper.name))
            seen.add(d)
    twins = {r.workout_id for r in same_hash}
    others = [
        r for r in live if r is not keeper and (r.session_date == day or r.workout_id in twins)
    ]
    for r in others:
        actions.extend(_removal(r, day))
    outcome: Outcome
    if any(r.content_hash != want.content_hash for r in others):
        outcome = "replaced"
    elif keeper is None or not _future_entries(keeper, today):
        outcome = "created"
    elif actions:
        outcome = "repaired"
    else:
        outcome = "unchanged"
    keeper_id = keeper.workout_id if keeper else None
    return Group(day, outcome, tuple(actions), keeper_id, want.content_hash)


def _future_entries(r: Remote, today: date) -> list[tuple[int, date]]:
    return [(sid, d) for sid, d in r.schedules if d >= today]


def _removal(r: Remote, day: date) -> list[Action]:
    """Unschedule every calendar entry, then delete the workout."""
    steps = [Action("unschedule", day, r.workout_id, sid, r.name) for sid, _ in r.schedules]
    steps.append(Action("delete", day, r.workout_id, name=r.name, content_hash=r.content_hash))
    return steps
