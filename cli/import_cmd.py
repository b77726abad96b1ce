"""`evenstride import PATH...`: files, folders, .fit.gz and zip exports, idempotently."""

from __future__ import annotations

import sys
import zlib
from collections import Counter
from pathlib import Path

import click

from evenstride.cli import exitcodes
from evenstride.cli.common import dump_json, is_tty, store_of
from evenstride.connectors.base import RawItem
from evenstride.connectors.local_files import LocalFilesConnector
from evenstride.ingest import IngestResult, Job, ingest_file, ingest_many
from evenstride.metrics import summary_kernels
from evenstride.store import Store


def to_job(item: RawItem) -> Job:
    """Load one item's bytes (gunzip etc.); unreadable items become jobs that fail cleanly."""
    name = Path(item.name.split(":")[-1]).name
    if item.error is None and item.load is not None:
        try:
            data = item.load()
        except (OSError, EOFError, zlib.error, ValueError) as exc:
            item.error = f"cannot read: {exc}"
    if item.error is not None or item.load is None:
        return Job(None, file_name=name, error=item.error or "nothing to read")
    return Job(
        data, source=item.source, source_id=item.source_id, file_name=name, extra=item.extra or None
    )


def ingest_track(store: Store, item: RawItem, athlete: str) -> IngestResult:
    """A GPX/TCX member of a Strava bulk export (no FIT original): cadence from its track."""
    from evenstride.connectors.strava import export  # lazy: only Strava exports need it

    return export.ingest_track(store, item, athlete)


def ingest_item(store: Store, item: RawItem, athlete: str, *, force: bool = False) -> IngestResult:
    """Ingest one item (the single-file path; `import` uses ingest_many for many)."""
    job = to_job(item)
    if job.error is not None:
        return IngestResult("failed", "", reason=job.error, file_name=job.file_name)
    return ingest_file(
        store, job.data, source=job.source, source_id=job.source_id, athlete=athlete,
        file_name=job.file_name, extra=job.extra, force=force,
    )  # fmt: skip


def summary_line(results: list[IngestResult]) -> str:
    c = Counter(r.status for r in results)
    runs = sum(r.runs for r in results if r.status in ("imported", "partial"))
    other = sum(1 for r in results if r.status in ("imported", "partial") and not r.runs)
    parts = [f"{c['imported'] + c['partial']} imported"]
    if c["partial"]:
        parts[-1] += f" ({c['partial']} partial)"
    parts += [f"{c['duplicate']} already stored", f"{c['failed']} failed"]
    tail = f"; {runs} running session(s)" + (f", {other} not a run" if other else "")
    return ", ".join(parts) + tail


FIRST_RUN_NOTE = "evenstride: first run on this machine: compiling the fast paths once (~20 s)"


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--athlete", default="default", show_default=True, help="Whose activities these are.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of text.")
@click.option("--force", is_flag=True, help="Decode again files that are already stored.")
@click.pass_context
def import_cmd(
    ctx: click.Context, paths: tuple[Path, ...], athlete: str, as_json: bool, force: bool
) -> None:
    """Import FIT files, folders (recursively), .fit.gz files and .zip exports.

    The same file twice adds nothing. Exit code 0 when every file was imported (or was already
    stored), 1 when any failed; the reasons are listed at the end.
    """
    store = store_of(ctx)
    store.ensure_athlete(athlete)
    items = list(LocalFilesConnector().items(paths=paths))
    show = is_tty() and not as_json and len(items) > 1
    if items and sys.stderr.isatty() and not summary_kernels.compiled_cache_ready():
        click.echo(FIRST_RUN_NOTE, err=True)  # a person waiting, not cron: say why it is slow
    with click.progressbar(
        length=len(items), label="importing", hidden=not show, file=sys.stderr
    ) as bar:
        fit_items = [i for i in items if i.kind == "fit"]
        results = ingest_many(
            store, (to_job(i) for i in fit_items), athlete=athlete, force=force,
            on_result=lambda _r: bar.update(1),
        )  # fmt: skip
        for item in items:  # Strava export GPX/TCX: cadence-only runs, after the FIT files
            if item.kind in ("gpx", "tcx"):
                results.append(ingest_track(store, item, athlete))
                bar.update(1)
    failed = [r for r in results if r.status == "failed"]
    partial = [r for r in results if r.status == "partial"]
    if as_json:
        dump_json({"summary": summary_line(results), "files": [r.to_dict() for r in results]})
    else:
        if not items:
            click.echo("no FIT files found")
        click.echo(summary_line(results))
        for r in partial:
            click.echo(f"  partial: {r.file_name}: {r.reason}")
        for r in failed:
            click.echo(f"  failed:  {r.file_name}: {r.reason}", err=True)
    if failed:
        ctx.exit(exitcodes.SOME_FAILED)
