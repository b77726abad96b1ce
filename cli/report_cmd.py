"""`evenstride report`: the trend verdicts, coverage and plots, as text, HTML, JSON or CSV.

The command only gathers data (store rows, sync cursors, the latest balance run re-read from the
raw archive) and hands it to the pure builder `metrics.report_data.report_data`; the renderers
live in `cli.report_render` (terminal) and `cli.report_html` (self-contained HTML).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from evenstride.cli import exitcodes
from evenstride.cli.common import Fail, dump_csv, dump_json, store_of
from evenstride.cli.report_html import render_html
from evenstride.cli.report_render import render_text
from evenstride.metrics.fit import FitReadError, read_fit
from evenstride.metrics.report_data import (
    RUN_COLUMNS,
    ReportData,
    RunDetail,
    report_data,
    run_detail,
    runs_frame,
    runs_records,
)
from evenstride.store import Store
from evenstride.store.archive import write_private_file
from evenstride.store.errors import StoreError

SYNC_SOURCES = ("garmin", "strava")
CURSOR_KEY = "cursor"


def latest_run_detail(
    store: Store, rep: ReportData, rows: list[dict[str, Any]]
) -> RunDetail | None:
    """Balance over time/speed of the latest run with balance, re-read from its raw FIT file.

    Summaries do not keep per-record data, the archive does; a missing or unreadable raw file
    just means no detail plot (the report says so), never a failed report.
    """
    if rep.latest is None:
        return None
    for row in reversed(rows):
        summary = row.get("summary") or {}
        if summary.get("run_id") != rep.latest.run_id or not row.get("sha256"):
            continue
        try:
            data = store.archive.get(row["sha256"])
            runs = read_fit(data).runs()
        except (FitReadError, StoreError, OSError, ValueError):
            return None
        for run in runs:
            if run.index == row.get("session_index"):
                return run_detail(run.records, run_id=rep.latest.run_id)
        return None
    return None


def build_reports(
    store: Store, athlete: str | None, since: datetime | None, *, detail: bool
) -> list[ReportData]:
    """One ReportData per athlete with runs (or just `athlete`), by athlete name."""
    if athlete is not None:
        if store.get_athlete(athlete) is None:
            raise Fail(f"no athlete named {athlete!r} in this home", exitcodes.USAGE)
        names = [athlete]
    else:
        names = [a["name"] for a in store.list_athletes()]
    reports = []
    for name in names:
        rows = store.list_runs(name, since=since)
        if not rows and athlete is None:
            continue
        acts = {a["id"]: a for a in store.list_activities(name, since=since)}
        for row in rows:
            row["file_name"] = (acts.get(row["activity_id"]) or {}).get("file_name")
        sync = {
            src: value
            for src in SYNC_SOURCES
            if (value := store.get_sync_state(name, src, CURSOR_KEY)) is not None
        }
        imported = [a["imported_at"] for a in acts.values() if a.get("imported_at")]
        rep = report_data(
            runs_frame(rows),
            athlete=name,
            sync=sync,
            last_import=max(imported) if imported else None,
            since=since.date() if since is not None else None,
        )
        if detail:
            rep.detail = latest_run_detail(store, rep, rows)
        reports.append(rep)
    return reports


@click.command("report")
@click.option("--athlete", default=None, help="Only this athlete (default: every athlete).")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Only runs from this date (the detector then sees only those).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a self-contained HTML report with plots to this file.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the report and per-run summaries as JSON."
)
@click.option("--csv", "as_csv", is_flag=True, help="Print the per-run summaries as CSV.")
@click.pass_context
def report_cmd(
    ctx: click.Context,
    athlete: str | None,
    since: datetime | None,
    html_path: Path | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """GCT-balance and cadence trends: detector state, latest d and zone, coverage, last sync.

    Athletes without a balance sensor get cadence trends and "no balance sensor data".
    """
    if as_json and as_csv:
        raise Fail("--json and --csv cannot be combined", exitcodes.USAGE)
    store = store_of(ctx)
    if since is not None:
        since = since.replace(tzinfo=datetime.now().astimezone().tzinfo)
    reports = build_reports(store, athlete, since, detail=html_path is not None)
    if html_path is not None:
        try:
            # atomic (temp file + rename): a browser never shows half a report
            write_private_file(html_path, render_html(reports))
        except OSError as exc:
            raise Fail(
                f"cannot write {html_path}: {exc.strerror or exc}", exitcodes.STORAGE
            ) from None
    if as_json:
        dump_json({"athletes": [rep.to_dict() for rep in reports]})
    elif as_csv:
        rows = [r for rep in reports for r in runs_records(rep.runs)]
        dump_csv(rows, RUN_COLUMNS)
    elif not reports:
        click.echo("no runs stored yet: try `evenstride import PATH` or `evenstride demo`")
    else:
        click.echo("\n\n".join(render_text(rep) for rep in reports))
    if html_path is not None:
        click.echo(f"HTML report written to {html_path}", err=as_json or as_csv)
