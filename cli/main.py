"""The `evenstride` command group: global options, command registration, clean failures."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
import platformdirs

from evenstride import __version__
from evenstride.cli import exitcodes
from evenstride.cli.activities_cmd import activities_cmd
from evenstride.cli.athlete_cmd import athlete_group
from evenstride.cli.audit_cmd import audit_cmd
from evenstride.cli.connectors_cmd import connectors_cmd
from evenstride.cli.cron_cmd import cron_cmd
from evenstride.cli.demo_cmd import demo_cmd
from evenstride.cli.garmin_cmds import login_garmin, logout_garmin, sync_garmin
from evenstride.cli.import_cmd import import_cmd
from evenstride.cli.nightly_cmd import nightly_cmd
from evenstride.cli.plan_cmd import plan_cmd
from evenstride.cli.push_cmd import push_garmin
from evenstride.cli.raw_cmd import raw_cmd
from evenstride.cli.report_cmd import report_cmd
from evenstride.cli.strava_cmds import login_strava, logout_strava, sync_strava
from evenstride.store.errors import StoreError


def default_home() -> Path:
    """Where data lives unless --home / EVENSTRIDE_HOME say otherwise."""
    return Path(platformdirs.user_data_dir("evenstride", appauthor=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="evenstride")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="EVENSTRIDE_HOME",
    default=None,
    help="Folder for the database and the raw-file archive "
    "[env: EVENSTRIDE_HOME; default: the platform's user data folder].",
)
@click.pass_context
def cli(ctx: click.Context, home: Path | None) -> None:
    """evenstride: GCT balance and cadence trends, and a single-leg strength plan.

    Exit codes: 0 ok, 1 some items failed, 2 usage/configuration, 3 login needed,
    4 rate limited, 5 service unavailable, 6 local storage problem, 75 another nightly run
    holds the lock, 130 interrupted.
    """
    ctx.ensure_object(dict)
    ctx.obj["home"] = (home or default_home()).expanduser()


@cli.group("login")
def login_group() -> None:
    """Log in to a platform once; tokens go to the OS keyring."""


@cli.group("logout")
def logout_group() -> None:
    """Forget a platform's stored tokens."""


@cli.group("sync")
def sync_group() -> None:
    """Fetch new activities from a platform (non-interactive: safe for cron)."""


@cli.group("push")
def push_group() -> None:
    """Send the current plan to a platform (idempotent; --dry-run shows the changes)."""


push_group.add_command(push_garmin, "garmin")
login_group.add_command(login_garmin, "garmin")
logout_group.add_command(logout_garmin, "garmin")
sync_group.add_command(sync_garmin, "garmin")
login_group.add_command(login_strava, "strava")
logout_group.add_command(logout_strava, "strava")
sync_group.add_command(sync_strava, "strava")
cli.add_command(import_cmd)
cli.add_command(activities_cmd)
cli.add_command(demo_cmd)
cli.add_command(connectors_cmd)
cli.add_command(plan_cmd)
cli.add_command(athlete_group)
cli.add_command(report_cmd)
cli.add_command(nightly_cmd)
cli.add_command(cron_cmd)
cli.add_command(audit_cmd)
cli.add_command(raw_cmd)


def main() -> None:
    """Console-script entry point: user errors become one line and an exit code, never a traceback."""
    if not logging.getLogger().handlers:
        # Without a handler, Python prints WARNING records (ours: "reading Garmin again", and
        # libraries') to stderr through logging.lastResort, beside the one-line error.
        # `nightly` logs to its own file; everything else reports through its output.
        logging.getLogger().addHandler(logging.NullHandler())
    try:
        # Without standalone mode click *returns* the code of `ctx.exit(code)` instead of
        # exiting with it (nightly, import, sync strava use ctx.exit): keep it.
        rv = cli.main(prog_name="evenstride", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(exitcodes.INTERRUPTED)
    except KeyboardInterrupt:
        click.echo("interrupted: everything committed so far is kept", err=True)
        sys.exit(exitcodes.INTERRUPTED)
    except StoreError as exc:
        click.echo(f"evenstride: {exc}", err=True)
        sys.exit(exitcodes.STORAGE)
    except OSError as exc:
        click.echo(
            f"evenstride: {exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}", err=True
        )
        sys.exit(exitcodes.STORAGE)
    sys.exit(rv if isinstance(rv, int) and not isinstance(rv, bool) else exitcodes.OK)


if __name__ == "__main__":  # pragma: no cover
    main()
