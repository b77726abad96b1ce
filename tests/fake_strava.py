"""A fake Strava (API + OAuth) on 127.0.0.1, driven by the REAL stravalib client.

Payload checks against the spec that ships with stravalib 2.6
(``stravalib/tests/resources/strava_swagger.json``, Swagger 2.0). Its response schemas are
external ``$ref``s (https://developers.strava.com/swagger/activity.json#/SummaryActivity, ...)
that cannot be resolved offline, so bodies are checked against stravalib's generated pydantic
models (``stravalib.strava_model``, produced from exactly those schema files by
strava_swagger2pydantic), strictly: every key must be a field of the model or a key of the
spec's own 200 example for that endpoint (Strava returns undocumented fields such as
``average_cadence``; the example shows them). Activity payloads start FROM the spec example.
Requests are checked against the spec's paths and declared query parameters (names, required
ones, enums such as the stream keys) and every violation is recorded in `spec_violations`.

Not in the spec (written from the research note instead): /oauth/*, rate-limit headers, 429.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from pydantic import BaseModel
from stravalib import strava_model

CLIENT_ID = 424242
CLIENT_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4"
ATHLETE_ID = 7777001
API_PREFIX = "/api/v3"

SWAGGER: dict[str, Any] = json.loads(
    resources.files("stravalib").joinpath("tests/resources/strava_swagger.json").read_text()
)


def spec_example(path: str) -> Any:
    """The spec's 200 example body of GET `path`."""
    return SWAGGER["paths"][path]["get"]["responses"]["200"]["examples"]["application/json"]


def _fields(model: type[BaseModel]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


def check_model(model: type[BaseModel], obj: dict[str, Any], example: dict[str, Any]) -> None:
    """Validate with stravalib's spec-generated model, and refuse keys the spec does not know."""
    model.model_validate(obj)
    unknown = set(obj) - _fields(model) - set(example)
    if unknown:
        raise AssertionError(f"{model.__name__}: keys not in the spec: {sorted(unknown)}")


def check_streams(streams: dict[str, Any]) -> None:
    strava_model.StreamSet.model_validate(streams)
    example = spec_example("/activities/{id}/streams")[0]
    allowed = _fields(strava_model.StreamSet)
    for key, stream in streams.items():
        assert key in allowed, f"stream type {key!r} is not in StreamSet"
        extra = set(stream) - {"data"} - _fields(strava_model.BaseStream) - set(example)
        assert not extra, f"stream {key}: keys not in the spec: {sorted(extra)}"


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_athlete() -> dict[str, Any]:
    body = copy.deepcopy(spec_example("/athlete"))
    body.update(id=ATHLETE_ID, firstname="Riina", lastname="Runner", username="riina")
    check_model(strava_model.DetailedAthlete, body, spec_example("/athlete"))
    return body


def make_activity(
    activity_id: int,
    start: dt.datetime,
    *,
    sport_type: str = "Run",
    seconds: int = 1800,
    distance: float = 5400.0,
    trainer: bool = False,
    manual: bool = False,
    device_name: str | None = "Garmin Forerunner 965",
    average_cadence: float | None = 85.0,
) -> dict[str, Any]:
    """A SummaryActivity built from the spec's own example, then checked against the model."""
    example = spec_example("/athlete/activities")[0]
    body = copy.deepcopy(example)
    kind = {"TrailRun": "Run", "VirtualRun": "VirtualRun", "Run": "Run"}.get(sport_type, "Ride")
    body.update(
        id=activity_id, name=f"{sport_type} {activity_id}", athlete={"id": ATHLETE_ID,
        "resource_state": 1}, distance=distance, moving_time=seconds, elapsed_time=seconds,
        type=kind, sport_type=sport_type, start_date=iso(start), start_date_local=iso(start),
        timezone="(GMT+00:00) Europe/London", utc_offset=0, trainer=trainer, manual=manual,
        external_id=None if manual else f"{activity_id}.fit",
        upload_id=None if manual else activity_id + 1, device_name=device_name,
        average_speed=distance / seconds, average_cadence=average_cadence,
        average_watts=None, weighted_average_watts=None, kilojoules=None, device_watts=False,
        max_watts=None, gear_id=None, has_heartrate=not manual, workout_type=0,
    )  # fmt: skip
    check_model(strava_model.SummaryActivity, body, example)
    return body


def make_streams(
    seconds: int = 1800,
    *,
    cadence: float | None = 85.0,
    speed: float = 3.0,
    heartrate: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """1 Hz streams keyed by type (what stravalib's key_by_type request gets back)."""
    rng = np.random.default_rng(seed)
    n = seconds + 1
    t = list(range(n))
    v = (speed + rng.normal(0, 0.05, n)).round(3)
    dist = np.concatenate([[0.0], np.cumsum(v[1:])]).round(1)

    def stream(data: list[Any], series: str = "distance") -> dict[str, Any]:
        return {"data": data, "series_type": series, "original_size": n, "resolution": "high"}

    out = {
        "time": stream(t),
        "distance": stream(dist.tolist()),
        "velocity_smooth": stream(v.tolist()),
        "altitude": stream([12.0] * n),
        "grade_smooth": stream([0.0] * n),
        "moving": stream([True] * n),
    }
    if heartrate:
        out["heartrate"] = stream([int(x) for x in 150 + rng.integers(-3, 4, n)])
    if cadence is not None:
        out["cadence"] = stream([int(round(cadence + x)) for x in rng.integers(-1, 2, n)])
    check_streams(out)
    return out


def _swagger_operation(path: str) -> tuple[str, dict[str, Any]] | None:
    for template, ops in SWAGGER["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", r"[^/]+", template) + "$"
        if re.match(pattern, path) and "get" in ops:
            return template, ops["get"]
    return None


def _resolve_param(p: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in p:
        return SWAGGER["parameters"][p["$ref"].rsplit("/", 1)[-1]]
    return p


def spec_check_request(path: str, query: dict[str, str]) -> list[str]:
    """Problems of one GET against the spec: unknown path, undeclared/missing/bad params."""
    op = _swagger_operation(path)
    if op is None:
        return [f"GET {path}: not a path of the spec"]
    template, spec = op
    problems = []
    params = {
        q["name"]: q for q in map(_resolve_param, spec.get("parameters", [])) if q["in"] == "query"
    }
    for name in query:
        if name not in params:
            problems.append(f"GET {template}: undeclared query parameter {name!r}")
    for name, p in params.items():
        if p.get("required") and name not in query:
            problems.append(f"GET {template}: required query parameter {name!r} missing")
        if name in query and p.get("type") == "integer" and not re.fullmatch(r"-?\d+", query[name]):
            problems.append(f"GET {template}: {name}={query[name]!r} is not an integer")
        enum = (p.get("items") or {}).get("enum")
        if name in query and enum:
            bad = [v for v in query[name].split(",") if v not in enum]
            if bad:
                problems.append(f"GET {template}: {name} values {bad} not in the spec's enum")
    return problems


class FakeStrava:
    """State + a ThreadingHTTPServer. Tokens rotate on refresh like Strava's."""

    def __init__(self) -> None:
        self.athlete = make_athlete()
        self.activities: list[dict[str, Any]] = []
        self.streams: dict[int, dict[str, Any] | None] = {}
        self.access: dict[str, int] = {}  # access token -> expires_at
        self.refresh: set[str] = set()  # currently valid refresh tokens
        self.codes: dict[str, str] = {}  # authorization code -> granted scope
        self.token_lifetime_s = 6 * 3600
        self.limits = {"overall": [200, 2000], "read": [100, 1000]}
        self.usage = {"overall": [0, 0], "read": [0, 0]}
        self.inactive = False
        self.exhaust_after: int | None = None  # API calls before the 15-min budget is "used up"
        self.fail_next: list[tuple[str, int]] = []  # (path substring, status) served once
        self.requests: list[dict[str, Any]] = []
        self.spec_violations: list[str] = []
        self.refreshes = 0
        self.revoked: list[str] = []
        self.issued: set[str] = set()  # every token and code ever handed out
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- set-up helpers --------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    def add_run(
        self, activity_id: int, start: dt.datetime, *, streams: Any = "auto", **kw: Any
    ) -> dict[str, Any]:
        act = make_activity(activity_id, start, **kw)
        self.activities.append(act)
        if streams == "auto":
            streams = (
                None
                if act["manual"]
                else make_streams(act["elapsed_time"], seed=activity_id % 1000)
            )
        self.streams[activity_id] = streams
        return act

    def issue_tokens(self, expires_in: int | None = None) -> dict[str, Any]:
        access, refresh = secrets.token_hex(20), secrets.token_hex(20)
        expires_at = int(dt.datetime.now(dt.UTC).timestamp()) + (
            expires_in if expires_in is not None else self.token_lifetime_s
        )
        self.access[access] = expires_at
        self.issued |= {access, refresh}
        self.refresh.add(refresh)
        return {"token_type": "Bearer", "access_token": access, "refresh_token": refresh,
                "expires_at": expires_at, "expires_in": expires_at - int(dt.datetime.now(dt.UTC).timestamp())}  # fmt: skip

    def issue_code(self, scope: str = "read,activity:read_all") -> str:
        code = secrets.token_hex(20)
        self.codes[code] = scope
        self.issued.add(code)
        return code

    def secrets_seen(self) -> set[str]:
        """Every secret this fake ever handed out or accepted (for leak checks)."""
        return {CLIENT_SECRET, *self.issued, *self.revoked}

    def api_calls(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].startswith(API_PREFIX)]

    # -- server ------------------------------------------------------------------------------

    def __enter__(self) -> FakeStrava:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                path = urlsplit(self.path).path
                fake.requests.append({"method": "POST", "path": path, "form_keys": sorted(form)})
                status, body = fake.post(path, form, self.headers.get("Authorization"))
                self._send(status, body)

            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                fake.requests.append({"method": "GET", "path": parts.path, "query": query,
                                      "authorization": self.headers.get("Authorization")})  # fmt: skip
                status, body, headers = fake.get(
                    parts.path, query, self.headers.get("Authorization")
                )
                self._send(status, body, headers)

        return Handler

    # -- OAuth ------------------------------------------------------------------------------

    def post(self, path: str, form: dict[str, str], authorization: str | None) -> tuple[int, Any]:
        if path == "/oauth/revoke":
            user, _, pw = (
                base64.b64decode((authorization or "Basic ").split()[1] or b"")
                .decode()
                .partition(":")
            )
            if user != str(CLIENT_ID) or pw != CLIENT_SECRET:
                return 401, {"message": "Authorization Error", "errors": []}
            self.revoked.append(form.get("token", ""))
            self.refresh.discard(form.get("token", ""))
            return 200, {}
        if path != "/oauth/token":
            return 404, {"message": "Record Not Found", "errors": []}
        if form.get("client_id") != str(CLIENT_ID) or form.get("client_secret") != CLIENT_SECRET:
            return 401, {
                "message": "Bad Request",
                "errors": [{"resource": "Application", "field": "client_id", "code": "invalid"}],
            }
        for stuck, status in list(self.fail_next):
            if stuck == "/oauth/token":
                self.fail_next.remove((stuck, status))
                return status, {"message": "Server Error", "errors": []}
        if form.get("grant_type") == "authorization_code":
            if form.get("code") not in self.codes:
                return 400, {
                    "message": "Bad Request",
                    "errors": [
                        {"resource": "AuthorizationCode", "field": "code", "code": "invalid"}
                    ],
                }
            del self.codes[form["code"]]
            return 200, {
                **self.issue_tokens(),
                "athlete": {
                    k: self.athlete[k]
                    for k in ("id", "username", "firstname", "lastname", "resource_state")
                },
            }
        if form.get("grant_type") == "refresh_token":
            token = form.get("refresh_token", "")
            if token not in self.refresh:
                return 400, {
                    "message": "Bad Request",
                    "errors": [
                        {"resource": "RefreshToken", "field": "refresh_token", "code": "invalid"}
                    ],
                }
            self.refresh.discard(token)  # rotation: the old refresh token is dead now
            self.refreshes += 1
            return 200, self.issue_tokens()
        return 400, {
            "message": "Bad Request",
            "errors": [{"resource": "Application", "field": "grant_type", "code": "invalid"}],
        }

    # -- API --------------------------------------------------------------------------------

    def _rate_headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": ",".join(map(str, self.limits["overall"])),
            "X-RateLimit-Usage": ",".join(map(str, self.usage["overall"])),
            "X-ReadRateLimit-Limit": ",".join(map(str, self.limits["read"])),
            "X-ReadRateLimit-Usage": ",".join(map(str, self.usage["read"])),
        }

    def get(
        self, path: str, query: dict[str, str], authorization: str | None
    ) -> tuple[int, Any, dict[str, str]]:
        if not path.startswith(API_PREFIX):
            return 404, {"message": "Record Not Found", "errors": []}, {}
        api_path = path[len(API_PREFIX) :]
        self.spec_violations += spec_check_request(api_path, query)
        for kind in ("overall", "read"):
            self.usage[kind] = [u + 1 for u in self.usage[kind]]
        if self.exhaust_after is not None and len(self.api_calls()) > self.exhaust_after:
            self.usage["read"][0] = self.limits["read"][0] + 1  # someone else used it up
        headers = self._rate_headers()
        if any(
            u > lim
            for kind in self.usage
            for u, lim in zip(self.usage[kind], self.limits[kind], strict=True)
        ):
            return (
                429,
                {
                    "message": "Rate Limit Exceeded",
                    "errors": [
                        {"resource": "Application", "field": "read rate limit", "code": "exceeded"}
                    ],
                },
                headers,
            )
        if self.inactive:
            return (
                403,
                {
                    "message": "Forbidden",
                    "errors": [{"resource": "Application", "field": "Status", "code": "Inactive"}],
                },
                headers,
            )
        for stuck, status in list(self.fail_next):
            if stuck in api_path:
                self.fail_next.remove((stuck, status))
                return status, {"message": "Error", "errors": []}, headers
        token = (authorization or "").removeprefix("Bearer ")
        now = int(dt.datetime.now(dt.UTC).timestamp())
        if self.access.get(token, 0) <= now:
            return (
                401,
                {
                    "message": "Authorization Error",
                    "errors": [{"resource": "Athlete", "field": "access_token", "code": "invalid"}],
                },
                headers,
            )
        if api_path == "/athlete":
            return 200, self.athlete, headers
        if api_path == "/athlete/activities":
            after = int(query.get("after", 0))
            page, per_page = int(query.get("page", 1)), int(query.get("per_page", 30))
            chosen = [
                a
                for a in self.activities
                if dt.datetime.fromisoformat(a["start_date"].replace("Z", "+00:00")).timestamp()
                > after
            ]
            chosen.sort(
                key=lambda a: a["start_date"], reverse=True
            )  # Strava's order is not ours to rely on
            return 200, chosen[(page - 1) * per_page : page * per_page], headers
        m = re.fullmatch(r"/activities/(\d+)/streams", api_path)
        if m:
            streams = self.streams.get(int(m.group(1)))
            if streams is None:
                return (
                    404,
                    {
                        "message": "Record Not Found",
                        "errors": [{"resource": "Activity", "field": "id", "code": "not found"}],
                    },
                    headers,
                )
            keys = set(query.get("keys", "").split(","))
            return 200, {k: v for k, v in streams.items() if k in keys}, headers
        return 404, {"message": "Record Not Found", "errors": []}, headers


# ---------------------------------------------------------------------------- pytest fixtures
# Import `strava_fake_fixture` / `strava_keyring_fixture` into a test module (with a noqa for
# F401); tests then request them as `fake` and `strava_keyring`.

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import click  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(name="strava_keyring")
def strava_keyring_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A REAL keyring backend (keyrings.alt's plain-text file) under tmp_path."""
    import keyring
    from keyrings.alt.file import PlaintextKeyring

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home-dir"))
    previous = keyring.get_keyring()
    backend = PlaintextKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture(name="fake")
def strava_fake_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStrava]:
    """A running fake; both Strava hosts point at it; any other host fails the test."""
    import requests.adapters

    with FakeStrava() as server:
        monkeypatch.setenv("EVENSTRIDE_STRAVA_API_URL", server.api_url)
        monkeypatch.setenv("EVENSTRIDE_STRAVA_OAUTH_URL", server.url)
        monkeypatch.setenv("EVENSTRIDE_STRAVA_RETRIES", "2")
        monkeypatch.setenv("EVENSTRIDE_STRAVA_BACKOFF_S", "0.001")
        monkeypatch.setenv("EVENSTRIDE_STRAVA_TIMEOUT_S", "5")
        for name in ("STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET"):
            monkeypatch.delenv(name, raising=False)
        real_send = requests.adapters.HTTPAdapter.send

        def guarded(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            host = urlsplit(request.url).hostname
            assert host == "127.0.0.1", f"a request left for {host}: {request.url.split('?')[0]}"
            return real_send(self, request, *args, **kwargs)

        monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", guarded)
        yield server
        assert not server.spec_violations, server.spec_violations


def login(
    fake: FakeStrava, athlete: str = "default", *, expires_in: int | None = None
) -> dict[str, Any]:
    """Store the app and a fresh token pair in the (test) keyring, as `login strava` would."""
    from evenstride.connectors.strava import auth
    from evenstride.connectors.strava.client import AppCredentials, Tokens

    issued = fake.issue_tokens(expires_in)
    auth.save_app(AppCredentials(CLIENT_ID, CLIENT_SECRET))
    auth.save_tokens(
        athlete,
        Tokens(issued["access_token"], issued["refresh_token"], issued["expires_at"], ATHLETE_ID),
    )
    return issued


def cli_root() -> click.Group:
    """The same shape as evenstride.cli.main: `--home` in ctx.obj, then login/logout/sync."""
    from evenstride.cli import strava_cmds

    @click.group()
    @click.option("--home", type=click.Path(path_type=Path), required=True)
    @click.pass_context
    def root(ctx: click.Context, home: Path) -> None:
        ctx.obj = {"home": home}

    for name, cmd in (
        ("login", strava_cmds.login_strava),
        ("logout", strava_cmds.logout_strava),
        ("sync", strava_cmds.sync_strava),
    ):
        group = click.Group(name)
        group.add_command(cmd)
        root.add_command(group)
    return root
