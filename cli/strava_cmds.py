"""`evenstride login|logout|sync strava`: log in once (browser or refresh token), sync forever.

Register with ``login.add_command(login_strava)``, ``logout.add_command(logout_strava)`` and
``sync.add_command(sync_strava)``. Exit codes: cli/exitcodes.py (3 = log in again, 4 = rate
limited or budget kept back, 2 = configuration incl. Strava's "application inactive").
Nothing ever prompts when stdin is not a terminal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from typing import NoReturn

import click

from evenstride.cli import exitcodes
from evenstride.cli.common import Fail, dump_json, is_tty, progress_hooks, store_of
from evenstride.connectors import secrets
from evenstride.connectors.strava import auth
from evenstride.connectors.strava.client import AppCredentials
from evenstride.connectors.strava.errors import StravaError
from evenstride.connectors.strava.sync import SyncOptions, SyncSummary, sync

ATHLETE_OPTION = click.option(
    "--athlete", default="default", show_default=True, help="Whose Strava account this is."
)


def _interactive() -> bool:
    """True when a person can answer prompts (cron, CI and pipes cannot)."""
    return sys.stdin.isatty()


def _fail(message: str, code: int, *, as_json: bool = False) -> NoReturn:
    if as_json:
        dump_json({"error": message, "exit_code": code})
    raise Fail(message, code)


def _app(athlete: str, client_id: str | None, client_secret: str | None) -> AppCredentials:
    """The API application from options/env, else the keyring, else prompts (terminal only)."""
    if client_id and client_secret:
        return auth.parse_app(client_id, client_secret)
    stored = auth.load_app()
    same_app = stored is not None and (
        not client_id or str(client_id).strip() == str(stored.client_id)
    )
    if stored is not None and same_app and not client_secret:
        return stored
    if not _interactive():
        opt = "" if athlete == "default" else f" --athlete {athlete}"
        _fail(
            "no Strava API application stored yet: run `evenstride login strava"
            f"{opt} --client-id ID` with EVENSTRIDE_STRAVA_CLIENT_SECRET set, or run it in a "
            "terminal (create the application at https://www.strava.com/settings/api)",
            exitcodes.AUTH_NEEDED,
        )
    click.echo("Your Strava API application (https://www.strava.com/settings/api):", err=True)
    client_id = client_id or click.prompt("Client ID", err=True)
    client_secret = client_secret or click.prompt("Client Secret", hide_input=True, err=True)
    return auth.parse_app(str(client_id), str(client_secret))


@click.command("strava")
@ATHLETE_OPTION
@click.option("--client-id", envvar="EVENSTRIDE_STRAVA_CLIENT_ID", help="Your API app's id.")
@click.option(
    "--client-secret",
    envvar="EVENSTRIDE_STRAVA_CLIENT_SECRET",
    help="Your API app's secret (prefer the environment variable; asked for when missing).",
)
@click.option(
    "--refresh-token",
    help="Log in with a refresh token you already hold (servers without a browser); "
    "'-' reads it from standard input.",
)
@click.option("--no-browser", is_flag=True, help="Only print the URL; do not open a browser.")
@click.option("--port", default=0, type=click.IntRange(0, 65535), help="Callback port (0: any).")
@click.option("--timeout", default=300, type=click.IntRange(5), hidden=True)
def login_strava(
    athlete: str,
    client_id: str | None,
    client_secret: str | None,
    refresh_token: str | None,
    no_browser: bool,
    port: int,
    timeout: int,
) -> None:
    """Log in to Strava once (scopes read,activity:read_all); tokens go to the OS keyring."""
    try:
        secrets.ensure_backend()
        if refresh_token is None and not _interactive():
            _fail(
                "`login strava` needs a terminal and a browser; on a server pass a refresh "
                "token you hold: `evenstride login strava --refresh-token -` (reads stdin)",
                exitcodes.AUTH_NEEDED,
            )
        app = _app(athlete, client_id, client_secret)
        warnings: list[str] = []
        if refresh_token is not None:
            token = sys.stdin.readline() if refresh_token == "-" else refresh_token
            who = auth.refresh_token_login(athlete, app, token)
        else:
            who, warnings = auth.browser_login(
                athlete,
                app,
                announce=lambda url: click.echo(
                    f"Open this URL to authorise evenstride on Strava:\n  {url}", err=True
                ),
                open_browser=not no_browser,
                port=port,
                timeout_s=float(timeout),
            )
    except secrets.KeyringUnavailableError as e:
        _fail(e.message, exitcodes.USAGE)
    except StravaError as e:
        _fail(e.message, e.exit_code)
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    name = " ".join(str(who.get(k) or "") for k in ("firstname", "lastname")).strip()
    ident = (
        f"{name} (Strava athlete {who.get('id')})" if name else f"Strava athlete {who.get('id')}"
    )
    click.echo(
        f"Logged in to Strava as {ident} for athlete {athlete}; tokens saved in the keyring "
        f"({secrets.backend_name()})."
    )


@click.command("strava")
@ATHLETE_OPTION
@click.option("--revoke", is_flag=True, help="Also revoke evenstride's access at Strava.")
@click.option("--forget-app", is_flag=True, help="Also forget the API application credentials.")
def logout_strava(athlete: str, revoke: bool, forget_app: bool) -> None:
    """Forget this athlete's Strava tokens (and optionally revoke them at Strava)."""
    try:
        revoked = None
        if revoke:
            try:
                revoked = auth.open_client(athlete).revoke()
            except StravaError:
                revoked = False
        removed = auth.forget(athlete, app=forget_app)
    except secrets.KeyringUnavailableError as e:
        _fail(e.message, exitcodes.USAGE)
    if revoke:
        click.echo("Revoked at Strava." if revoked else "Could not revoke at Strava.", err=True)
    if removed:
        click.echo(f"Forgot the Strava {' and '.join(removed)} of athlete {athlete}.")
    else:
        click.echo(f"No Strava login was stored for athlete {athlete}.")


def _report(summary: SyncSummary, as_json: bool) -> None:
    if as_json:
        dump_json(summary.to_json())
        return
    for f in summary.failed:
        click.echo(f"failed: activity {f['activity_id']}: {f['reason']}", err=True)
    for n in summary.without_streams:
        click.echo(f"note: activity {n['activity_id']}: {n['note']}")
    click.echo(summary.line())


@click.command("strava")
@ATHLETE_OPTION
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Backfill from this date (YYYY-MM-DD, UTC) instead of the saved cursor.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def sync_strava(ctx: click.Context, athlete: str, since: dt.datetime | None, as_json: bool) -> None:
    """Fetch new runs (streams: cadence, pace, heart rate) from Strava. Never prompts."""
    store = store_of(ctx)
    try:
        client = auth.open_client(athlete)
    except secrets.KeyringUnavailableError as e:
        _fail(e.message, exitcodes.USAGE, as_json=as_json)
    except StravaError as e:
        _fail(e.message, e.exit_code, as_json=as_json)
    opts = SyncOptions(athlete=athlete, since=since.date() if since else None)
    with contextlib.ExitStack() as stack:
        on_listed, on_handled = progress_hooks(stack, "strava", show=is_tty() and not as_json)
        try:
            summary = sync(client, store, opts, on_listed=on_listed, on_handled=on_handled)
        except secrets.KeyringUnavailableError as e:
            _fail(e.message, exitcodes.USAGE, as_json=as_json)
    _report(summary, as_json)
    if summary.stopped and not as_json:
        click.echo(f"evenstride: {summary.stopped}", err=True)
    ctx.exit(summary.exit_code)
