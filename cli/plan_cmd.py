"""`evenstride plan`: the strength plan for an athlete, printed or written in several formats."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import click

from evenstride.analysis import plan_inputs
from evenstride.cli import exitcodes
from evenstride.cli.common import Fail, dump_json, home_of, store_of
from evenstride.planner import (
    Plan,
    build_plan,
    fit_workouts,
    plan_to_html,
    plan_to_ics,
    plan_to_markdown,
    rules_tables,
)
from evenstride.store import Store
from evenstride.store.archive import make_private_dir

FORMATS = ("md", "html", "json", "ics", "fit")


def plans_dir(home: Path, athlete: str) -> Path:
    return home / "plans" / athlete


def last_plan(home: Path, athlete: str) -> Plan | None:
    """The plan generated last time (its past sessions are kept as they were)."""
    path = plans_dir(home, athlete) / "latest.json"
    return Plan.from_json(path.read_text()) if path.exists() else None


def save_plan(home: Path, plan: Plan) -> Path:
    folder = plans_dir(home, plan.athlete)
    make_private_dir(folder)
    path = folder / "latest.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(plan.to_json())
    tmp.chmod(0o600)
    tmp.replace(path)
    return path


def make_plan(store: Store, home: Path, athlete: str, *, today: date, weeks: int) -> Plan:
    """Assess the athlete's trend and build the plan; the program start is fixed on first use."""
    store.ensure_athlete(athlete)
    profile_row = dict((store.get_athlete(athlete) or {}).get("profile") or {})
    if "program_start" not in profile_row:
        profile_row["program_start"] = today.isoformat()
        store.update_athlete_profile(athlete, profile_row)
    assessment, profile, overrides, hard = plan_inputs(store, athlete, today=today)
    previous = last_plan(home, athlete)
    past = [s for s in previous.sessions if s.date < today] if previous else None
    return build_plan(
        assessment, profile, today=today, weeks=weeks, hard_run_dates=hard,
        overrides=overrides, past_sessions=past,
    )  # fmt: skip


def write_formats(plan: Plan, out: Path, formats: tuple[str, ...]) -> list[Path]:
    """Write the plan in each format under `out`; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    stem = f"evenstride-plan-{plan.athlete}"
    text = {
        "md": lambda: plan_to_markdown(plan).encode(),
        "html": lambda: plan_to_html(plan).encode(),
        "json": lambda: plan.to_json().encode(),
        "ics": lambda: plan_to_ics(plan),
    }
    for fmt in formats:
        if fmt == "fit":
            folder = out / f"{stem}-fit"
            folder.mkdir(exist_ok=True)
            for name, data in fit_workouts(plan).items():
                (folder / name).write_bytes(data)
                written.append(folder / name)
        else:
            path = out / f"{stem}.{fmt}"
            path.write_bytes(text[fmt]())
            written.append(path)
    return written


@click.command("plan")
@click.option("--athlete", default="default", show_default=True)
@click.option("--weeks", default=4, show_default=True, type=click.IntRange(1, 24))
@click.option(
    "--format", "formats", multiple=True, type=click.Choice(FORMATS),
    help="Write these formats (repeatable) into --out.",
)  # fmt: skip
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), help="Folder for --format files."
)
@click.option("--rules", is_flag=True, help="Print the rule tables the planner uses, and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option(
    "--today",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Plan as if today were this date.",
)
@click.pass_context
def plan_cmd(
    ctx: click.Context, athlete: str, weeks: int, formats: tuple[str, ...], out: Path | None,
    rules: bool, as_json: bool, today: datetime | None,
) -> None:  # fmt: skip
    """The strength plan: focus side, dose, phase and dated sessions, with the evidence and rules."""
    if rules:
        if as_json:
            dump_json(rules_tables())
        else:
            for name, rows in rules_tables().items():
                click.echo(f"## {name}")
                for row in rows:
                    click.echo("  " + ", ".join(f"{k}={v}" for k, v in row.items()))
                click.echo("")
        return
    if formats and out is None:
        raise Fail("--format needs --out DIR", exitcodes.USAGE)
    store = store_of(ctx)
    home = home_of(ctx)
    day = today.date() if today else date.today()
    plan = make_plan(store, home, athlete, today=day, weeks=weeks)
    save_plan(home, plan)
    if as_json:
        click.echo(json.dumps(json.loads(plan.to_json()), indent=2))
    elif not formats:
        click.echo(plan_to_markdown(plan))
    if formats:
        for path in write_formats(plan, out, formats):
            click.echo(f"wrote {path}")
