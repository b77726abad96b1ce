"""`evenstride nightly`: the unattended job (sync -> trends -> plan -> push) for every athlete.

Register with ``cli.add_command(nightly_cmd)``. The work is in `evenstride.nightly`; this module
maps its outcomes to exit codes and keeps stdout to one line per athlete (cron mails it).
"""

from __future__ import annotations

import datetime as dt

import click

from evenstride import nightly
from evenstride.cli.common import Fail, home_of
from evenstride.store.errors import StoreError

EXIT_CODES_HELP = (
    "Exit codes: 0 every athlete completed; 1 some athletes failed (the others completed, "
    "see the log); 2 configuration error (no keyring backend, unknown athlete, bad option); "
    "6 local storage problem; 75 another nightly run holds the lock (nothing done, try later); "
    "130 interrupted."
)


@click.command("nightly", epilog=EXIT_CODES_HELP)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Sync and plan locally as usual, but only compare the plan with the Garmin calendar: "
    "no workout or calendar entry is created, changed or removed.",
)
@click.option(
    "--athlete",
    "athletes",
    multiple=True,
    help="Only this athlete (repeatable; default: the whole roster, or 'default').",
)
@click.option("--weeks", default=4, show_default=True, type=click.IntRange(1, 24))
@click.option("--today", type=click.DateTime(["%Y-%m-%d"]), default=None, hidden=True)
@click.pass_context
def nightly_cmd(
    ctx: click.Context,
    dry_run: bool,
    athletes: tuple[str, ...],
    weeks: int,
    today: dt.datetime | None,
) -> None:
    """Sync, assess trends, re-plan and push to Garmin for every athlete, unattended.

    Per athlete, in roster order: sync the sources of the athlete's profile (default: those
    with a stored login), then summaries, trend verdict, plan (saved under --home) and the push
    of the plan to the Garmin calendar. One athlete's failure never stops the others. Prints
    one summary line per athlete; details go to <home>/logs/nightly.log (rotated, 0600).
    Only one nightly run at a time: a second one exits at once with code 75.
    `evenstride cron` prints a crontab line and systemd units for this job.
    """
    home = home_of(ctx)
    try:
        code = nightly.run_nightly(
            home,
            athletes=athletes,
            dry_run=dry_run,
            today=today.date() if today else None,
            weeks=weeks,
            echo=click.echo,
            warn=lambda msg: click.echo(f"evenstride: {msg}", err=True),
        )
    except nightly.LockHeldError as exc:
        raise Fail(str(exc), nightly.EXIT_LOCKED) from None
    except nightly.ConfigError as exc:
        raise Fail(str(exc), nightly.EXIT_CONFIG) from None
    except StoreError as exc:
        raise Fail(str(exc), nightly.EXIT_STORAGE) from None
    except OSError as exc:
        raise Fail(f"cannot use {home}: {exc.strerror or exc}", nightly.EXIT_STORAGE) from None
    ctx.exit(code)
