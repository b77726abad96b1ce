"""Garmin tokens in the OS keyring: log in once interactively, then reuse and refresh forever.

Why: password logins are what Garmin rate-limits for hours (and what needs MFA), so the
unattended `sync` only ever uses saved DI OAuth tokens. garminconnect refreshes them on a 401;
`save_if_changed` writes the refreshed ones back after every run, even a failed one, so the
refresh token never goes stale. The password is stored only with an explicit --save-password.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from evenstride.connectors import secrets
from evenstride.connectors.garmin.client import GarminClient
from evenstride.connectors.garmin.errors import AuthRequiredError

SOURCE = "garmin"
TOKENS = "tokens"
EMAIL = "email"
PASSWORD = "password"  # noqa: S105 - the keyring item name, not a password


def login_hint(athlete: str) -> str:
    """The command that fixes a missing or refused login."""
    opt = "" if athlete == "default" else f" --athlete {athlete}"
    return f"run `evenstride login garmin{opt}` in a terminal"


def load_tokens(athlete: str) -> str | None:
    return secrets.get_secret(SOURCE, athlete, TOKENS)


def save_tokens(athlete: str, tokens: str) -> None:
    secrets.set_secret(SOURCE, athlete, TOKENS, tokens)


def save_if_changed(athlete: str, client: GarminClient, before: str | None) -> bool:
    """Store the client's tokens when garminconnect refreshed them; True if it wrote."""
    now = client.tokens()
    data = json.loads(now)
    if not data.get("di_token") or now == before:
        return False
    save_tokens(athlete, now)
    return True


def forget(athlete: str) -> list[str]:
    """Delete everything stored for this athlete's Garmin login; return what was removed."""
    return [
        item for item in (TOKENS, EMAIL, PASSWORD) if secrets.delete_secret(SOURCE, athlete, item)
    ]


def open_session(
    athlete: str, client_factory: Callable[[], GarminClient] = GarminClient
) -> tuple[GarminClient, str]:
    """A client with the saved tokens loaded (no network yet) and the tokens as loaded.

    Never prompts: no tokens means AuthRequiredError with the command to run.
    """
    tokens = load_tokens(athlete)
    if not tokens:
        raise AuthRequiredError(f"not logged in to Garmin Connect: {login_hint(athlete)}")
    client = client_factory()
    client.load_tokens(tokens)
    return client, tokens


def password_login(
    athlete: str,
    email: str,
    password: str,
    prompt_mfa: Callable[[], str] | None,
    *,
    save_password: bool = False,
    client_factory: Callable[[], GarminClient] = GarminClient,
) -> str:
    """Log in with credentials (+MFA), store the tokens; return the Garmin display name."""
    secrets.ensure_backend()  # fail before talking to Garmin, not after a successful login
    client = client_factory()
    client.login_with_password(email, password, prompt_mfa)
    name = client.verify()
    save_tokens(athlete, client.tokens())
    if save_password:
        secrets.set_secret(SOURCE, athlete, EMAIL, email)
        secrets.set_secret(SOURCE, athlete, PASSWORD, password)
    else:  # a password saved earlier must not outlive a login that did not ask to keep it
        secrets.delete_secret(SOURCE, athlete, PASSWORD)
    return name


def read_token_store(path: Path) -> str:
    """Tokens another garminconnect (>= 0.3) tool saved: its GARMINTOKENS file or folder."""
    path = path.expanduser()
    file = path / "garmin_tokens.json" if path.is_dir() or path.suffix != ".json" else path
    if path.is_dir() and not file.exists() and (path / "oauth2_token.json").exists():
        raise AuthRequiredError(
            f"{path} holds old garth tokens (garminconnect < 0.3), which Garmin no longer "
            "accepts: log in with email and password instead"
        )
    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as e:
        raise AuthRequiredError(f"cannot read Garmin tokens from {file}: {type(e).__name__}") from e
    if not isinstance(data, dict) or not data.get("di_token"):
        raise AuthRequiredError(f"{file} has no garminconnect DI tokens")
    return json.dumps({k: data.get(k) for k in ("di_token", "di_refresh_token", "di_client_id")})


def import_token_store(
    athlete: str, path: Path, client_factory: Callable[[], GarminClient] = GarminClient
) -> str:
    """Check imported tokens against Garmin, then keep them; return the display name."""
    secrets.ensure_backend()
    tokens = read_token_store(path)
    client = client_factory()
    client.load_tokens(tokens)
    name = client.verify()
    save_tokens(athlete, client.tokens())
    return name


def saved_credentials(athlete: str) -> tuple[str, str] | None:
    """(email, password) when the user chose --save-password, else None."""
    email = secrets.get_secret(SOURCE, athlete, EMAIL)
    password = secrets.get_secret(SOURCE, athlete, PASSWORD)
    return (email, password) if email and password else None
