"""`evenstride plan`: the strength plan for an athlete, printed or written in several formats."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import click

from evenstride.cli import exitcodes
from evenstride.cli.common import Fail, dump_json, home_of, store_of
from evenstride.planner import (
    Plan,
    fit_workouts,
    plan_to_html,
    plan_to_ics,
    plan_to_json,
    plan_to_markdown,
    rules_tables,
)
from evenstride.plans import last_plan, make_plan, plans_dir, save_plan
from evenstride.store.archive import make_private_dir, write_private_file

FORMATS = ("md", "html", "json", "ics", "fit")
RENDERERS: dict[str, Callable[[Plan], str | bytes]] = {
    "md": plan_to_markdown,
    "html": plan_to_html,
    "json": plan_to_json,
    "ics": plan_to_ics,
}  # "fit" is one file per session: fit_workouts
__all__ = ["last_plan", "make_plan", "plan_cmd", "plans_dir", "save_plan", "write_formats"]


def write_formats(plan: Plan, out: Path, formats: tuple[str, ...]) -> list[Path]:
    """Write the plan in each format under `out` (new folders 0700, files 0600); returns the
    files written."""
    out = out.expanduser()  # as write_private_file does, so folders and files agree
    make_private_dir(out)
    written = []
    stem = f"evenstride-plan-{plan.athlete}"
    for fmt in formats:
        if fmt == "fit":
            folder = out / f"{stem}-fit"
            make_private_dir(folder)
            for name, data in fit_workouts(plan).items():
                written.append(write_private_file(folder / name, data))
        else:
            path = out / f"{stem}.{fmt}"
            written.append(write_private_file(path, RENDERERS[fmt](plan)))
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
