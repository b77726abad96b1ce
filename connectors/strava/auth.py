"""Strava login: the user's own API application, OAuth authorization-code flow, keyring tokens.

Why the user's own application: Strava's Standard Tier caps an app at 10 athletes and (since
2026) needs its owner's subscription, so evenstride ships no shared app. The client id/secret
are kept once per installation (keyring item ``strava/_app/credentials``: a coach's athletes all
authorise the coach's app); each athlete's tokens live at ``strava/<athlete>/tokens``.

Refresh tokens rotate: once Strava hands out a new one the old one stops working, so every
refresh is written to the keyring at once (StravaClient's `on_tokens`), even mid-sync.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets as pysecrets
import webbrowser
from collections.abc import Callable
from typing import Any

from evenstride.connectors import secrets
from evenstride.connectors.strava.callback import OneShotCallback
from evenstride.connectors.strava.client import (
    AppCredentials,
    Settings,
    StravaClient,
    Tokens,
)
from evenstride.connectors.strava.errors import AuthRequiredError, ConfigError
from evenstride.connectors.strava.ratelimit import RateBudget

SOURCE = "strava"
APP_OWNER = "_app"  # pseudo-athlete holding the installation's API application
APP_ITEM = "credentials"
TOKENS = "tokens"
LOGIN_TIMEOUT_S = 300.0


def login_hint(athlete: str) -> str:
    """The command that fixes a missing or refused login."""
    opt = "" if athlete == "default" else f" --athlete {athlete}"
    return f"run `evenstride login strava{opt}` again"


def parse_app(client_id: str | int, client_secret: str) -> AppCredentials:
    """Validate what the user typed (the id is a number on strava.com/settings/api)."""
    try:
        cid = int(str(client_id).strip())
    except ValueError:
        raise ConfigError("the Strava client id is a number (strava.com/settings/api)") from None
    secret = client_secret.strip()
    if cid <= 0 or not re.fullmatch(r"[0-9A-Za-z]{20,80}", secret):
        raise ConfigError("that does not look like a Strava client id and secret")
    return AppCredentials(cid, secret)


def load_app() -> AppCredentials | None:
    text = secrets.get_secret(SOURCE, APP_OWNER, APP_ITEM)
    if not text:
        return None
    data = json.loads(text)
    return AppCredentials(int(data["client_id"]), str(data["client_secret"]))


def save_app(app: AppCredentials) -> None:
    value = json.dumps({"client_id": app.client_id, "client_secret": app.client_secret})
    secrets.set_secret(SOURCE, APP_OWNER, APP_ITEM, value)


def load_tokens(athlete: str) -> Tokens | None:
    text = secrets.get_secret(SOURCE, athlete, TOKENS)
    return Tokens.from_dict(json.loads(text)) if text else None


def save_tokens(athlete: str, tokens: Tokens) -> None:
    secrets.set_secret(SOURCE, athlete, TOKENS, json.dumps(tokens.to_dict()))


def forget(athlete: str, *, app: bool = False) -> list[str]:
    """Delete this athlete's tokens (and the app credentials with `app`); what was removed."""
    removed = ["tokens"] if secrets.delete_secret(SOURCE, athlete, TOKENS) else []
    if app and secrets.delete_secret(SOURCE, APP_OWNER, APP_ITEM):
        removed.append("application credentials")
    return removed


def _client(
    athlete: str,
    app: AppCredentials,
    tokens: Tokens | None = None,
    *,
    settings: Settings | None = None,
    budget: RateBudget | None = None,
) -> StravaClient:
    return StravaClient(
        app,
        tokens,
        settings=settings,
        budget=budget,
        on_tokens=lambda t: save_tokens(athlete, t),
        login_hint=login_hint(athlete),
    )


def open_client(
    athlete: str, *, settings: Settings | None = None, budget: RateBudget | None = None
) -> StravaClient:
    """A client with the saved app and tokens (no network yet). Never prompts."""
    app = load_app()
    tokens = load_tokens(athlete)
    if app is None or tokens is None:
        raise AuthRequiredError(f"not logged in to Strava: {login_hint(athlete)}")
    return _client(athlete, app, tokens, settings=settings, budget=budget)


def _remember_athlete(athlete: str, client: StravaClient, who: dict[str, Any]) -> None:
    if client.tokens is not None and who.get("id") is not None:
        client.tokens.athlete_id = int(who["id"])
        save_tokens(athlete, client.tokens)


def refresh_token_login(
    athlete: str, app: AppCredentials, refresh_token: str, *, settings: Settings | None = None
) -> dict[str, Any]:
    """Log in with a refresh token the user already holds (servers without a browser)."""
    secrets.ensure_backend()
    token = refresh_token.strip()
    if not token:
        raise ConfigError("the refresh token is empty")
    client = _client(athlete, app, Tokens("", token, 0), settings=settings)
    client.refresh()  # validates it and persists the rotated pair at once
    save_app(app)
    who = client.athlete()
    _remember_athlete(athlete, client, who)
    return who


def _safe(text: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9_:. -]", "", text or "")[:60]


def browser_login(
    athlete: str,
    app: AppCredentials,
    *,
    announce: Callable[[str], None],
    open_browser: bool = True,
    port: int = 0,
    timeout_s: float = LOGIN_TIMEOUT_S,
    settings: Settings | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The authorization-code flow through a one-shot 127.0.0.1 callback.

    Returns (athlete JSON, warnings). `announce` receives the URL to open (printed by the CLI).
    """
    secrets.ensure_backend()
    state = pysecrets.token_urlsafe(24)
    client = _client(athlete, app, settings=settings)
    with OneShotCallback(port) as callback:
        url = client.authorization_url(callback.redirect_uri, state)
        announce(url)
        if open_browser:
            with contextlib.suppress(webbrowser.Error):
                webbrowser.open(url)
        result = callback.wait(timeout_s)
    if result is None:
        raise AuthRequiredError(f"no answer from the browser within {int(timeout_s)} s")
    if result.state != state:
        raise AuthRequiredError("the OAuth answer did not carry our state: ignored (try again)")
    if result.error or not result.code:
        raise AuthRequiredError(f"Strava did not authorise evenstride ({_safe(result.error)})")
    granted = set((result.scope or "").split(","))
    if not granted & {"activity:read", "activity:read_all"}:
        raise AuthRequiredError(
            "the activity permission was not granted: log in again and keep "
            "'View data about your activities' ticked"
        )
    warnings = []
    if "activity:read_all" not in granted:
        warnings.append(
            "only public/followers activities are readable ('Only Me' activities were not "
            "granted); log in again and tick 'View data about your private activities'"
        )
    save_app(app)
    who = client.exchange_code(result.code, ",".join(sorted(granted)))
    _remember_athlete(athlete, client, who)
    return who, warnings
