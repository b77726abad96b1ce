"""The audit page: a sparkline per athlete, links to reports, and every outside string escaped
(checked in the page source and in a real browser, headless Chromium)."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from test_audit_cli import seed

from evenstride.cli.audit_cmd import audit_cmd
from evenstride.cli.audit_html import report_file_name
from evenstride.store import open_store

SCRIPT_NAME = "<script>alert(1)</script>"
QUOTES_NAME = "\"&'"
SENSOR = "<b>HRM</b>\"&'"
TITLE = "<img src=x onerror=alert(2)>"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Dom(HTMLParser):
    """Tags, attributes and text of a page, as a browser-independent check."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def names(self) -> list[str]:
        return [t for t, _ in self.tags]


@click.group()
@click.option("--home", type=click.Path(path_type=Path), required=True)
@click.pass_context
def cli(ctx: click.Context, home: Path) -> None:
    ctx.obj = {"home": home}


cli.add_command(audit_cmd)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    with open_store(home) as store:
        seed(store, SCRIPT_NAME, [0.2] * 20 + [1.9] * 10, sensor=SENSOR, title=TITLE)
        seed(store, QUOTES_NAME, [0.3] * 30, rng_seed=3, title=TITLE)
        seed(store, "wrist", [0.0] * 30, sensor=None, rng_seed=4)
    out = home / "coach" / "audit.html"
    result = CliRunner().invoke(
        cli,
        [
            "--home",
            str(home),
            "audit",
            "--today",
            "2024-03-05",
            "--format",
            "html",
            "--out",
            str(out),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert f"audit written to {out}" in result.output
    return out


def test_outside_strings_are_escaped(page: Path) -> None:
    text = page.read_text()
    for raw in (SCRIPT_NAME, SENSOR, TITLE, QUOTES_NAME):
        assert raw not in text
    assert "<script" not in text.lower() and "<img" not in text.lower() and "<b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&quot;&amp;&#x27;" in text  # the name made of quotes and an ampersand
    dom = Dom(text)
    assert "script" not in dom.names() and "img" not in dom.names() and "b" not in dom.names()
    assert SCRIPT_NAME in "".join(dom.text)  # shown as text, exactly as the athlete is called
    assert any(a.get("title") == f"last run: {TITLE}" for _, a in dom.tags)
    assert any(a.get("data-athlete") == QUOTES_NAME for _, a in dom.tags)
    csp = [a for t, a in dom.tags if t == "meta" and a.get("http-equiv")]
    assert csp and "default-src 'none'" in (csp[0].get("content") or "")


def test_sparklines_and_report_links(page: Path) -> None:
    dom = Dom(page.read_text())
    assert dom.names().count("svg") == 2  # the two athletes with balance data
    assert dom.names().count("polyline") == 2
    bands = [a.get("class") for t, a in dom.tags if t == "rect"]
    assert bands.count("band-green") == bands.count("band-orange") == bands.count("band-red") == 2
    assert "no balance data" in "".join(dom.text)  # the wrist-only athlete
    hrefs = [a["href"] for t, a in dom.tags if t == "a" and a.get("href")]
    assert len(hrefs) == 3
    for name in (SCRIPT_NAME, QUOTES_NAME, "wrist"):
        assert report_file_name(name) in hrefs
        report = page.parent / report_file_name(name)
        if report.exists():  # written when the report module is installed
            assert "<script>alert" not in report.read_text()


def test_report_file_names_are_safe() -> None:
    assert report_file_name("ana") == "report-ana.html"
    for name in ("../../etc/passwd", SCRIPT_NAME, QUOTES_NAME, "a b/c", ".."):
        file = report_file_name(name)
        assert "/" not in file and ".." not in file and file.startswith("report-")
        assert Path(file).name == file
    assert report_file_name("a/b") != report_file_name("a_b")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_headless_chromium_renders_plots_and_runs_no_injected_script(
    page: Path, tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
        page.resolve().as_uri(),
    ]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.skip("chromium did not finish in 90 s")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = Dom(done.stdout)
    names = dom.names()
    assert "table" in names, done.stdout[:2000]
    assert names.count("svg") == 2 and names.count("polyline") == 2
    assert "script" not in names and "img" not in names and "b" not in names
    text = "".join(dom.text)
    assert SCRIPT_NAME in text and QUOTES_NAME in text  # rendered as text
    assert "alert(1)" not in done.stderr  # nothing ran (an alert would be logged)
