"""A one-shot HTTP listener on 127.0.0.1 that receives Strava's OAuth redirect.

Why local: the user's own API application lists "localhost"/"127.0.0.1" as its Authorization
Callback Domain, and Strava accepts any port there, so no public redirect endpoint is needed.
The listener binds the loopback interface only, answers one /callback request carrying `code`
or `error`, and never logs the query string (it holds the authorization code).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CALLBACK_PATH = "/callback"
PAGE = (
    "<!doctype html><meta charset=utf-8><title>evenstride</title>"
    "<p>{text}</p><p>You can close this window and return to the terminal.</p>"
)


@dataclass(frozen=True)
class CallbackResult:
    code: str | None
    state: str | None
    scope: str | None
    error: str | None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path != CALLBACK_PATH or not ({"code", "error"} & query.keys()):
            self.send_error(404)
            return
        result = CallbackResult(
            query.get("code"), query.get("state"), query.get("scope"), query.get("error")
        )
        text = (
            "Strava did not authorise evenstride." if result.error else "evenstride is authorised."
        )
        body = PAGE.format(text=text).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.result = result

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep the code out of logs
        return


class _Server(HTTPServer):
    result: CallbackResult | None = None


class OneShotCallback:
    """`with OneShotCallback(port) as cb: ... cb.redirect_uri ... cb.wait(300)`."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self._server = _Server((host, port), _Handler)
        self._server.timeout = 0.2
        self._lock = threading.Lock()

    @property
    def redirect_uri(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{CALLBACK_PATH}"

    def wait(self, timeout_s: float) -> CallbackResult | None:
        """Serve until the redirect arrives or `timeout_s` passes (None then)."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._server.result is None and time.monotonic() < deadline:
                self._server.handle_request()
        return self._server.result

    def close(self) -> None:
        self._server.server_close()

    def __enter__(self) -> OneShotCallback:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
