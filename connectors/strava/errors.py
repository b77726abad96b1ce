"""Errors of the Strava connector, each with the project exit code it maps to (cli/exitcodes.py).

Messages are built here from fixed text, status codes and numbers: never from a response body,
an exception's text or anything else that could echo a token or the client secret.
"""

from __future__ import annotations

from evenstride.cli import exitcodes


class StravaError(Exception):
    """Base class: a one-line, user-facing message and the exit code that goes with it."""

    exit_code: int = exitcodes.UNAVAILABLE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(StravaError):
    """A missing or unusable setting (client id/secret, URL override)."""

    exit_code = exitcodes.USAGE


class AuthRequiredError(StravaError):
    """No tokens, or Strava refused the refresh token (revoked, rotated elsewhere, expired)."""

    exit_code = exitcodes.AUTH_NEEDED


class ApplicationInactiveError(StravaError):
    """403 "Application Status Inactive": the API application's owner lacks a Strava
    subscription (Strava's 2026 rule). Logging in again does not help, so not exit 3."""

    exit_code = exitcodes.USAGE


class RateLimitedError(StravaError):
    """HTTP 429, or our own stop before the 15-minute/daily budget runs out."""

    exit_code = exitcodes.RATE_LIMITED

    def __init__(self, message: str, retry_hint: str | None = None) -> None:
        super().__init__(message)
        self.retry_hint = retry_hint


class BudgetExhaustedError(RateLimitedError):
    """We stopped ourselves (safety margin) before Strava would answer 429."""


class UnavailableError(StravaError):
    """5xx, timeouts or dropped connections that outlived the bounded retries."""

    exit_code = exitcodes.UNAVAILABLE
