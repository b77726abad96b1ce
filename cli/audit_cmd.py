"""`evenstride audit`: every athlete of the roster in one table, most concerning first.

This module only gathers (store rows, verdicts, saved plans, sync times) and prints; the rows
and their order are `metrics.audit` (pure), the HTML page is `cli.audit_html`.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from evenstride.cli import exitcodes
from evenstride.cli.audit_html import render_audit_html, report_file_name
from evenstride.cli.common import Fail, dump_csv, dump_json, home_of, store_of, table
from evenstride.metrics.audit import COLUMNS, TABLE_HEADERS, AuditRow, audit_row, order, table_cells
from evenstride.store import Store
from evenstride.store.archive import write_private_file

FORMATS = ("table", "csv", "json", "html")
SYNC_SOURCES = ("garmin", "strava")
log = logging.getLogger(__name__)


def _last_sync(store: Store, athlete: str, activities: list[dict[str, Any]]) -> datetime | None:
    """The latest successful sync the nightly job recorded, else the latest import from a
    platform (both mean 'data was last brought in then')."""
    stamps: list[datetime] = []
    for src in SYNC_SOURCES:
        text = store.get_sync_state(athlete, src, "synced_at")
        if text:
            with contextlib.suppress(ValueError):
                stamps.append(datetime.fromisoformat(text))
    if not stamps:
        stamps = [a["imported_at"] for a in activities if a.get("imported_at")]
    stamps = [s if s.tzinfo else s.replace(tzinfo=UTC) for s in stamps]
    return max(stamps) if stamps else None


def _last_title(activities: list[dict[str, Any]]) -> str | None:
    """The latest activity's title as the platform had it (Garmin's or Strava's name)."""
    for act in reversed(activities):
        extra = act.get("extra") or {}
        title = (extra.get("summary") or {}).get("activityName") or (extra.get("strava") or {}).get(
            "name"
        )
        if isinstance(title, str) and title:
            return title
    return None


def gather_row(store: Store, home: Path, athlete: str, *, today: date) -> AuditRow:
    """Everything the audit shows for one athlete, read from the store and the saved plan."""
    from evenstride.analysis import summaries
    from evenstride.metrics.trend import assess_athlete
    from evenstride.plans import last_plan

    runs = summaries(store, athlete)
    verdict = assess_athlete(runs) if not runs.empty else None
    activities = store.list_activities(athlete)
    plan = None
    try:
        plan = last_plan(home, athlete)
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("%s: saved plan unreadable; audit shows no plan", athlete)
    return audit_row(
        athlete,
        verdict,
        runs,
        today=today,
        last_sync=_last_sync(store, athlete, activities),
        plan=plan,
        nightly_status=store.get_sync_state(athlete, "nightly", "status"),
        last_run_title=_last_title(activities),
    )


def write_reports(store: Store, folder: Path, names: list[str]) -> dict[str, str] | None:
    """Each athlete's full report next to the audit (when the report module is installed).

    Returns athlete -> file name written (an athlete whose report fails gets no file), or None
    when the report module is not installed.
    """
    try:
        from evenstride.cli.report_cmd import build_reports
        from evenstride.cli.report_html import render_html
    except ImportError:
        return None
    written = {}
    for name in names:
        file_name = report_file_name(name)
        try:
            reports = build_reports(store, name, None, detail=True)
            title = f"evenstride report: {name}"
            write_private_file(folder / file_name, render_html(reports, title=title))
        except Exception:  # noqa: BLE001 - one report must not cost the whole audit
            log.warning("report for %s could not be written", name, exc_info=True)
            continue
        written[name] = file_name
    return written


@click.command("audit")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
    help="table (terminal), csv, json, or html (a page with a trend plot per athlete).",
)  # fmt: skip
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File for --format html; each athlete's report-<name>.html is written next to it.",
)
@click.option("--athlete", "athletes", multiple=True, help="Only these athletes (repeatable).")
@click.option("--today", type=click.DateTime(["%Y-%m-%d"]), default=None, hidden=True)
@click.pass_context
def audit_cmd(
    ctx: click.Context,
    fmt: str,
    out: Path | None,
    athletes: tuple[str, ...],
    today: datetime | None,
) -> None:
    """The coach's audit: all athletes sorted by concern.

    Order: confirmed GCT-balance shifts in the red zone, then orange, then other shifts; then
    returning, stable, and athletes without a verdict. Within that: zone, shift size relative
    to the athlete's MDC (largest first), days since the last run (staler first), name.
    Shows zone, detector state and since when, magnitude vs MDC, cadence trend, data
    freshness, share of runs with a balance sensor, plan phase and next session.
    """
    if fmt == "html" and out is None:
        raise Fail("--format html needs --out FILE", exitcodes.USAGE)
    store, home = store_of(ctx), home_of(ctx)
    day = today.date() if today else date.today()
    names = list(athletes) or [a["name"] for a in store.list_athletes()]
    unknown = [n for n in names if store.get_athlete(n) is None]
    if unknown:
        raise Fail(f"no athlete named {', '.join(map(repr, unknown))}", exitcodes.USAGE)
    rows = order([gather_row(store, home, n, today=day) for n in names])
    if fmt == "json":
        dump_json({"today": day, "athletes": [r.to_dict() for r in rows]})
    elif fmt == "csv":
        dump_csv([r.to_dict() for r in rows], COLUMNS)
    elif fmt == "html":
        assert out is not None
        _write_html(store, out, rows, day)
    elif not rows:
        click.echo("no athletes yet: `evenstride athlete add NAME` or `evenstride import PATH`")
    else:
        click.echo(table([table_cells(r) for r in rows], TABLE_HEADERS))


def _write_html(store: Store, out: Path, rows: list[AuditRow], day: date) -> None:
    out = out.expanduser()
    try:  # write_private_file creates the folder (0700) for the reports and the page
        written = write_reports(store, out.parent, [r.athlete for r in rows])
        # without the report module, link anyway: `evenstride report --html` fills the files
        links = (
            written
            if written is not None
            else {r.athlete: report_file_name(r.athlete) for r in rows}
        )
        write_private_file(out, render_audit_html(rows, today=day, links=links))
    except OSError as exc:
        raise Fail(f"cannot write {out}: {exc.strerror or exc}", exitcodes.STORAGE) from None
    n = "no" if not written else str(len(written))
    click.echo(f"audit written to {out} ({n} athlete reports next to it)")
