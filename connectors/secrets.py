"""Secrets (OAuth tokens, an optional saved password) in the OS keyring, for every connector.

Why the keyring: tokens grant long-lived account access, so they must not sit in the database,
the archive or a dot-file next to them. Entries live under the service name ``evenstride`` with
one key per source, athlete and item: ``garmin/default/tokens``, ``strava/alice/tokens``, ...

Headless servers (cron, containers) often have no keyring daemon; keyring then falls back to
its ``fail.Keyring`` and every call raises. Configure one of:

* ``pip install keyrings.alt`` and ``export PYTHON_KEYRING_BACKEND=keyrings.alt.file.PlaintextKeyring``
  (a 0600 file under ``$XDG_DATA_HOME/python_keyring``: plain text, protected by file
  permissions only), or ``keyrings.alt.file.EncryptedKeyring`` (asks for a passphrase, so not
  for cron);
* a Secret Service daemon (gnome-keyring, KeePassXC) on Linux desktops, the macOS Keychain or the
  Windows Credential Manager, which keyring finds by itself;
* or a ``keyringrc.cfg`` (``python -m keyring diagnose`` prints where it is looked for).

``python -m keyring --list-backends`` shows what is available.
"""

from __future__ import annotations

from collections.abc import Callable

import keyring
import keyring.errors
from keyring.backends import fail

SERVICE = "evenstride"

SETUP_HELP = (
    "No usable keyring backend to keep the login tokens in. On a headless machine install "
    "keyrings.alt and set PYTHON_KEYRING_BACKEND=keyrings.alt.file.PlaintextKeyring "
    "(a 0600 plain-text file), or run a Secret Service such as gnome-keyring; "
    "`python -m keyring --list-backends` lists the choices."
)


class KeyringUnavailableError(RuntimeError):
    """No keyring backend can store secrets here; the message says how to configure one."""

    def __init__(self, detail: str = "") -> None:
        message = SETUP_HELP if not detail else f"{SETUP_HELP} ({detail})"
        super().__init__(message)
        self.message = message


def secret_key(source: str, athlete: str, item: str) -> str:
    """The keyring 'username' of one secret: ``<source>/<athlete>/<item>``."""
    for part in (source, athlete, item):
        if not part or "/" in part:
            raise ValueError(f"invalid secret key part: {part!r}")
    return f"{source}/{athlete}/{item}"


def backend_name() -> str:
    """The active backend's class name, for diagnostics (never a secret)."""
    kr = keyring.get_keyring()
    return f"{type(kr).__module__}.{type(kr).__qualname__}"


def ensure_backend() -> None:
    """Raise KeyringUnavailableError when keyring fell back to its always-failing backend."""
    if isinstance(keyring.get_keyring(), fail.Keyring):
        raise KeyringUnavailableError()


def _call[T](fn: Callable[..., T], *args: str) -> T:
    ensure_backend()
    try:
        return fn(*args)
    except keyring.errors.PasswordDeleteError:
        raise
    except keyring.errors.NoKeyringError as e:
        raise KeyringUnavailableError() from e
    except keyring.errors.KeyringError as e:
        # The class name only: a backend's message could echo what it was asked to store.
        raise KeyringUnavailableError(type(e).__name__) from e


def get_secret(source: str, athlete: str, item: str) -> str | None:
    """The stored secret, or None when there is none."""
    return _call(keyring.get_password, SERVICE, secret_key(source, athlete, item))


def set_secret(source: str, athlete: str, item: str, value: str) -> None:
    """Store (or replace) one secret."""
    _call(keyring.set_password, SERVICE, secret_key(source, athlete, item), value)


def delete_secret(source: str, athlete: str, item: str) -> bool:
    """Forget one secret; False when there was nothing to forget."""
    try:
        _call(keyring.delete_password, SERVICE, secret_key(source, athlete, item))
    except keyring.errors.PasswordDeleteError:
        return False
    return True
