"""The audit as one self-contained HTML page: a table with an inline SVG sparkline per athlete.

Every string that came from outside (athlete names, sensor/device strings, activity titles,
plan session names, status texts) goes through `esc`; numbers are formatted here. A strict
Content-Security-Policy (no scripts at all) is a second line of defence, not the first.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any
from urllib.parse import quote

from evenstride.metrics.audit import AuditRow
from evenstride.metrics.zones import GREEN_LIMIT_PP, ORANGE_LIMIT_PP

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
SPARK_W, SPARK_H = 160, 44
CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}th,td{padding:.3em .6em;border-bottom:1px solid #ddd;
text-align:left;vertical-align:middle;white-space:nowrap}th{background:#f4f4f4}
tr.t0 td:first-child{border-left:5px solid #c62828}tr.t1 td:first-child{border-left:5px solid #ef8f00}
tr.t2 td:first-child,tr.t3 td:first-child{border-left:5px solid #7b8ea3}
.muted,.nodata{color:#777}.spark{display:block}
"""


def esc(value: Any) -> str:
    """HTML-escape text and attribute values (quotes too); None is empty."""
    return "" if value is None else html.escape(str(value), quote=True)


def report_file_name(athlete: str) -> str:
    """`report-<athlete>.html`, with unsafe characters replaced (plus a hash so that two
    names that sanitise alike never share a file)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", athlete).strip("._-") or "athlete"
    if safe != athlete:
        safe += "-" + hashlib.sha256(athlete.encode()).hexdigest()[:8]
    return f"report-{safe}.html"


def _y(d: float, lim: float) -> float:
    d = max(-lim, min(lim, d))
    return round((lim - d) / (2 * lim) * SPARK_H, 2)


def sparkline(series: list[tuple[str, float]], label: str) -> str:
    """d per run (left up, right down) over Garmin's zone bands, as an inline SVG."""
    if not series:
        return '<span class="nodata">no balance data</span>'
    values = [v for _, v in series]
    lim = max(ORANGE_LIMIT_PP + 0.75, min(6.0, 1.1 * max(abs(v) for v in values)))
    n = len(values)
    step = (SPARK_W - 6) / max(n - 1, 1)
    pts = [(round(3 + i * step, 2), _y(v, lim)) for i, v in enumerate(values)]
    orange = (_y(ORANGE_LIMIT_PP, lim), _y(-ORANGE_LIMIT_PP, lim))
    green = (_y(GREEN_LIMIT_PP, lim), _y(-GREEN_LIMIT_PP, lim))
    last_date, last = series[-1]
    title = f"{label}: d per run, {n} runs, latest {last:+.2f} pp on {last_date}"
    poly = " ".join(f"{x},{y}" for x, y in pts)
    return (
        f'<svg class="spark" xmlns="http://www.w3.org/2000/svg" width="{SPARK_W}" '
        f'height="{SPARK_H}" viewBox="0 0 {SPARK_W} {SPARK_H}" role="img" '
        f'aria-label="{esc(title)}"><title>{esc(title)}</title>'
        f'<rect class="band-red" x="0" y="0" width="{SPARK_W}" height="{SPARK_H}" '
        'fill="#f8d3d3"/>'
        f'<rect class="band-orange" x="0" y="{orange[0]}" width="{SPARK_W}" '
        f'height="{round(orange[1] - orange[0], 2)}" fill="#fde3bf"/>'
        f'<rect class="band-green" x="0" y="{green[0]}" width="{SPARK_W}" '
        f'height="{round(green[1] - green[0], 2)}" fill="#d6efd6"/>'
        f'<line x1="0" x2="{SPARK_W}" y1="{_y(0, lim)}" y2="{_y(0, lim)}" stroke="#9a9a9a" '
        'stroke-width="0.5"/>'
        f'<polyline points="{poly}" fill="none" stroke="#1f3a5f" stroke-width="1.2"/>'
        f'<circle cx="{pts[-1][0]}" cy="{pts[-1][1]}" r="2.2" fill="#1f3a5f"/></svg>'
    )


HEADERS = (
    "athlete", "concern", "d per run", "zone", "detector", "magnitude", "cadence", "freshness",
    "balance sensor", "plan", "next session", "last nightly",
)  # fmt: skip


def _row(row: AuditRow, link: str | None) -> str:
    name = esc(row.athlete)
    if link:
        name = f'<a href="{esc(quote(link))}">{name}</a>'
    fresh = esc(row.freshness_text())
    if row.last_run_title:
        fresh = f'<span title="{esc("last run: " + row.last_run_title)}">{fresh}</span>'
    cells = [
        name,
        esc(row.concern),
        sparkline(row.series, row.athlete),
        esc(row.zone_text()),
        esc(row.state_text()),
        esc(row.magnitude_text()),
        esc(row.cadence_text()),
        fresh,
        esc(row.sensor_text()),
        esc(row.plan_text()),
        esc(row.next_text()),
        esc(row.nightly_status or ""),
    ]
    tds = "".join(f"<td>{c}</td>" for c in cells)
    return f'<tr class="t{row.tier}" data-athlete="{esc(row.athlete)}">{tds}</tr>'


def render_audit_html(
    rows: Iterable[AuditRow], *, today: date, links: Mapping[str, str] | None = None
) -> str:
    """The whole page (deterministic for fixed input)."""
    links = links or {}
    rows = list(rows)
    head = "".join(f"<th>{esc(h)}</th>" for h in HEADERS)
    body = "".join(_row(r, links.get(r.athlete)) for r in rows)
    if not rows:
        body = f'<tr><td colspan="{len(HEADERS)}" class="nodata">no athletes yet</td></tr>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>evenstride audit {today.isoformat()}</title><style>{CSS}</style></head>"
        f"<body><h1>evenstride audit, {today.isoformat()}</h1>"
        '<p class="muted">Most concerning first: red-zone shifts, orange-zone shifts, other '
        "shifts, returning, stable, no verdict; then shift size against the athlete's MDC "
        "(the smallest change that is more than noise) and days since the last run. d = GCT "
        "balance - 50 (pp, + = more contact time on the left foot); plot bands are Garmin's "
        "green/orange/red zones. Athlete names link to their full reports.</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        "</body></html>\n"
    )
