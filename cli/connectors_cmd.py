"""`evenstride connectors`: the connector plugins installed (entry-point group)."""

from __future__ import annotations

import click

from evenstride.cli.common import table
from evenstride.connectors.base import ENTRY_POINT_GROUP, discover


@click.command("connectors")
def connectors_cmd() -> None:
    """List installed connectors (built-in and third-party plugins)."""
    found = discover()
    rows = [
        (name, cls.__module__ + "." + cls.__name__, cls.description)
        for name, cls in sorted(found.items())
    ]
    click.echo(table(rows, ("name", "class", "what it reads")))
    click.echo(f"\nAdd one with an entry point in the group '{ENTRY_POINT_GROUP}' (see README).")
