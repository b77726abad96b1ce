"""Errors of the Garmin connector and the exit codes the CLI maps them to.

Exit codes of `evenstride login|logout|sync garmin` (stable: scripts and cron jobs rely on them):

====  ===========================  =============================================================
code  constant                     meaning
====  ===========================  =============================================================
0     EXIT_OK                      everything listed was stored (or was already there)
1     EXIT_SOME_FAILED             the sync finished, but some activities were marked failed
                                   (corrupt download, undecodable FIT): see the summary
2     EXIT_NO_KEYRING              configuration: no usable OS keyring backend to keep the tokens
                                   in (the message says how to configure one); also click's code
                                   for bad command-line usage
3     EXIT_AUTH                    not logged in, or the saved tokens were refused: run
                                   `evenstride login garmin` in a terminal
4     EXIT_RATE_LIMITED            Garmin answered 429: stopped at once, everything fetched so
                                   far is kept; retry after the time printed
5     EXIT_UNAVAILABLE             server errors (5xx), timeouts or network failures persisted
                                   after bounded retries; everything fetched so far is kept
====  ===========================  =============================================================

The values are the project-wide ones of cli/exitcodes.py (6 there is a local storage problem,
raised by the store, not by this connector). Messages never contain tokens or passwords: they
are built here from fixed text and numbers.
"""

from __future__ import annotations

import datetime as dt

from evenstride.cli import exitcodes

EXIT_OK = exitcodes.OK
EXIT_SOME_FAILED = exitcodes.SOME_FAILED
EXIT_NO_KEYRING = exitcodes.USAGE
EXIT_AUTH = exitcodes.AUTH_NEEDED
EXIT_RATE_LIMITED = exitcodes.RATE_LIMITED
EXIT_UNAVAILABLE = exitcodes.UNAVAILABLE


class GarminError(Exception):
    """Base class: a one-line, user-facing message and the exit code that goes with it."""

    exit_code: int = EXIT_UNAVAILABLE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthRequiredError(GarminError):
    """No tokens, or Garmin refused them (and the refresh failed)."""

    exit_code = EXIT_AUTH


class RateLimitedError(GarminError):
    """HTTP 429 (or 427): the caller must stop, not retry, to avoid a longer lockout."""

    exit_code = EXIT_RATE_LIMITED

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def retry_hint(self, now: dt.datetime | None = None) -> str:
        """'retry after HH:MM UTC' when Garmin said when; otherwise a conservative default."""
        if self.retry_after_s is None:
            return "retry in an hour or more (Garmin gave no Retry-After)"
        now = now or dt.datetime.now(dt.UTC)
        at = now + dt.timedelta(seconds=self.retry_after_s)
        return f"retry after {at:%Y-%m-%d %H:%M} UTC ({int(self.retry_after_s)} s)"


class UnavailableError(GarminError):
    """5xx, timeouts or connection failures that outlived the bounded retries."""

    exit_code = EXIT_UNAVAILABLE


class ActivityFetchError(GarminError):
    """One activity cannot be fetched for good (404, corrupt zip): mark it failed, go on."""

    exit_code = EXIT_SOME_FAILED
