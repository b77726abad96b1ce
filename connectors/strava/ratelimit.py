"""Strava's app-wide request budget, read from response headers, enforced BEFORE each request.

Why not stravalib's limiter: its default rule sleeps until the window resets, which is up to
UTC midnight for the daily limit, and a cron job must never sleep for hours. Here a request is
refused (BudgetExhaustedError) when the last seen usage of any window (overall or read,
15-minute or daily) is within a safety margin of its limit; the next run resumes. The budget is
shared by every athlete who authorised the application, so the headers are trusted, not
constants. The 15-minute window resets at :00/:15/:30/:45 UTC, the daily one at UTC midnight.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from evenstride.connectors.strava.errors import BudgetExhaustedError

HEADERS = {
    "overall": ("X-RateLimit-Limit", "X-RateLimit-Usage"),
    "read": ("X-ReadRateLimit-Limit", "X-ReadRateLimit-Usage"),
}


def _pair(text: str | None) -> tuple[int, int] | None:
    try:
        short, daily = (int(p.strip()) for p in (text or "").split(",")[:2])
    except ValueError:
        return None
    return short, daily


def quarter_start(now: dt.datetime) -> dt.datetime:
    return now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0)


def next_quarter(now: dt.datetime) -> dt.datetime:
    return quarter_start(now) + dt.timedelta(minutes=15)


def next_midnight(now: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), dt.UTC)


def retry_hint(when: dt.datetime) -> str:
    return f"the next run can resume after {when:%Y-%m-%d %H:%M} UTC"


@dataclass
class RateBudget:
    """Last seen usage per window; `check` raises before a request that would eat the margin."""

    short_margin: float = 0.10  # keep 10 % of the 15-minute budget (other athletes, retries)
    daily_margin: float = 0.05
    min_spare: int = 2  # never run a window down to its last requests
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    seen: dict[str, dict[str, int]] = field(default_factory=dict)
    seen_at: dt.datetime | None = None

    def observe(self, headers: Mapping[str, str]) -> None:
        """Remember the usage a response reports (case-insensitive header names)."""
        lower = {k.lower(): v for k, v in headers.items()}
        for kind, (limit_h, usage_h) in HEADERS.items():
            limit, usage = _pair(lower.get(limit_h.lower())), _pair(lower.get(usage_h.lower()))
            if limit and usage:
                self.seen[kind] = {
                    "short_usage": usage[0], "short_limit": limit[0],
                    "daily_usage": usage[1], "daily_limit": limit[1],
                }  # fmt: skip
                self.seen_at = self.clock()

    def _near_limit(self, usage: int, limit: int, margin: float) -> bool:
        spare = max(self.min_spare, int(limit * margin + 0.999))
        return bool(limit) and usage >= limit - spare

    def blocked(self) -> tuple[str, dt.datetime] | None:
        """(which window, when it resets) if the next request must not be sent, else None."""
        if self.seen_at is None:
            return None
        now = self.clock()
        same_day = self.seen_at.date() == now.date()
        same_quarter = quarter_start(self.seen_at) == quarter_start(now)
        for kind, w in self.seen.items():
            if same_day and self._near_limit(w["daily_usage"], w["daily_limit"], self.daily_margin):
                return f"daily {kind}", next_midnight(now)
            if same_quarter and self._near_limit(
                w["short_usage"], w["short_limit"], self.short_margin
            ):
                return f"15-minute {kind}", next_quarter(now)
        return None

    def check(self) -> None:
        """Raise BudgetExhaustedError when the next request would eat into the safety margin."""
        hit = self.blocked()
        if hit is None:
            return
        window, reset = hit
        w = self.seen[window.split()[-1]]
        used, limit = (
            (w["daily_usage"], w["daily_limit"])
            if window.startswith("daily")
            else (w["short_usage"], w["short_limit"])
        )
        raise BudgetExhaustedError(
            f"stopped before Strava's {window} request budget ran out ({used} of {limit} used; "
            "everything fetched so far is kept)",
            retry_hint(reset),
        )

    def after_429(self) -> str:
        """When to come back after a 429 (the exhausted window's reset)."""
        now = self.clock()
        for w in self.seen.values():
            if w["daily_limit"] and w["daily_usage"] >= w["daily_limit"]:
                return retry_hint(next_midnight(now))
        return retry_hint(next_quarter(now))

    def snapshot(self) -> dict[str, Any]:
        """The usage seen last, for the --json summary (numbers only)."""
        return {k: dict(v) for k, v in self.seen.items()}
