"""`evenstride athlete add|list|edit|remove`: the coach's roster and each athlete's profile.

A single runner needs no roster: everything defaults to the athlete named "default".
"""

from __future__ import annotations

from datetime import date
from typing import Any

import click

from evenstride.cli import exitcodes
from evenstride.cli.common import Fail, dump_json, store_of, table
from evenstride.planner import AthleteProfile, CoachOverrides
from evenstride.planner.models import EQUIPMENT

SOURCES = ("garmin", "strava")


def _profile_options(f):
    options = [
        click.option("--experience", type=click.Choice(["beginner", "experienced"])),
        click.option("--sessions-per-week", type=click.IntRange(1, 3)),
        click.option("--weekdays", help="Preferred strength days, e.g. mon,thu."),
        click.option("--equipment", help=f"Comma-separated: {', '.join(EQUIPMENT)}."),
        click.option("--units", type=click.Choice(["metric", "imperial"])),
        click.option("--sources", help="Comma-separated: garmin,strava."),
        click.option("--program-start", type=click.DateTime(["%Y-%m-%d"])),
        click.option(
            "--focus-side",
            type=click.Choice(["left", "right", "none", "auto"]),
            help="Coach override.",
        ),
        click.option(
            "--phase", type=click.IntRange(0, 3), help="Coach override (0 = follow the rules)."
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip().lower() for v in value.split(",") if v.strip()]


def _apply(profile: dict[str, Any], opts: dict[str, Any]) -> dict[str, Any]:
    """Merge command-line options into a stored profile, validating with the planner's types."""
    p = dict(profile)
    for key in ("experience", "sessions_per_week", "units"):
        if opts.get(key) is not None:
            p[key] = opts[key]
    for key in ("weekdays", "equipment", "sources"):
        values = _csv(opts.get(key))
        if values is not None:
            p[key] = values
    if opts.get("program_start") is not None:
        p["program_start"] = opts["program_start"].date().isoformat()
    overrides = dict(p.get("overrides") or {})
    if opts.get("focus_side") is not None:
        overrides.pop("focus_side", None)
        if opts["focus_side"] != "auto":
            overrides["focus_side"] = opts["focus_side"]
    if opts.get("phase") is not None:
        overrides.pop("phase", None)
        if opts["phase"]:
            overrides["phase"] = opts["phase"]
    p["overrides"] = overrides
    unknown = set(p.get("sources") or ()) - set(SOURCES)
    if unknown:
        raise Fail(
            f"unknown source(s) {sorted(unknown)}; known: {', '.join(SOURCES)}", exitcodes.USAGE
        )
    try:  # the planner's own types are the validation
        AthleteProfile(
            athlete="check",
            start_date=date.today(),
            experience=p.get("experience", "beginner"),
            sessions_per_week=p.get("sessions_per_week"),
            weekdays=tuple(p.get("weekdays") or ()),
            equipment=frozenset(p.get("equipment") or ("bodyweight",)),
            units=p.get("units", "metric"),
        )
        CoachOverrides(focus_side=overrides.get("focus_side"), phase=overrides.get("phase"))
    except ValueError as exc:
        raise Fail(str(exc), exitcodes.USAGE) from None
    return p


@click.group("athlete")
def athlete_group() -> None:
    """Manage the roster (a coach's athletes) and each athlete's profile."""


@athlete_group.command("add")
@click.argument("name")
@_profile_options
@click.pass_context
def add(ctx: click.Context, name: str, **opts: Any) -> None:
    """Add an athlete with a profile."""
    store = store_of(ctx)
    if store.get_athlete(name):
        raise Fail(
            f"athlete {name!r} exists; use `evenstride athlete edit {name}`", exitcodes.USAGE
        )
    profile = _apply({}, opts)
    store.ensure_athlete(name)
    store.update_athlete_profile(name, profile)
    click.echo(f"added {name}")


@athlete_group.command("edit")
@click.argument("name")
@_profile_options
@click.pass_context
def edit(ctx: click.Context, name: str, **opts: Any) -> None:
    """Change an athlete's profile (only the options given)."""
    store = store_of(ctx)
    row = store.get_athlete(name)
    if row is None:
        raise Fail(
            f"no athlete {name!r}; add it with `evenstride athlete add {name}`", exitcodes.USAGE
        )
    store.update_athlete_profile(name, _apply(row.get("profile") or {}, opts))
    click.echo(f"updated {name}")


@athlete_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """The roster with each profile."""
    store = store_of(ctx)
    rows = store.list_athletes()
    if as_json:
        dump_json([{"name": r["name"], "profile": r.get("profile") or {}} for r in rows])
        return
    body = []
    for r in rows:
        p = r.get("profile") or {}
        body.append(
            (
                r["name"],
                p.get("experience", "beginner"),
                p.get("sessions_per_week") or "",
                ",".join(p.get("weekdays") or []),
                ",".join(p.get("equipment") or ["bodyweight"]),
                ",".join(p.get("sources") or []),
                p.get("program_start", ""),
                ",".join(f"{k}={v}" for k, v in (p.get("overrides") or {}).items()),
            )
        )
    click.echo(
        table(
            body,
            (
                "athlete",
                "experience",
                "/week",
                "days",
                "equipment",
                "sources",
                "program start",
                "overrides",
            ),
        )
    )


@athlete_group.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def remove(ctx: click.Context, name: str, yes: bool) -> None:
    """Remove an athlete and their stored activities (the raw archive keeps the files)."""
    store = store_of(ctx)
    if store.get_athlete(name) is None:
        raise Fail(f"no athlete {name!r}", exitcodes.USAGE)
    if not yes:
        if not click.get_text_stream("stdin").isatty():
            raise Fail("refusing to remove without --yes when not on a terminal", exitcodes.USAGE)
        click.confirm(f"Remove {name} and all their stored activities?", abort=True)
    store.remove_athlete(name)
    click.echo(f"removed {name} (credentials: run `evenstride logout garmin --athlete {name}`)")
