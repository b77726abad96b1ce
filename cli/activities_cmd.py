"""`evenstride activities`: what is stored, as a table, JSON or CSV."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from evenstride.cli.common import dump_csv, dump_json, fmt_duration, fmt_num, store_of, table
from evenstride.store import Store

COLUMNS = (
    "id", "athlete", "start_time", "source", "sport", "sub_sport", "duration_s", "distance_m",
    "device", "balance_sensor", "gct_balance_pct", "gct_ms", "cadence_spm", "status", "reason",
    "file_name", "sha256",
)  # fmt: skip


def activity_rows(
    store: Store, athlete: str | None, since: datetime | None
) -> list[dict[str, Any]]:
    """One row per stored activity, with the first running session's headline numbers."""
    runs: dict[int, dict[str, Any]] = {}
    for run in store.list_runs(athlete, since=since):
        runs.setdefault(run["activity_id"], run)
    rows = []
    for act in store.list_activities(athlete, since=since):
        run = runs.get(act["id"])
        means = (run or {}).get("summary", {}).get("watch_means", {}) if run else {}
        rows.append(
            {
                **{k: act.get(k) for k in COLUMNS if k in act},
                "balance_sensor": run.get("sensor") if run else None,
                "gct_balance_pct": means.get("gct_balance_pct"),
                "gct_ms": means.get("gct_ms"),
                "cadence_spm": means.get("cadence_spm"),
            }
        )
    return rows


@click.command("activities")
@click.option("--athlete", default=None, help="Only this athlete (default: all).")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None, help="From this date.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@click.pass_context
def activities_cmd(
    ctx: click.Context, athlete: str | None, since: datetime | None, as_json: bool, as_csv: bool
) -> None:
    """List stored activities (newest last) with GCT balance, GCT and cadence per run."""
    store = store_of(ctx)
    if since is not None:
        since = since.replace(tzinfo=datetime.now().astimezone().tzinfo)
    rows = activity_rows(store, athlete, since)
    if as_json:
        dump_json(rows)
        return
    if as_csv:
        dump_csv(rows, COLUMNS)
        return
    if not rows:
        click.echo("no activities stored yet: try `evenstride import PATH` or `evenstride demo`")
        return
    body = [
        (
            r["id"],
            r["start_time"].strftime("%Y-%m-%d %H:%M") if r.get("start_time") else "",
            r.get("source"),
            "/".join(x for x in (r.get("sport"), r.get("sub_sport")) if x),
            fmt_duration(r.get("duration_s")),
            fmt_num((r.get("distance_m") or 0) / 1000, 2) if r.get("distance_m") else "",
            fmt_num(r.get("gct_balance_pct"), 2),
            fmt_num(r.get("gct_ms"), 0),
            fmt_num(r.get("cadence_spm"), 0),
            r.get("device") or "",
            r.get("status")
            if r.get("status") == "ok"
            else f"{r.get('status')}: {r.get('reason')}"[:60],
        )
        for r in rows
    ]
    headers = ("id", "start (UTC)", "source", "sport", "time", "km", "bal %L", "GCT", "spm",
               "device", "status")  # fmt: skip
    click.echo(table(body, headers))
