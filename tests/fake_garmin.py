"""A stateful fake Garmin Connect on 127.0.0.1, for tests that drive the REAL garminconnect.

garminconnect 0.3.x sends API calls with requests and logins/token refreshes with curl_cffi, so
only a real socket fakes both. Point the client at it with ``EVENSTRIDE_GARMIN_API_URL=fake.url``
(the adapter rewrites every URL garminconnect builds: API, DI token endpoint, SSO).

State kept across requests (so sync, push and nightly tests can share it):
  activities (list entries), files (ORIGINAL downloads), downloads (ids served, in order),
  access/refresh tokens (rotated on refresh), workouts, schedules (calendar), device messages,
  and a log of every request. Faults are scripted per path prefix (and method): an HTTP status
  (with headers, e.g. Retry-After), a dropped connection (before the request is handled, or
  after it was handled: a lost response), or a delay (for timeouts); ``after=N`` lets the first
  N matching requests through, so a fault can hit "half-way through the writes".
  ``on_request`` is called with every logged request (a test kills a subprocess from there).
  The calendar month view can spill into neighbouring months like Garmin's
  (``calendar_spill_days``), so clients must dedupe calendar items by id.

    with FakeGarminConnect() as fake:
        fake.add_runs(300)
        fake.fail("/download-service", status=500, times=1)
        ...
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import itertools
import json
import socket
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

DISPLAY_NAME = "fake-runner"
EMAIL = "runner@example.com"
PASSWORD = "correct horse battery staple"  # noqa: S105 - a fake account
MFA_CODE = "123456"
CLIENT_ID = "GARMIN_CONNECT_MOBILE_ANDROID_DI"
EPOCH = dt.datetime(2024, 1, 1, 6, 0, tzinfo=dt.UTC)

TYPE_IDS = {
    "running": (1, 17),
    "trail_running": (6, 1),
    "treadmill_running": (18, 1),
    "track_running": (153, 1),
    "virtual_run": (157, 1),
    "indoor_running": (158, 1),
    "cycling": (2, 17),
    "walking": (9, 17),
    "strength_training": (13, 29),
    "lap_swimming": (27, 26),
}
SPORT_IDS = {"running": 1, "cycling": 2, "other": 3, "swimming": 4, "strength_training": 5}


# --------------------------------------------------------------------------- payload makers


def make_run_fit(
    serial: int, start: dt.datetime, balance: float = 50.3, sport: str = "running"
) -> bytes:
    """A small, valid FIT activity (file_id, 5 records with running dynamics, lap, session)."""
    from garmin_fit_sdk import Encoder, Profile

    m = Profile["mesg_num"]
    enc = Encoder()
    enc.write_mesg(
        {
            "mesg_num": m["FILE_ID"],
            "type": "activity",
            "manufacturer": "garmin",
            "product": 2697,
            "serial_number": serial,
            "time_created": start,
        }
    )
    for i in range(5):
        enc.write_mesg(
            {
                "mesg_num": m["RECORD"],
                "timestamp": start + dt.timedelta(seconds=i),
                "distance": 3.0 * i,
                "speed": 3.0,
                "heart_rate": 140,
                "cadence": 85,
                "stance_time": 250.0,
                "stance_time_balance": balance,
                "vertical_oscillation": 80.0,
                "step_length": 1100.0,
            }
        )
    end = start + dt.timedelta(seconds=4)
    common = {
        "timestamp": end,
        "start_time": start,
        "total_elapsed_time": 4.0,
        "total_timer_time": 4.0,
        "total_distance": 12.0,
        "sport": sport,
    }
    enc.write_mesg({"mesg_num": m["LAP"], **common})
    enc.write_mesg(
        {
            "mesg_num": m["SESSION"],
            **common,
            "sub_sport": "generic",
            "avg_stance_time_balance": balance,
            "avg_stance_time": 250.0,
            "first_lap_index": 0,
            "num_laps": 1,
        }
    )
    enc.write_mesg(
        {"mesg_num": m["ACTIVITY"], "timestamp": end, "num_sessions": 1, "total_timer_time": 4.0}
    )
    return enc.close()


def make_zip(fit: bytes, name: str) -> bytes:
    """What Garmin's ORIGINAL download returns: a zip with `<id>_ACTIVITY.fit`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, fit)
    return buf.getvalue()


def activity_entry(
    activity_id: int, start: dt.datetime, type_key: str = "running", balance: float | None = 50.3
) -> dict[str, Any]:
    """An activity-list entry shaped like /activitylist-service/activities/search/activities."""
    type_id, parent = TYPE_IDS.get(type_key, (1, 17))
    local = start + dt.timedelta(hours=2)
    entry: dict[str, Any] = {
        "activityId": activity_id,
        "activityName": f"Run {activity_id}",
        "startTimeLocal": local.strftime("%Y-%m-%d %H:%M:%S"),
        "startTimeGMT": start.strftime("%Y-%m-%d %H:%M:%S"),
        "beginTimestamp": int(start.timestamp() * 1000),
        "activityType": {
            "typeId": type_id,
            "typeKey": type_key,
            "parentTypeId": parent,
            "isHidden": False,
            "restricted": False,
            "trimmable": True,
        },
        "eventType": {"typeId": 9, "typeKey": "uncategorized", "sortOrder": 10},
        "distance": 12.0,
        "duration": 4.0,
        "elapsedDuration": 4.0,
        "movingDuration": 4.0,
        "averageSpeed": 3.0,
        "averageHR": 140.0,
        "ownerId": 1,
        "ownerDisplayName": DISPLAY_NAME,
        "deviceId": 3945849289,
        "manufacturer": "GARMIN",
        "hasPolyline": False,
    }
    if type_key in ("running", "trail_running", "treadmill_running", "track_running"):
        entry.update(
            {
                "averageRunningCadenceInStepsPerMinute": 170.0,
                "maxRunningCadenceInStepsPerMinute": 180.0,
                "avgStrideLength": 110.0,
                "avgVerticalOscillation": 8.0,
                "avgGroundContactTime": 250.0,
                "avgVerticalRatio": 7.3,
                "steps": 12,
            }
        )
        if balance is not None:
            entry["avgGroundContactBalance"] = balance
    return entry


# --------------------------------------------------------------------------- the server


@dataclass
class Fault:
    method: str | None
    prefix: str
    times: int
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"message": "fake failure"}'
    action: str = "status"  # status | drop | drop_after (handled, then no answer) | sleep | stall
    seconds: float = 0.0
    after: int = 0  # let this many matching requests through first


def next_fault(faults: list[Fault], method: str, path: str) -> Fault | None:
    """The fault this request meets (counting down `after`, then `times`), else None.

    The caller holds its fake's lock."""
    for f in faults:
        if f.times > 0 and path.startswith(f.prefix) and f.method in (None, method):
            if f.after > 0:
                f.after -= 1
                continue
            f.times -= 1
            return f
    return None


@dataclass
class Logged:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None


class FakeGarminConnect:
    """The fake service; `url` is its base URL. Thread-safe enough for one client."""

    def __init__(self, *, mfa: bool = False) -> None:
        self.lock = threading.RLock()
        self.mfa = mfa
        self.activities: dict[int, dict[str, Any]] = {}
        self.files: dict[int, bytes] = {}
        self.downloads: list[int] = []
        self.log: list[Logged] = []
        self.faults: list[Fault] = []
        self._serial = itertools.count(1)
        self.access_tokens: set[str] = set()
        self.issued: list[str] = []  # every token ever handed out (for leak checks)
        self.refresh_token = ""
        self.refreshes = 0
        self.logins = 0
        self.tickets: set[str] = set()
        self.workouts: dict[int, dict[str, Any]] = {}
        self.workout_fits: dict[int, bytes] = {}
        self.schedules: dict[int, dict[str, Any]] = {}
        self.device_messages: list[dict[str, Any]] = []
        self._ids = itertools.count(900_000_001)
        self.on_download: Callable[[int], None] | None = None
        self.on_request: Callable[[Logged], None] | None = None
        self.calendar_spill_days = 0
        self.issue_tokens()
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # ---- lifecycle
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeGarminConnect:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeGarminConnect:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- tokens
    def issue_tokens(self) -> dict[str, str]:
        n = next(self._serial)
        access = f"FAKE-ACCESS-{n:04d}-{int(time.time() * 1e6) % 10**8:08d}"
        self.access_tokens.add(access)
        self.refresh_token = f"FAKE-REFRESH-{n:04d}-{int(time.time() * 1e6) % 10**8:08d}"
        self.issued.extend([access, self.refresh_token])
        return {"access_token": access, "refresh_token": self.refresh_token}

    def tokens_json(self) -> str:
        """Token JSON as garminconnect dumps it, for the current valid tokens."""
        access = sorted(self.access_tokens)[-1]
        return json.dumps(
            {"di_token": access, "di_refresh_token": self.refresh_token, "di_client_id": CLIENT_ID}
        )

    def expire_access_tokens(self) -> None:
        """Every access token now answers 401 (the refresh token still works)."""
        with self.lock:
            self.access_tokens.clear()

    def revoke_all(self) -> None:
        """Access and refresh tokens both dead: only a new login helps."""
        with self.lock:
            self.access_tokens.clear()
            self.refresh_token = "REVOKED"

    # ---- data
    def add_activity(
        self,
        start: dt.datetime,
        type_key: str = "running",
        *,
        balance: float | None = 50.3,
        fit_balance: float | None = None,
        body: bytes | None = None,
        activity_id: int | None = None,
    ) -> int:
        aid = activity_id or next(self._ids)
        self.activities[aid] = activity_entry(aid, start, type_key, balance)
        if body is None:
            fit = make_run_fit(aid % 2**31, start, fit_balance if fit_balance else balance or 50.0)
            body = make_zip(fit, f"{aid}_ACTIVITY.fit")
        self.files[aid] = body
        return aid

    def add_runs(
        self, n: int, *, start: dt.datetime = EPOCH, every: dt.timedelta | None = None
    ) -> list[int]:
        """n activities, one every 12 h by default; every 5th is not a run (cycling/walking)."""
        every = every or dt.timedelta(hours=12)
        kinds = ["running", "trail_running", "treadmill_running", "track_running", "cycling"]
        ids = []
        for i in range(n):
            kind = kinds[i % 5] if i % 10 != 9 else "walking"
            ids.append(self.add_activity(start + every * i, kind))
        return ids

    def running_ids(self) -> set[int]:
        from evenstride.connectors.garmin.sync import is_running

        return {aid for aid, e in self.activities.items() if is_running(e)}

    # ---- faults
    def fail(
        self,
        prefix: str,
        status: int = 500,
        *,
        times: int = 1,
        method: str | None = None,
        headers: dict[str, str] | None = None,
        after: int = 0,
    ) -> None:
        self.faults.append(Fault(method, prefix, times, status, headers or {}, after=after))

    def drop(
        self,
        prefix: str,
        *,
        times: int = 1,
        method: str | None = None,
        after: int = 0,
        handled: bool = False,
    ) -> None:
        """Close the connection without answering (a network cut).

        With ``handled=True`` the request is carried out first and only the answer is lost:
        the client cannot tell whether its write happened.
        """
        action = "drop_after" if handled else "drop"
        self.faults.append(Fault(method, prefix, times, action=action, after=after))

    def delay(self, prefix: str, seconds: float, *, times: int = 1) -> None:
        self.faults.append(Fault(None, prefix, times, action="sleep", seconds=seconds))

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            return next_fault(self.faults, method, path)

    def requests_to(self, prefix: str) -> list[Logged]:
        return [r for r in self.log if r.path.startswith(prefix)]

    def data_writes(self) -> list[Logged]:
        """Every request that could change the account's data (not logins or token refreshes)."""
        skip = ("/di-oauth2-service", "/mobile/", "/portal/")
        return [r for r in self.log if r.method != "GET" and not r.path.startswith(skip)]

    # ---- workouts and calendar (push tests)
    def add_workout(
        self,
        name: str,
        *,
        description: str = "",
        sport_key: str = "running",
        on: str | None = None,
    ) -> tuple[int, int | None]:
        """A workout the athlete made by hand (optionally scheduled on `on`, YYYY-MM-DD)."""
        with self.lock:
            wid = next(self._ids)
            self.workouts[wid] = {
                "workoutId": wid,
                "ownerId": 1,
                "workoutName": name,
                "description": description,
                "sportType": {
                    "sportTypeId": SPORT_IDS.get(sport_key, 3),
                    "sportTypeKey": sport_key,
                },
                "workoutSegments": [],
            }
            sid = None
            if on is not None:
                sid = next(self._ids)
                self.schedules[sid] = {"workoutScheduleId": sid, "workoutId": wid, "date": on}
        return wid, sid

    def calendar(self) -> list[dict[str, Any]]:
        """Every scheduled workout, by date: {date, schedule_id, workout_id, name}."""
        with self.lock:
            rows = [
                {
                    "date": s["date"],
                    "schedule_id": sid,
                    "workout_id": s["workoutId"],
                    "name": (self.workouts.get(s["workoutId"]) or {}).get("workoutName"),
                }
                for sid, s in self.schedules.items()
            ]
        return sorted(rows, key=lambda r: (r["date"] or "", r["schedule_id"]))


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client killed mid-request (the point of some tests) is not worth a traceback."""


def _handler_for(fake: FakeGarminConnect) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.fake = fake
    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeGarminConnect
    _swallow = False  # set while a drop_after fault handles a request whose answer is lost

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    # ---- plumbing
    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(
        self,
        status: int,
        payload: Any = None,
        *,
        raw: bytes | None = None,
        ctype: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        if self._swallow:
            return
        data = (
            raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        )
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _dispatch(self, method: str) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        body = self._body() if method in ("POST", "PUT") else b""
        logged = Logged(method, path, query, self.headers.get("Authorization"))
        fake.log.append(logged)
        if fake.on_request is not None:
            fake.on_request(logged)
        fault = fake.take_fault(method, path)
        if fault is not None:
            if fault.action == "drop":
                return self._drop()
            if fault.action == "drop_after":
                self._swallow = True  # handle the request, but never answer
                try:
                    self._route(method, path, query, body)
                finally:
                    self._swallow = False
                return self._drop()
            if fault.action == "stall":  # no answer in time, and the request is never carried out
                time.sleep(fault.seconds)
                return self._drop()
            if fault.action == "sleep":
                time.sleep(fault.seconds)
            else:
                return self._send(fault.status, raw=fault.body, headers=fault.headers)
        return self._route(method, path, query, body)

    def _route(self, method: str, path: str, query: dict, body: bytes) -> None:
        for route_method, prefix, fn, authed in _ROUTES:
            if route_method == method and path.startswith(prefix):
                if authed and not self._authorized():
                    return self._send(401, {"message": "Unauthorized"})
                return fn(self, path, query, body)
        return self._send(404, {"message": f"no fake route for {method} {path}"})

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization") or ""
        return auth.startswith("Bearer ") and auth[7:] in self.fake.access_tokens

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    # ---- auth: SSO mobile flow and the DI token endpoint
    def sso_page(self, path: str, query: dict, body: bytes) -> None:
        self._send(200, raw=b"<html><title>Sign in</title></html>", ctype="text/html")

    def sso_login(self, path: str, query: dict, body: bytes) -> None:
        data = json.loads(body or b"{}")
        if data.get("username") != EMAIL or data.get("password") != PASSWORD:
            return self._send(200, {"responseStatus": {"type": "INVALID_USERNAME_PASSWORD"}})
        if self.fake.mfa:
            return self._send(
                200,
                {
                    "responseStatus": {"type": "MFA_REQUIRED"},
                    "customerMfaInfo": {"mfaLastMethodUsed": "email"},
                },
            )
        self._send(200, self._ticket())

    def sso_mfa(self, path: str, query: dict, body: bytes) -> None:
        data = json.loads(body or b"{}")
        if data.get("mfaVerificationCode") != MFA_CODE:
            return self._send(200, {"responseStatus": {"type": "INVALID_MFA_CODE"}})
        self._send(200, self._ticket())

    def _ticket(self) -> dict[str, Any]:
        ticket = f"ST-{next(self.fake._serial):06d}-fake"
        self.fake.tickets.add(ticket)
        return {"responseStatus": {"type": "SUCCESSFUL"}, "serviceTicketId": ticket}

    def di_token(self, path: str, query: dict, body: bytes) -> None:
        fake = self.fake
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        with fake.lock:
            if form.get("grant_type") == "refresh_token":
                if form.get("refresh_token") != fake.refresh_token:
                    return self._send(400, {"error": "invalid_grant"})
                fake.refreshes += 1
            elif form.get("service_ticket") in fake.tickets:
                fake.tickets.discard(form["service_ticket"])
                fake.logins += 1
            else:
                return self._send(400, {"error": "invalid_grant"})
            tokens = fake.issue_tokens()
        self._send(200, {**tokens, "token_type": "Bearer", "expires_in": 3600})

    # ---- profile
    def social_profile(self, path: str, query: dict, body: bytes) -> None:
        self._send(200, {"displayName": DISPLAY_NAME, "fullName": "Fake Runner", "profileId": 1})

    def user_settings(self, path: str, query: dict, body: bytes) -> None:
        self._send(200, {"id": 1, "userData": {"measurementSystem": "metric"}})

    # ---- activities
    def activity_list(self, path: str, query: dict, body: bytes) -> None:
        start = int(query.get("start", ["0"])[0])
        limit = min(int(query.get("limit", ["20"])[0]), 1000)
        items = sorted(
            self.fake.activities.values(),
            key=lambda e: (e["startTimeGMT"], e["activityId"]),
            reverse=query.get("sortOrder", [""])[0] != "asc",
        )
        if "startDate" in query:
            items = [e for e in items if e["startTimeLocal"][:10] >= query["startDate"][0]]
        if "endDate" in query:
            items = [e for e in items if e["startTimeLocal"][:10] <= query["endDate"][0]]
        self._send(200, items[start : start + limit])

    def activity_count(self, path: str, query: dict, body: bytes) -> None:
        self._send(200, {"totalCount": len(self.fake.activities)})

    def activity(self, path: str, query: dict, body: bytes) -> None:
        aid = int(path.rstrip("/").split("/")[-1])
        entry = self.fake.activities.get(aid)
        if entry is None:
            return self._send(404, {"message": "not found"})
        summary = {"groundContactBalanceLeft": entry.get("avgGroundContactBalance")}
        self._send(200, {"activityId": aid, "summaryDTO": summary, "activityTypeDTO": {}})

    def download(self, path: str, query: dict, body: bytes) -> None:
        aid = int(path.rstrip("/").split("/")[-1])
        data = self.fake.files.get(aid)
        if data is None:
            return self._send(404, {"message": "not found"})
        with self.fake.lock:
            self.fake.downloads.append(aid)
        if self.fake.on_download:
            self.fake.on_download(aid)
        self._send(200, raw=data, ctype="application/x-zip-compressed")

    # ---- workouts, calendar, device (for push tests)
    def workouts_list(self, path: str, query: dict, body: bytes) -> None:
        start = int(query.get("start", ["0"])[0])
        limit = int(query.get("limit", ["100"])[0])
        self._send(200, list(self.fake.workouts.values())[start : start + limit])

    def workout_get(self, path: str, query: dict, body: bytes) -> None:
        tail = path.rstrip("/").split("/")
        if tail[-2] == "FIT":
            fit = self.fake.workout_fits.get(int(tail[-1]))
            if fit is None:
                return self._send(404, {"message": "not found"})
            return self._send(200, raw=fit, ctype="application/octet-stream")
        w = self.fake.workouts.get(int(tail[-1])) if tail[-1].isdigit() else None
        if w is None:
            return self._send(404, {"message": "not found"})
        self._send(200, w)

    def workout_post(self, path: str, query: dict, body: bytes) -> None:
        w = json.loads(body or b"{}")
        w["workoutId"] = next(self.fake._ids)
        w.setdefault("ownerId", 1)
        w["createdDate"] = w["updateDate"] = dt.datetime.now(dt.UTC).isoformat()
        self.fake.workouts[w["workoutId"]] = w
        self._send(200, w)

    def workout_put(self, path: str, query: dict, body: bytes) -> None:
        wid = int(path.rstrip("/").split("/")[-1])
        if wid not in self.fake.workouts:
            return self._send(404, {"message": "not found"})
        self.fake.workouts[wid] = {**json.loads(body or b"{}"), "workoutId": wid}
        self._send(204)

    def workout_delete(self, path: str, query: dict, body: bytes) -> None:
        wid = int(path.rstrip("/").split("/")[-1])
        if self.fake.workouts.pop(wid, None) is None:
            return self._send(404, {"message": f"No workout found for workoutId = {wid}"})
        for sid in [s for s, v in self.fake.schedules.items() if v["workoutId"] == wid]:
            del self.fake.schedules[sid]
        self._send(204)

    def schedule_post(self, path: str, query: dict, body: bytes) -> None:
        wid = int(path.rstrip("/").split("/")[-1])
        w = self.fake.workouts.get(wid)
        if w is None:
            return self._send(404, {"message": "not found"})
        sid = next(self.fake._ids)
        date = json.loads(body or b"{}").get("date")
        self.fake.schedules[sid] = {"workoutScheduleId": sid, "workoutId": wid, "date": date}
        self._send(200, {"workoutScheduleId": sid, "calendarDate": date, "workout": w})

    def schedule_get(self, path: str, query: dict, body: bytes) -> None:
        if path.rstrip("/").endswith("workoutScheduleByPeriod"):
            lo, hi = query.get("startDate", [""])[0], query.get("endDate", ["9999"])[0]
            items = [s for s in self.fake.schedules.values() if lo <= s["date"] <= hi]
            return self._send(200, items)
        s = self.fake.schedules.get(int(path.rstrip("/").split("/")[-1]))
        self._send(200, s) if s else self._send(404, {"message": "not found"})

    def schedule_delete(self, path: str, query: dict, body: bytes) -> None:
        sid = int(path.rstrip("/").split("/")[-1])
        if self.fake.schedules.pop(sid, None) is None:
            return self._send(404, {"message": f"No workout found for workout schedule = {sid}"})
        self._send(204)

    def calendar_month(self, path: str, query: dict, body: bytes) -> None:
        parts = path.rstrip("/").split("/")
        year, month0 = int(parts[-3]), int(parts[-1])
        first = dt.date(year, month0 + 1, 1)
        last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        spill = dt.timedelta(days=self.fake.calendar_spill_days)
        lo, hi = (first - spill).isoformat(), (last + spill).isoformat()
        items = []
        for s in list(self.fake.schedules.values()):
            if lo <= (s["date"] or "") <= hi:
                w = self.fake.workouts.get(s["workoutId"], {})
                items.append(
                    {
                        "id": s["workoutScheduleId"],
                        "itemType": "workout",
                        "workoutId": s["workoutId"],
                        "date": s["date"],
                        "title": w.get("workoutName"),
                        "sportTypeKey": (w.get("sportType") or {}).get("sportTypeKey"),
                    }
                )
        self._send(200, {"year": year, "month": month0, "calendarItems": items})

    def device_message(self, path: str, query: dict, body: bytes) -> None:
        msgs = json.loads(body or b"[]")
        self.fake.device_messages.extend(msgs)
        self._send(200, [{"messageId": next(self.fake._ids), **m} for m in msgs])


_ROUTES: list[tuple[str, str, Callable[..., None], bool]] = [
    ("GET", "/mobile/sso/", _Handler.sso_page, False),
    ("POST", "/mobile/api/login", _Handler.sso_login, False),
    ("POST", "/mobile/api/mfa/verifyCode", _Handler.sso_mfa, False),
    ("POST", "/portal/api/mfa/verifyCode", _Handler.sso_mfa, False),
    ("POST", "/di-oauth2-service/oauth/token", _Handler.di_token, False),
    ("GET", "/userprofile-service/socialProfile", _Handler.social_profile, True),
    ("GET", "/userprofile-service/userprofile/user-settings", _Handler.user_settings, True),
    ("GET", "/activitylist-service/activities/search/activities", _Handler.activity_list, True),
    ("GET", "/activitylist-service/activities/count", _Handler.activity_count, True),
    ("GET", "/activity-service/activity/", _Handler.activity, True),
    ("GET", "/download-service/files/activity/", _Handler.download, True),
    ("GET", "/workout-service/workouts", _Handler.workouts_list, True),
    ("GET", "/workout-service/workout/", _Handler.workout_get, True),
    ("POST", "/workout-service/workout", _Handler.workout_post, True),
    ("PUT", "/workout-service/workout/", _Handler.workout_put, True),
    ("DELETE", "/workout-service/workout/", _Handler.workout_delete, True),
    ("POST", "/workout-service/schedule/", _Handler.schedule_post, True),
    ("GET", "/workout-service/schedule/", _Handler.schedule_get, True),
    ("DELETE", "/workout-service/schedule/", _Handler.schedule_delete, True),
    ("GET", "/calendar-service/year/", _Handler.calendar_month, True),
    ("POST", "/device-service/devicemessage/messages", _Handler.device_message, True),
]


# --------------------------------------------------------------------------- pytest fixtures
# Import `fake_fixture` / `keyring_file_fixture` into a test module (with a noqa for F401);
# tests then request them as `fake` and `keyring_file`.


@pytest.fixture(name="fake")
def fake_fixture(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A running fake with every garminconnect URL pointed at it and tiny retry delays."""
    with FakeGarminConnect() as server:
        monkeypatch.setenv("EVENSTRIDE_GARMIN_API_URL", server.url)
        monkeypatch.setenv("EVENSTRIDE_GARMIN_RETRIES", "2")
        monkeypatch.setenv("EVENSTRIDE_GARMIN_BACKOFF_S", "0.001")
        monkeypatch.setenv("EVENSTRIDE_GARMIN_TIMEOUT_S", "3")
        monkeypatch.delenv("GARMINTOKENS", raising=False)
        import garminconnect.client.sso as sso

        monkeypatch.setattr(sso, "MOBILE_DELAY_MIN_S", 0.0)  # the anti-WAF pause before login
        monkeypatch.setattr(sso, "MOBILE_DELAY_MAX_S", 0.0)
        yield server


@pytest.fixture(name="keyring_file")
def keyring_file_fixture(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A REAL keyring backend (keyrings.alt's plain-text file) inside tmp_path."""
    import keyring
    from keyrings.alt.file import PlaintextKeyring

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    previous = keyring.get_keyring()
    backend = PlaintextKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)
