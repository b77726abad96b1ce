"""`evenstride import PATH...`: files, folders, .fit.gz and zip exports, idempotently."""

from __future__ import annotations

import zlib
from collections import Counter
from pathlib import Path

import click

from evenstride.cli import exitcodes
from evenstride.cli.common import dump_json, is_tty, store_of
from evenstride.connectors.base import RawItem
from evenstride.connectors.local_files import LocalFilesConnector
from evenstride.ingest import IngestResult, ingest_file
from evenstride.store import Store


def ingest_item(store: Store, item: RawItem, athlete: str, *, force: bool = False) -> IngestResult:
    """Load one item's bytes (gunzip etc.) and ingest them; unreadable items become failures."""
    if item.error is None and item.load is not None:
        try:
            data = item.load()
        except (OSError, EOFError, zlib.error, ValueError) as exc:
            item.error = f"cannot read: {exc}"
    if item.error is not None:
        return IngestResult("failed", "", reason=item.error, file_name=item.name)
    return ingest_file(
        store, data, source=item.source, source_id=item.source_id, athlete=athlete,
        file_name=Path(item.name.split(":")[-1]).name, extra=item.extra or None, force=force,
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
    results: list[IngestResult] = []
    if is_tty() and not as_json and len(items) > 1:
        with click.progressbar(
            items, label="importing", item_show_func=lambda i: i and i.name[-40:]
        ) as bar:
            for item in bar:
                results.append(ingest_item(store, item, athlete, force=force))
    else:
        for item in items:
            results.append(ingest_item(store, item, athlete, force=force))
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
