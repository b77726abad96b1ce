"""`evenstride login|logout|sync garmin`: interactive login once, unattended sync forever.

Register with: ``login.add_command(login_garmin)``, ``logout.add_command(logout_garmin)``,
``sync.add_command(sync_garmin)``. Exit codes are documented in connectors/garmin/errors.py.
`sync` never prompts; `login` prompts only when stdin is a terminal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from pathlib import Path
from typing import NoReturn

import click

from evenstride.cli.common import is_tty, progress_hooks
from evenstride.connectors import secrets
from evenstride.connectors.garmin import auth
from evenstride.connectors.garmin.errors import EXIT_AUTH, EXIT_NO_KEYRING, GarminError
from evenstride.connectors.garmin.sync import SyncOptions, SyncSummary, run_sync

ATHLETE_OPTION = click.option(
    "--athlete", default="default", show_default=True, help="Whose Garmin account this is."
)


def _interactive() -> bool:
    """True when a person can answer prompts (cron, CI and pipes cannot)."""
    return sys.stdin.isatty()


def _fail(code: int, message: str, *, as_json: bool = False) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"error": message, "exit_code": code}))
    else:
        click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.command("garmin")
@ATHLETE_OPTION
@click.option("--email", help="Garmin Connect account email (asked for when omitted).")
@click.option(
    "--save-password",
    is_flag=True,
    help="Also keep the password in the keyring, so an unattended sync can log in again when "
    "Garmin refuses the tokens (not with MFA accounts). Off by default.",
)
@click.option(
    "--token-store",
    type=click.Path(exists=True, path_type=Path),
    help="Import tokens another garminconnect (>= 0.3) tool saved: its GARMINTOKENS file or "
    "folder. Works without a terminal.",
)
def login_garmin(
    athlete: str, email: str | None, save_password: bool, token_store: Path | None
) -> None:
    """Log in to Garmin Connect once; the tokens go to the OS keyring."""
    try:
        if token_store is not None:
            name = auth.import_token_store(athlete, token_store)
        else:
            if not _interactive():
                _fail(
                    EXIT_AUTH,
                    "`login garmin` needs a terminal for the email, password and MFA prompts "
                    "(or import tokens with --token-store PATH)",
                )
            secrets.ensure_backend()
            email = email or click.prompt("Garmin Connect email")
            password = click.prompt("Password", hide_input=True)
            name = auth.password_login(
                athlete,
                email,
                password,
                lambda: click.prompt("MFA code Garmin just sent you").strip(),
                save_password=save_password,
            )
    except secrets.KeyringUnavailableError as e:
        _fail(EXIT_NO_KEYRING, e.message)
    except GarminError as e:
        _fail(e.exit_code, e.message)
    kept = "tokens and password" if save_password and token_store is None else "tokens"
    click.echo(
        f"Logged in to Garmin Connect as {name} (athlete {athlete}); {kept} saved in the "
        f"keyring ({secrets.backend_name()})."
    )


@click.command("garmin")
@ATHLETE_OPTION
def logout_garmin(athlete: str) -> None:
    """Forget the Garmin tokens (and a saved password) of this athlete."""
    try:
        removed = auth.forget(athlete)
    except secrets.KeyringUnavailableError as e:
        _fail(EXIT_NO_KEYRING, e.message)
    if removed:
        click.echo(f"Forgot the Garmin login of athlete {athlete} ({', '.join(removed)}).")
    else:
        click.echo(f"No Garmin login was stored for athlete {athlete}.")


def _report(summary: SyncSummary, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary.to_json(), sort_keys=True))
        return
    for f in summary.failed:
        click.echo(f"failed: activity {f['activity_id']}: {f['reason']}", err=True)
    for m in summary.balance_mismatches:
        click.echo(
            f"warning: activity {m['activity_id']}: Garmin's GCT balance "
            f"{m['garmin_avg_gct_balance']:.2f}% L vs the FIT session's "
            f"{m['fit_avg_stance_time_balance']:.2f}% ({m['diff_pp']:.2f} pp apart)",
            err=True,
        )
    click.echo(summary.line())


@click.command("garmin")
@ATHLETE_OPTION
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Backfill from this date (YYYY-MM-DD, UTC) instead of the saved cursor.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option("--retry-failed", is_flag=True, help="Download again runs marked failed before.")
@click.option("--page-size", default=100, show_default=True, hidden=True, type=click.IntRange(1))
@click.pass_context
def sync_garmin(
    ctx: click.Context,
    athlete: str,
    since: dt.datetime | None,
    as_json: bool,
    retry_failed: bool,
    page_size: int,
) -> None:
    """Fetch new runs (ORIGINAL FIT files) from Garmin Connect. Never prompts."""
    from evenstride.store import open_store

    opts = SyncOptions(
        athlete=athlete,
        since=since.date() if since else None,
        page_size=page_size,
        retry_failed=retry_failed,
    )
    with contextlib.ExitStack() as stack:
        on_listed, on_handled = progress_hooks(stack, "garmin", show=is_tty() and not as_json)
        try:
            store = stack.enter_context(open_store(ctx.obj["home"]))
            summary = run_sync(store, opts, on_listed=on_listed, on_handled=on_handled)
        except secrets.KeyringUnavailableError as e:
            _fail(EXIT_NO_KEYRING, e.message, as_json=as_json)
        except GarminError as e:
            _fail(e.exit_code, e.message, as_json=as_json)
    _report(summary, as_json)
    if summary.stopped and not as_json:
        click.echo(f"error: {summary.stopped}", err=True)
    sys.exit(summary.exit_code)
