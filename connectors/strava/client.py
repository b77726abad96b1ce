"""Adapter over stravalib 2.6: the ONLY module that knows stravalib and Strava's endpoints.

URL overrides. stravalib 2.6 builds every URL in `stravalib.protocol.ApiV3`:

* API calls pass a relative path ("/athlete/activities") to ``ApiV3.resolve_url``, which joins
  ``f"https://{server}"`` (class attribute ``server = "www.strava.com"``) and ``api_base``
  (``"/api/v3"``); the scheme is always https.
* The token endpoint is an absolute ``f"https://{server}/oauth/token"`` built inside
  ``exchange_code_for_token`` and ``refresh_access_token``; it also goes through ``resolve_url``,
  which returns absolute URLs unchanged.
* ``authorization_url`` builds ``https://{server}/oauth/authorize`` with ``urlunsplit`` and
  never calls ``resolve_url``.

`RoutedApiV3` overrides ``resolve_url`` (relative paths -> ``EVENSTRIDE_STRAVA_API_URL``;
``/oauth/...`` -> ``EVENSTRIDE_STRAVA_OAUTH_URL``; any other absolute URL is refused, so nothing
can silently reach www.strava.com) and ``authorization_url``. The two settings are separate
because Strava moves the API to https://api-v3.strava.com (no /api/v3 prefix) from 2027 while
OAuth stays on www.strava.com.

Tokens. stravalib refreshes only after expiry and only with STRAVA_CLIENT_ID/SECRET in the
environment, and has no hook to persist the rotated refresh token. `RoutedApiV3` takes the app
credentials from us (never from the environment), refreshes `REFRESH_MARGIN_S` ahead of expiry,
and calls `on_tokens` after EVERY refresh, so the rotated refresh token is saved at once.

Payloads are returned as the JSON Strava sent (dicts/lists, not re-serialised models), so the
archive keeps them untouched; typed views come from stravalib's own pydantic models.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from stravalib import exc
from stravalib.client import Client
from stravalib.protocol import ApiV3

from evenstride.connectors.strava.errors import (
    ApplicationInactiveError,
    AuthRequiredError,
    ConfigError,
    RateLimitedError,
    StravaError,
    UnavailableError,
)
from evenstride.connectors.strava.ratelimit import RateBudget

API_URL_ENV = "EVENSTRIDE_STRAVA_API_URL"
OAUTH_URL_ENV = "EVENSTRIDE_STRAVA_OAUTH_URL"
RETRIES_ENV = "EVENSTRIDE_STRAVA_RETRIES"
BACKOFF_ENV = "EVENSTRIDE_STRAVA_BACKOFF_S"
TIMEOUT_ENV = "EVENSTRIDE_STRAVA_TIMEOUT_S"
DEFAULT_API_URL = "https://www.strava.com/api/v3"
DEFAULT_OAUTH_URL = "https://www.strava.com"
SCOPES = ("read", "activity:read_all")
STREAM_KEYS = (
    "time", "distance", "velocity_smooth", "heartrate", "cadence", "altitude", "grade_smooth",
    "moving",
)  # fmt: skip
PER_PAGE = 200  # Strava's maximum
REFRESH_MARGIN_S = 300  # refresh this long before the 6-hour access token expires

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppCredentials:
    """The user's own Strava API application (strava.com/settings/api)."""

    client_id: int
    client_secret: str

    def __repr__(self) -> str:  # never print the secret
        return f"AppCredentials(client_id={self.client_id}, client_secret=***)"


@dataclass
class Tokens:
    """One athlete's OAuth tokens (kept in the keyring as JSON)."""

    access_token: str
    refresh_token: str
    expires_at: int
    athlete_id: int | None = None
    scope: str | None = None

    def __repr__(self) -> str:
        return f"Tokens(athlete_id={self.athlete_id}, expires_at={self.expires_at}, ***)"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tokens:
        return cls(
            access_token=str(data["access_token"]),
            refresh_token=str(data["refresh_token"]),
            expires_at=int(data["expires_at"]),
            athlete_id=data.get("athlete_id"),
            scope=data.get("scope"),
        )


@dataclass(frozen=True)
class Settings:
    """Where requests go, how long they may take, how often transient failures are retried."""

    api_url: str = DEFAULT_API_URL
    oauth_url: str = DEFAULT_OAUTH_URL
    timeout_s: float = 30.0
    retries: int = 2
    backoff_s: float = 2.0

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            api_url=(os.environ.get(API_URL_ENV) or DEFAULT_API_URL).rstrip("/"),
            oauth_url=(os.environ.get(OAUTH_URL_ENV) or DEFAULT_OAUTH_URL).rstrip("/"),
            timeout_s=float(os.environ.get(TIMEOUT_ENV) or cls.timeout_s),
            retries=int(os.environ.get(RETRIES_ENV) or cls.retries),
            backoff_s=float(os.environ.get(BACKOFF_ENV) or cls.backoff_s),
        )


class _TimeoutAdapter(HTTPAdapter):
    """stravalib sets no timeout: a hung connection would block a cron job forever."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self._timeout_s = timeout_s

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["timeout"] = self._timeout_s
        return super().send(request, *args, **kwargs)


class RoutedApiV3(ApiV3):
    """stravalib's protocol with configurable hosts, a pre-request budget check and a
    refresh that happens ahead of expiry and reports every new token pair."""

    def __init__(
        self,
        settings: Settings,
        budget: RateBudget,
        *,
        requests_session: requests.Session,
        on_refresh: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.budget = budget
        self.on_refresh = on_refresh
        super().__init__(requests_session=requests_session, rate_limiter=self._observe)

    def _check_credentials(self) -> None:
        """Credentials come from the keyring via us, never from STRAVA_* environment variables."""

    def _observe(self, headers: Any, _method: str) -> None:
        self.budget.observe(headers)

    def resolve_url(self, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            path = "/" + url.strip("/")
            base = self.settings.oauth_url if path.startswith("/oauth/") else self.settings.api_url
            return base + path
        parts = urlsplit(url)
        if parts.netloc == self.server and parts.path.startswith("/oauth/"):
            return self.settings.oauth_url + parts.path + (f"?{parts.query}" if parts.query else "")
        for base in (self.settings.api_url, self.settings.oauth_url):
            if url.startswith(base + "/"):
                return url
        raise StravaError(f"refusing a request outside the configured Strava hosts: {parts.netloc}")

    def authorization_url(self, *args: Any, **kwargs: Any) -> str:
        url = super().authorization_url(*args, **kwargs)
        return f"{self.settings.oauth_url}/oauth/authorize?{urlsplit(url).query}"

    def _request(self, url: str, *args: Any, **kwargs: Any) -> Any:
        if "/oauth/" not in url:
            self.budget.check()  # before sending: a request we do not send cannot be a 429
        return super()._request(url, *args, **kwargs)

    def _token_expired(self) -> bool:
        return (
            self.token_expires is not None and time.time() > self.token_expires - REFRESH_MARGIN_S
        )

    def refresh_access_token(self, client_id: int, client_secret: str, refresh_token: str) -> Any:
        info = super().refresh_access_token(client_id, client_secret, refresh_token)
        if self.on_refresh is not None:
            self.on_refresh()  # persist the rotated refresh token NOW (the old one is dead)
        return info


def _errors(e: exc.Fault) -> list[dict[str, Any]]:
    try:
        body = e.response.json() if e.response is not None else {}
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [x for x in errors if isinstance(x, dict)] if isinstance(errors, list) else []


def _status(e: BaseException) -> int | None:
    resp = getattr(e, "response", None)
    return None if resp is None else int(resp.status_code)


def _is_token_call(e: BaseException) -> bool:
    resp = getattr(e, "response", None)
    return resp is not None and urlsplit(str(resp.url)).path.endswith("/oauth/token")


class _Client(Client):
    """stravalib's Client on our protocol. Client.__init__ would first build a default ApiV3,
    whose credential check logs warnings about STRAVA_CLIENT_ID/SECRET we do not use."""

    def __init__(self, protocol: ApiV3) -> None:  # noqa: D107 - see class docstring
        self.log = logging.getLogger(f"{Client.__module__}.{Client.__name__}")
        self.protocol = protocol


class StravaClient:
    """One athlete's Strava session: raw JSON in, StravaError subclasses out."""

    def __init__(
        self,
        app: AppCredentials,
        tokens: Tokens | None = None,
        *,
        settings: Settings | None = None,
        budget: RateBudget | None = None,
        on_tokens: Callable[[Tokens], None] | None = None,
        login_hint: str = "run `evenstride login strava` again",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.budget = budget or RateBudget()
        self.app = app
        self.login_hint = login_hint
        self._on_tokens = on_tokens
        self._sleep = sleep
        self.tokens = tokens
        session = requests.Session()
        adapter = _TimeoutAdapter(self.settings.timeout_s)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        self.protocol = RoutedApiV3(
            self.settings, self.budget, requests_session=session, on_refresh=self._refreshed
        )
        self.client = _Client(self.protocol)
        self.protocol.client_id = app.client_id
        self.protocol.client_secret = app.client_secret
        if tokens is not None:
            self._load(tokens)

    # -- tokens ------------------------------------------------------------------------------

    def _load(self, tokens: Tokens) -> None:
        self.protocol.access_token = tokens.access_token
        self.protocol.refresh_token = tokens.refresh_token
        self.protocol.token_expires = int(tokens.expires_at)

    def _refreshed(self) -> None:
        p = self.protocol
        old = self.tokens
        self.tokens = Tokens(
            access_token=str(p.access_token),
            refresh_token=str(p.refresh_token),
            expires_at=int(p.token_expires or 0),
            athlete_id=old.athlete_id if old else None,
            scope=old.scope if old else None,
        )
        if self._on_tokens is not None:
            self._on_tokens(self.tokens)

    def authorization_url(self, redirect_uri: str, state: str) -> str:
        return self.client.authorization_url(
            client_id=self.app.client_id,
            redirect_uri=redirect_uri,
            approval_prompt="auto",
            scope=list(SCOPES),
            state=state,
        )

    def exchange_code(self, code: str, scope: str | None) -> dict[str, Any]:
        """Trade the authorization code for tokens; returns the athlete JSON (may be {})."""
        info, athlete = self._call(
            lambda: self.protocol.exchange_code_for_token(
                client_id=self.app.client_id,
                client_secret=self.app.client_secret,
                code=code,
                return_athlete=True,
            ),
            auth_message="Strava refused the authorization code (expired or already used)",
        )
        athlete = athlete if isinstance(athlete, dict) else {}
        self.tokens = Tokens(
            access_token=info["access_token"],
            refresh_token=info["refresh_token"],
            expires_at=int(info["expires_at"]),
            athlete_id=athlete.get("id"),
            scope=scope,
        )
        self._load(self.tokens)
        if self._on_tokens is not None:
            self._on_tokens(self.tokens)
        return athlete

    def refresh(self) -> Tokens:
        """Refresh now (login with --refresh-token; a 401 on an API call)."""
        if self.tokens is None:
            raise AuthRequiredError(f"not logged in to Strava: {self.login_hint}")
        self._call(
            lambda: self.protocol.refresh_access_token(
                self.app.client_id, self.app.client_secret, self.protocol.refresh_token or ""
            )
        )
        assert self.tokens is not None
        return self.tokens

    # -- calls -------------------------------------------------------------------------------

    def _call(self, fn: Callable[[], Any], *, auth_message: str | None = None) -> Any:
        """Run one stravalib call with bounded retries for 5xx/network errors and our errors."""
        for attempt in range(self.settings.retries + 1):
            try:
                return fn()
            except exc.ApplicationInactive as e:
                raise ApplicationInactiveError(
                    "Strava answered 403 'Application inactive': since June 2026 the owner of a "
                    "Standard Tier API application needs a paid Strava subscription. Renew it, "
                    "or reactivate the application at https://www.strava.com/settings/api"
                ) from e
            except exc.Fault as e:
                status = _status(e)
                if status == 429:
                    raise RateLimitedError(
                        "Strava answered 429 (rate limit exceeded); everything fetched so far is "
                        "kept",
                        self.budget.after_429(),
                    ) from e
                if _is_token_call(e) and any(
                    x.get("resource") == "Application" for x in _errors(e)
                ):
                    raise ConfigError(
                        "Strava refused the API application's client id or secret: check them at "
                        "https://www.strava.com/settings/api and run `evenstride login strava` "
                        "with --client-id"
                    ) from e
                if _is_token_call(e) and status in (400, 401, 403):
                    msg = auth_message or (
                        "Strava refused the saved refresh token (revoked, expired or replaced "
                        "by another login)"
                    )
                    raise AuthRequiredError(f"{msg}: {self.login_hint}") from e
                if status is not None and status >= 500 and attempt < self.settings.retries:
                    self._backoff(attempt, f"HTTP {status}")
                    continue
                if status is not None and status >= 500:
                    raise UnavailableError(
                        f"Strava answered HTTP {status} {self.settings.retries + 1} times; "
                        "try again later"
                    ) from e
                raise
            except (requests.ConnectionError, requests.Timeout) as e:
                if attempt < self.settings.retries:
                    self._backoff(attempt, type(e).__name__)
                    continue
                raise UnavailableError(
                    f"cannot reach Strava ({type(e).__name__}) after "
                    f"{self.settings.retries + 1} tries; try again later"
                ) from e
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, why: str) -> None:
        delay = min(60.0, self.settings.backoff_s * 2**attempt)
        log.info("Strava: %s, retrying in %.1f s", why, delay)
        self._sleep(delay)

    def _api(self, fn: Callable[[], Any]) -> Any:
        """An API call; a 401 forces one refresh and a single replay (revoked -> exit 3)."""
        try:
            return self._call(fn)
        except exc.AccessUnauthorized:
            pass
        self.refresh()
        try:
            return self._call(fn)
        except exc.AccessUnauthorized as e:
            scope = {str(x.get("field")) for x in _errors(e)} & {"activity:read_permission"}
            why = "is missing the activity:read_all permission" if scope else "was refused"
            raise AuthRequiredError(f"Strava access {why} (HTTP 401): {self.login_hint}") from e

    def _unexpected(self, e: exc.Fault) -> StravaError:
        status = _status(e)
        if status == 403:
            return AuthRequiredError(f"Strava refused access (HTTP 403): {self.login_hint}")
        return UnavailableError(f"unexpected answer from Strava (HTTP {status})")

    def _get(self, path: str, **params: Any) -> Any:
        try:
            return self._api(lambda: self.protocol.get(path, **params))
        except exc.ObjectNotFound:
            raise
        except exc.Fault as e:
            raise self._unexpected(e) from e

    def athlete(self) -> dict[str, Any]:
        """GET /athlete (checks the tokens; gives the id and name)."""
        return self._get("/athlete")

    def activity_pages(self, after_epoch: int) -> Iterator[list[dict[str, Any]]]:
        """GET /athlete/activities?after=..., 200 per page, until a short page."""
        page = 1
        while True:
            items = self._get(
                "/athlete/activities", after=after_epoch, page=page, per_page=PER_PAGE
            )
            items = items if isinstance(items, list) else []
            yield items
            if len(items) < PER_PAGE:
                return
            page += 1

    def streams(self, activity_id: int | str) -> Any:
        """GET /activities/{id}/streams keyed by type; None when Strava has none (404)."""
        try:
            return self._get(
                "/activities/{id}/streams",
                id=activity_id,
                keys=",".join(STREAM_KEYS),
                key_by_type="true",
            )
        except exc.ObjectNotFound:
            return None

    def revoke(self) -> bool:
        """POST {oauth}/oauth/revoke (Basic client_id:client_secret, token=refresh token)."""
        if self.tokens is None:
            return False
        url = f"{self.settings.oauth_url}/oauth/revoke"
        try:
            resp = self.protocol.rsession.post(
                url,
                data=urlencode({"token": self.tokens.refresh_token}),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                auth=(str(self.app.client_id), self.app.client_secret),
            )
        except requests.RequestException:
            return False
        return resp.status_code < 400
