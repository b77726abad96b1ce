"""The HTML report in a real browser (headless Chromium): plots drawn, nothing fetched, no errors.

Skips when `chromium` is not installed (CI installs Debian's `chromium`). The DOM that Chromium
builds (--dump-dom) is parsed, so a point only counts when the browser really created the SVG
element; the phone-sized screenshot is decoded and must not be blank; Chromium's console log
(--enable-logging=stderr) must show no uncaught error and no Content-Security-Policy refusal
(the page is built to load nothing, so any refusal means something tried to).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_report_cli import HOSTILE_FILE, HOSTILE_NAME, build_home, invoke

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
)  # fmt: skip


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / "chromium-profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [CHROMIUM or "chromium", *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


class Dom(HTMLParser):
    """Counts data points (class "pt") per SVG id, and collects element names and text."""

    def __init__(self) -> None:
        super().__init__()
        self.svg: str | None = None
        self.points: Counter[str] = Counter()
        self.polylines: Counter[str] = Counter()
        self.tags: Counter[str] = Counter()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags[tag] += 1
        if tag == "svg":
            self.svg = a.get("id")
        elif self.svg and "pt" in (a.get("class") or "").split():
            self.points[self.svg] += 1
        elif self.svg and tag == "polyline":
            self.polylines[f"{self.svg}:{a.get('class')}"] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.svg = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit non-interlaced PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and ctype in (2, 6)
            channels = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    prev = bytearray(stride)
    rows = []
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                c = prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, [bytes(r) for r in rows]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("browser")
    build_home(tmp / "home")
    page = tmp / "report.html"
    out = invoke(tmp / "home", "report", "--html", str(page))
    assert out.exit_code == 0, out.output
    return page


def test_plots_are_drawn_in_chromium(report: Path, tmp_path: Path) -> None:
    proc = chromium(tmp_path, "--dump-dom", report.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = Dom()
    dom.feed(proc.stdout)
    # athletes are sorted by name: a0 = the hostile name, a1 = season, a2 = stravaonly
    pts = dom.points
    assert pts["a1-balance"] == 22  # one point per season run
    assert dom.polylines["a1-balance:baseline"] >= 1 and dom.polylines["a1-balance:limit"] >= 2
    assert pts["a1-detail-time"] >= 30 and pts["a1-detail-speed"] >= 30
    assert pts["a1-cadence"] == 22 and dom.polylines["a1-cadence:fit"] == 1
    assert pts["a1-weekly"] >= 6 + 6  # bars and median-d points
    assert pts["a0-balance"] == 1 and pts["a0-cadence"] == 2
    # the Strava-only athlete: cadence plots, an honest note instead of balance plots
    assert "a2-balance" not in pts and "a2-detail-time" not in pts
    assert pts["a2-cadence"] == 12 and pts["a2-weekly"] >= 4
    text = " ".join(dom.text)
    assert text.count("no balance sensor data") >= 2
    # outside strings are text, never markup
    assert dom.tags["script"] == 0 and dom.tags["img"] == 0
    assert HOSTILE_NAME in text and HOSTILE_FILE in text
    log = proc.stderr
    assert "Uncaught" not in log and "Refused to" not in log and "Content Security" not in log


def test_phone_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "phone.png"
    proc = chromium(tmp_path, "--window-size=412,915", f"--screenshot={shot}", report.as_uri())
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    assert "Uncaught" not in proc.stderr and "Refused to" not in proc.stderr
    width, height, rows = png_pixels(shot.read_bytes())
    assert (width, height) == (412, 915)
    channels = len(rows[0]) // width
    colours = Counter(row[i : i + 3] for row in rows[::3] for i in range(0, len(row), channels * 3))
    assert len(colours) > 40  # text, cards and plots, not an empty page
    white = colours[b"\xff\xff\xff"] + colours[b"\xf6\xf7\xf8"]
    assert white < 0.9 * sum(colours.values())


def test_console_check_catches_errors_and_blocked_loads(tmp_path: Path) -> None:
    """Control: the log checks above really see a script error and a blocked network load."""
    bad = tmp_path / "bad.html"
    csp = "default-src 'none'; script-src 'unsafe-inline'; img-src data:"
    bad.write_text(
        f'<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="{csp}">'
        '</head><body><img src="http://192.0.2.1/x.png"><script>throw new Error("boom")</script>'
        "</body></html>"
    )
    log = chromium(tmp_path, "--dump-dom", bad.as_uri()).stderr
    assert "Uncaught Error: boom" in log and "Content Security Policy" in log
