"""Thin adapter over garminconnect: the ONLY module that knows that library and Garmin's URLs.

Everything else in evenstride talks to `GarminClient`, which speaks in plain dicts and bytes and
raises only `connectors.garmin.errors` exceptions. Endpoint or JSON drift is then fixed here.

Base URL override (``EVENSTRIDE_GARMIN_API_URL``, for proxies and tests). garminconnect 0.3.x
builds its URLs from attributes set in ``Client.__init__`` (it accepts only the domains
garmin.com/garmin.cn, so the domain cannot be changed): ``_connectapi`` (every API path is
``f"{_connectapi}/{path}"``), ``_di_token_url`` (DI OAuth2 token exchange and refresh), ``_sso``
and ``_connect`` (login strategies, JWT_WEB refresh) and the three CAS service URLs. `point_at`
rewrites all of them, so nothing leaves for garmin.com when the override is set; if a future
release renames them we refuse to start rather than silently reach the real service.

Retries are ours, not garminconnect's (it is built with ``retry_attempts=0``): 5xx, timeouts
and dropped connections are retried a bounded number of times with exponential backoff; 429 is
never retried (retrying resets Garmin's lockout timer); 401 is handled inside garminconnect by
one DI-token refresh and a single replay.

Writes (workout upload, schedule, unschedule, delete: used by the push) bypass garminconnect's
error decorator, so they are mapped here too: a 429 arrives as a plain connection error carrying
the status and becomes RateLimitedError; a dropped connection arrives as a raw requests error.
A POST whose answer was lost may or may not have happened, so POSTs are never retried here
(the push re-reads Garmin and reconciles instead); DELETEs are idempotent (404 = already gone)
and get the usual bounded retries.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import garminconnect
import requests
from garminconnect import (
    GarminConnectAuthenticationError,
    GarminConnectConnectionError,
    GarminConnectNotFoundError,
    GarminConnectTooManyRequestsError,
)
from requests.adapters import HTTPAdapter

from evenstride.connectors.garmin.errors import (
    ActivityFetchError,
    AuthRequiredError,
    GarminError,
    RateLimitedError,
    UnavailableError,
)

API_URL_ENV = "EVENSTRIDE_GARMIN_API_URL"
RETRIES_ENV = "EVENSTRIDE_GARMIN_RETRIES"
BACKOFF_ENV = "EVENSTRIDE_GARMIN_BACKOFF_S"
TIMEOUT_ENV = "EVENSTRIDE_GARMIN_TIMEOUT_S"

# garminconnect logs tracebacks at ERROR for failures we handle ourselves; keep them off stderr
# unless the application configures logging.
logging.getLogger("garminconnect").addHandler(logging.NullHandler())

_URL_ATTRS = (
    "_connectapi",
    "_connect",
    "_sso",
    "_di_token_url",
    "_ios_service_url",
    "_mobile_sso_service_url",
    "_portal_service_url",
)

T = TypeVar("T")
_GONE = object()  # a delete/unschedule answered 404: the thing was already gone


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries for transient failures; small delays in tests, real ones in cron."""

    attempts: int = 3  # retries after the first try
    base_delay_s: float = 2.0
    max_delay_s: float = 60.0

    def delay(self, attempt: int) -> float:
        return min(self.max_delay_s, self.base_delay_s * (2**attempt))

    @classmethod
    def from_env(cls) -> RetryPolicy:
        return cls(
            attempts=int(os.environ.get(RETRIES_ENV, cls.attempts)),
            base_delay_s=float(os.environ.get(BACKOFF_ENV, cls.base_delay_s)),
        )


class _TimeoutAdapter(HTTPAdapter):
    """Apply our timeout to every API request (garminconnect hard-codes 15 s)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(pool_connections=4, pool_maxsize=4)
        self._timeout_s = timeout_s

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["timeout"] = self._timeout_s
        return super().send(request, *args, **kwargs)


def point_at(client: Any, base_url: str) -> None:
    """Send every URL garminconnect's Client builds to `base_url` (no trailing slash needed)."""
    missing = [a for a in _URL_ATTRS if not hasattr(client, a)]
    if missing:
        raise RuntimeError(
            f"garminconnect {getattr(garminconnect, '__version__', '?')} no longer has "
            f"{', '.join(missing)}: {API_URL_ENV} cannot be honoured safely"
        )
    base = base_url.rstrip("/")
    client._connectapi = base
    client._connect = base
    client._sso = base
    client._di_token_url = f"{base}/di-oauth2-service/oauth/token"
    client._ios_service_url = f"{base}/gcm/ios"
    client._mobile_sso_service_url = f"{base}/gcm/android"
    client._portal_service_url = f"{base}/app"


def _chain(e: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = e
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def _response(e: BaseException) -> Any:
    for link in _chain(e):
        resp = getattr(link, "response", None)
        if resp is not None and hasattr(resp, "status_code"):
            return resp
    return None


def _status(e: BaseException) -> int | None:
    resp = _response(e)
    if resp is not None:
        return int(resp.status_code)
    m = re.search(r"(?:API Error|Error|HTTP)\s*(\d{3})", str(e))
    return int(m.group(1)) if m else None


def _retry_after(e: BaseException) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), if Garmin sent one."""
    resp = _response(e)
    value = getattr(resp, "headers", {}).get("Retry-After") if resp is not None else None
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _network_cause(e: BaseException) -> str:
    """The class name of the lowest-level cause ('ReadTimeout', 'ConnectionError')."""
    return type(_chain(e)[-1]).__name__


class GarminClient:
    """One authenticated Garmin Connect session for one athlete."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api = garminconnect.Garmin(retry_attempts=0)
        base_url = base_url or os.environ.get(API_URL_ENV) or None
        if base_url:
            point_at(self._api.client, base_url)
        timeout_s = timeout_s or float(os.environ.get(TIMEOUT_ENV, "30"))
        adapter = _TimeoutAdapter(timeout_s)
        self._api.client._api_session.mount("https://", adapter)
        self._api.client._api_session.mount("http://", adapter)
        self.retry = retry or RetryPolicy.from_env()
        self._sleep = sleep
        self.display_name: str | None = None

    # -- tokens ---------------------------------------------------------------------------

    def load_tokens(self, tokens: str) -> None:
        """Use saved tokens (the JSON garminconnect dumps). No network call."""
        try:
            self._api.client.loads(tokens)
        except (GarminConnectConnectionError, GarminConnectAuthenticationError) as e:
            raise AuthRequiredError("the saved Garmin tokens are unreadable") from e

    def tokens(self) -> str:
        """The current tokens as JSON (changes when garminconnect refreshed them)."""
        return self._api.client.dumps()

    def login_with_password(
        self, email: str, password: str, prompt_mfa: Callable[[], str] | None
    ) -> None:
        """Credential login (garminconnect's strategy cascade); MFA via `prompt_mfa`.

        With `prompt_mfa=None` an account with MFA fails with AuthRequiredError: unattended
        runs never wait for a code.
        """
        try:
            self._api.client.login(email, password, prompt_mfa=prompt_mfa)
        except GarminConnectTooManyRequestsError as e:
            raise RateLimitedError(
                "Garmin is rate-limiting logins (HTTP 429/427)", _retry_after(e)
            ) from e
        except GarminConnectAuthenticationError as e:
            raise AuthRequiredError(
                "Garmin refused the login (wrong email or password, MFA code, or no MFA prompt "
                "possible)"
            ) from e
        except GarminConnectConnectionError as e:
            raise UnavailableError(
                "could not log in to Garmin Connect: every login method failed "
                "(network, bot challenge or service outage)"
            ) from e

    def verify(self) -> str:
        """Check the tokens against the API (profile + settings); return the display name."""
        try:
            self._api.login(self.tokens())
        except GarminConnectTooManyRequestsError as e:
            raise RateLimitedError("Garmin answered 429 while checking the login", None) from e
        except GarminConnectAuthenticationError as e:
            if any(_status(x) == 429 for x in _chain(e)):
                raise RateLimitedError("Garmin answered 429 while checking the login") from e
            raise AuthRequiredError("Garmin refused the saved tokens") from e
        except GarminConnectConnectionError as e:
            raise UnavailableError("Garmin Connect is unavailable") from e
        self.display_name = self._api.display_name
        return self.display_name or "?"

    # -- reads ----------------------------------------------------------------------------

    def activities_page(self, start: int, limit: int) -> list[dict[str, Any]]:
        """One page of the activity list, newest first (`start` is an offset)."""
        page = self._call("listing activities", self._api.get_activities, start, limit)
        if not isinstance(page, list):
            raise UnavailableError("Garmin returned an unexpected activity list (not a list)")
        return page

    def download_original(self, activity_id: int | str) -> bytes:
        """The ORIGINAL upload: a zip holding the watch's .fit file."""
        fmt = garminconnect.Garmin.ActivityDownloadFormat.ORIGINAL
        return self._call(
            f"downloading activity {activity_id}",
            self._api.download_activity,
            str(activity_id),
            dl_fmt=fmt,
            per_activity=True,
        )

    # -- workouts and calendar (the push) -----------------------------------------------

    def workouts_page(self, start: int, limit: int) -> list[dict[str, Any]]:
        """One page of the account's workout library (summaries: id, name, description)."""
        page = self._call("listing workouts", self._api.get_workouts, start, limit)
        if not isinstance(page, list):
            raise UnavailableError("Garmin returned an unexpected workout list (not a list)")
        return page

    def calendar_month(self, year: int, month: int) -> list[dict[str, Any]]:
        """Calendar items of a month (1-12; garminconnect sends Garmin's 0-based month).

        Garmin's month view spills into the neighbouring weeks: callers dedupe by item id.
        """
        data = self._call(
            f"reading the calendar {year}-{month:02d}",
            self._api.get_scheduled_workouts,
            year,
            month,
        )
        items = (data or {}).get("calendarItems") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise UnavailableError("Garmin returned an unexpected calendar (no calendarItems)")
        return items

    def upload_workout(self, workout: dict[str, Any]) -> int:
        """Create a workout from its JSON; return Garmin's workoutId. Not retried (a POST)."""
        made = self._write("uploading a workout", self._api.upload_workout, workout)
        wid = made.get("workoutId") if isinstance(made, dict) else None
        if wid is None:
            raise UnavailableError("Garmin accepted a workout upload but returned no workoutId")
        return int(wid)

    def schedule_workout(self, workout_id: int, day: dt.date) -> int | None:
        """Put a workout on the calendar; return the schedule id. Not retried (a POST)."""
        made = self._write(
            f"scheduling workout {workout_id}",
            self._api.schedule_workout,
            workout_id,
            day.isoformat(),
        )
        sid = made.get("workoutScheduleId") if isinstance(made, dict) else None
        return int(sid) if sid is not None else None

    def unschedule_workout(self, schedule_id: int) -> bool:
        """Take a calendar entry off (the workout stays); False when it was already gone."""
        return (
            self._write(
                f"unscheduling calendar entry {schedule_id}",
                self._api.unschedule_workout,
                schedule_id,
                idempotent=True,
                missing_ok=True,
            )
            is not _GONE
        )

    def delete_workout(self, workout_id: int) -> bool:
        """Delete a workout from the library; False when it was already gone."""
        return (
            self._write(
                f"deleting workout {workout_id}",
                self._api.delete_workout,
                workout_id,
                idempotent=True,
                missing_ok=True,
            )
            is not _GONE
        )

    def _refused(self) -> GarminError | None:
        """Garmin answered 401 and garminconnect's silent token refresh did not cure it.

        garminconnect swallows why its refresh failed, so refresh once more ourselves to tell
        "refresh refused" (log in again: exit 3) from "refresh did not get through" (429: exit 4;
        5xx or network: exit 5). None when this refresh worked (the caller may try again).
        """
        refresh = getattr(self._api.client, "_refresh_di_token", None)
        if refresh is None:  # a garminconnect without it: cannot tell, keep the old answer
            return AuthRequiredError("Garmin refused the saved tokens and refreshing them failed")
        try:
            refresh()
        except GarminConnectAuthenticationError as e:
            m = re.search(r"refresh failed: (\d{3})", str(e))
            status = int(m.group(1)) if m else None
            if status in (427, 429):
                return RateLimitedError(
                    f"Garmin answered {status} (rate limited) while refreshing the login tokens"
                )
            if status is not None and status >= 500:
                return UnavailableError(
                    f"Garmin Connect unavailable while refreshing the login tokens: HTTP {status}"
                )
            return AuthRequiredError("Garmin refused the saved tokens and refreshing them failed")
        except Exception as e:  # noqa: BLE001 - curl_cffi/requests network errors
            return UnavailableError(
                "Garmin Connect unavailable while refreshing the login tokens: " + _network_cause(e)
            )
        return None

    # -- error translation and retries ----------------------------------------------------

    def _call(
        self, what: str, fn: Callable[..., T], *args: Any, per_activity: bool = False, **kw: Any
    ) -> T:
        """Run a read with our error mapping and bounded retries.

        `per_activity`: a 404 or other 4xx (403 included) concerns this one activity only, so
        it raises ActivityFetchError (mark it failed, go on) instead of stopping the sync.
        """
        attempts = self.retry.attempts + 1
        return self._request(what, lambda: fn(*args, **kw), attempts, per_activity=per_activity)

    def _write(
        self,
        what: str,
        fn: Callable[..., Any],
        *args: Any,
        idempotent: bool = False,
        missing_ok: bool = False,
    ) -> Any:
        """Run a write with our error mapping; only idempotent writes are retried.

        `missing_ok`: a 404 means the thing is already gone and returns `_GONE`.
        """
        attempts = self.retry.attempts + 1 if idempotent else 1
        return self._request(what, lambda: fn(*args), attempts, missing_ok=missing_ok)

    def _request(
        self,
        what: str,
        send: Callable[[], T],
        attempts: int,
        *,
        per_activity: bool = False,
        missing_ok: bool = False,
    ) -> T:
        for attempt in range(attempts):
            try:
                return send()
            except GarminConnectTooManyRequestsError as e:
                raise RateLimitedError(
                    f"Garmin answered 429 (rate limited) while {what}", _retry_after(e)
                ) from e
            except GarminConnectAuthenticationError as e:
                refused = self._refused()
                if refused is None and attempt + 1 < attempts:
                    continue
                raise refused or UnavailableError(
                    f"Garmin refused the tokens, then accepted a refresh, while {what}: "
                    "run it again"
                ) from e
            except GarminConnectNotFoundError as e:
                if missing_ok:
                    return _GONE  # type: ignore[return-value]
                if per_activity:
                    raise ActivityFetchError("not found on Garmin Connect (HTTP 404)") from e
                raise UnavailableError(f"Garmin answered 404 while {what}") from e
            except (GarminConnectConnectionError, requests.RequestException) as e:
                # raw requests errors: writes bypass garminconnect's decorator (reads never)
                status = None if isinstance(e, requests.RequestException) else _status(e)
                if status in (427, 429):
                    raise RateLimitedError(
                        f"Garmin answered {status} (rate limited) while {what}", _retry_after(e)
                    ) from e
                if status == 401:
                    refused = self._refused()
                    if refused is None and attempt + 1 < attempts:
                        continue
                    raise refused or AuthRequiredError(
                        f"Garmin refused access (HTTP {status})"
                    ) from e
                if status == 403 and not per_activity:
                    raise AuthRequiredError(f"Garmin refused access (HTTP {status})") from e
                if status is not None and 400 <= status < 500:
                    if per_activity:
                        raise ActivityFetchError(f"Garmin refused it (HTTP {status})") from e
                    raise UnavailableError(f"Garmin answered {status} while {what}") from e
                if attempt + 1 < attempts:
                    self._sleep(self.retry.delay(attempt))
                    continue
                cause = f"HTTP {status}" if status else _network_cause(e)
                raise UnavailableError(
                    f"Garmin Connect unavailable while {what}: {cause}"
                    + (f" after {attempts} attempts" if attempts > 1 else "")
                ) from e
        raise AssertionError("unreachable")  # pragma: no cover
