"""Garmin Connect connector: keyring-held tokens, incremental sync of ORIGINAL FIT files.

    evenstride login garmin            # once, in a terminal (email, password, MFA code)
    evenstride sync garmin             # unattended (cron): never prompts; exit codes in errors.py

Modules: `client` (the only place that knows garminconnect and Garmin's URLs), `auth` (tokens
in the OS keyring via connectors.secrets), `sync` (cursor, dedup, failure isolation), `errors`
(exceptions and documented exit codes).
"""

from evenstride.connectors.garmin.client import API_URL_ENV, GarminClient, RetryPolicy
from evenstride.connectors.garmin.errors import (
    EXIT_AUTH,
    EXIT_NO_KEYRING,
    EXIT_OK,
    EXIT_RATE_LIMITED,
    EXIT_SOME_FAILED,
    EXIT_UNAVAILABLE,
    AuthRequiredError,
    GarminError,
    RateLimitedError,
    UnavailableError,
)
from evenstride.connectors.garmin.sync import SyncOptions, SyncSummary, run_sync, sync

__all__ = [
    "API_URL_ENV",
    "EXIT_AUTH",
    "EXIT_NO_KEYRING",
    "EXIT_OK",
    "EXIT_RATE_LIMITED",
    "EXIT_SOME_FAILED",
    "EXIT_UNAVAILABLE",
    "AuthRequiredError",
    "GarminClient",
    "GarminError",
    "RateLimitedError",
    "RetryPolicy",
    "SyncOptions",
    "SyncSummary",
    "UnavailableError",
    "run_sync",
    "sync",
]
