"""Helpers shared by commands: opening the store, printing tables/JSON/CSV, failing cleanly."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from evenstride.cli import exitcodes
from evenstride.store import Store, open_store
from evenstride.store.errors import StoreError


class Fail(click.ClickException):
    """A user-facing failure: one line on stderr, a documented exit code, no traceback."""

    def __init__(self, message: str, code: int = exitcodes.SOME_FAILED) -> None:
        super().__init__(message)
        self.exit_code = code

    def show(self, file: Any = None) -> None:
        click.echo(f"evenstride: {self.format_message()}", err=True)


def home_of(ctx: click.Context) -> Path:
    return ctx.find_root().obj["home"]


def store_of(ctx: click.Context) -> Store:
    """Open (and migrate) the store under --home; closed when the command ends."""
    try:
        store = open_store(home_of(ctx))
    except StoreError as exc:
        raise Fail(str(exc), exitcodes.STORAGE) from None
    except OSError as exc:
        raise Fail(f"cannot use {home_of(ctx)}: {exc.strerror or exc}", exitcodes.STORAGE) from None
    ctx.call_on_close(store.close)
    return store


def is_tty() -> bool:
    return sys.stdout.isatty()


def progress_hooks(
    stack: contextlib.ExitStack, label: str, *, show: bool
) -> tuple[Callable[[int], None], Callable[[], None]]:
    """`on_listed(n)` / `on_handled()` callbacks for a sync: a progress bar (closed with `stack`)
    that appears once the number of items is known, when `show` and there is anything to do."""
    bars: list[Any] = []

    def on_listed(n: int) -> None:
        if show and n:
            bars.append(stack.enter_context(click.progressbar(length=n, label=label)))

    def on_handled() -> None:
        if bars:
            bars[-1].update(1)

    return on_listed, on_handled


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def dump_json(data: Any) -> None:
    click.echo(json.dumps(data, default=_plain, indent=2, sort_keys=False))


def dump_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _plain(row.get(k)) for k in columns})
    click.echo(buf.getvalue(), nl=False)


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain fixed-width table (no dependency, readable in a terminal and in a cron mail)."""
    body = [["" if v is None else str(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in body:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line.rstrip(), "  ".join("-" * w for w in widths)]
    out += [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in body
    ]
    return "\n".join(out)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def fmt_num(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"
