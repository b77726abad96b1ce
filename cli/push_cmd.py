"""`evenstride push garmin`: the plan's sessions as scheduled strength workouts on Garmin Connect.

Register with ``push.add_command(push_garmin)`` in a ``push`` group. Never prompts (safe for
cron). How the push stays idempotent and interruption-safe: connectors/garmin/push.py.

Exit codes (cli/exitcodes.py): 0 done (or nothing to do); 2 an exercise Garmin does not know
(nothing was sent) or no usable keyring; 3 login needed; 4 Garmin answered 429: stopped, what was
done is kept, run it again later; 5 Garmin unavailable; 6 local storage problem.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any, NoReturn

import click

from evenstride.cli import exitcodes
from evenstride.connectors import secrets
from evenstride.connectors.garmin.errors import GarminError
from evenstride.connectors.garmin.push import MAX_WEEKS, PushSummary, push_plan
from evenstride.planner import UnknownExerciseError
from evenstride.store.errors import StoreError

VERBS = {"created": "create", "replaced": "replace", "removed": "remove", "repaired": "repair"}


def _fail(code: int, message: str, summary: PushSummary | None, as_json: bool) -> NoReturn:
    if as_json:
        out: dict[str, Any] = {"error": message, "exit_code": code}
        if summary is not None:
            out["summary"] = summary.to_json()
        click.echo(json.dumps(out, sort_keys=True))
    else:
        if summary is not None:
            _report(summary)
        click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _report(summary: PushSummary) -> None:
    """One line per changed day (what would happen in a dry run), then the summary line."""
    for change in summary.changes:
        verb = VERBS.get(change["outcome"], change["outcome"])
        head = f"would {verb}" if summary.dry_run else f"{change['outcome']}"
        click.echo(f"{head:<14} {change['date']}  {change['name']}")
        for action in change["actions"]:
            click.echo(f"    {action}")
    click.echo(summary.line())


@click.command("garmin")
@click.option("--athlete", default="default", show_default=True, help="Whose plan and account.")
@click.option("--dry-run", is_flag=True, help="Show what would be created, replaced and removed.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option(
    "--today",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Push as if today were this date (sessions before it are never touched).",
)
@click.option(
    "--weeks",
    type=click.IntRange(1, MAX_WEEKS),
    default=None,
    help="Plan horizon in weeks [default: that of the saved plan, else 4].",
)
@click.pass_context
def push_garmin(
    ctx: click.Context,
    athlete: str,
    dry_run: bool,
    as_json: bool,
    today: dt.datetime | None,
    weeks: int | None,
) -> None:
    """Push the plan to Garmin Connect as scheduled strength workouts (idempotent)."""
    from evenstride.store import open_store

    day = today.date() if today else dt.date.today()
    home = ctx.find_root().obj["home"]
    try:
        with open_store(home) as store:
            summary = push_plan(store, home, athlete, today=day, dry_run=dry_run, weeks=weeks)
    except UnknownExerciseError as e:
        _fail(exitcodes.USAGE, f"nothing was sent: {e}", None, as_json)
    except secrets.KeyringUnavailableError as e:
        _fail(exitcodes.USAGE, e.message, None, as_json)
    except GarminError as e:
        partial: PushSummary | None = getattr(e, "summary", None)
        message = e.message
        if partial is not None and partial.retry_hint:
            message += f" ({partial.retry_hint})"
        if partial is not None and partial.pending:
            message += "; what was done is kept, run `evenstride push garmin` again to finish"
        _fail(e.exit_code, message, partial, as_json)
    except StoreError as e:
        _fail(exitcodes.STORAGE, str(e), None, as_json)
    if as_json:
        click.echo(json.dumps(summary.to_json(), sort_keys=True))
    else:
        _report(summary)
    sys.exit(summary.exit_code)
