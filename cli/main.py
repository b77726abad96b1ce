"""The `evenstride` command group: global options and sub-command registration."""

from __future__ import annotations

import os
from pathlib import Path

import click
import platformdirs

from evenstride import __version__


def default_home() -> Path:
    """Where data lives unless --home / EVENSTRIDE_HOME say otherwise."""
    return Path(platformdirs.user_data_dir("evenstride", appauthor=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="evenstride")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="EVENSTRIDE_HOME",
    default=None,
    help="Folder for the database and the raw-file archive "
    "[env: EVENSTRIDE_HOME; default: the platform's user data folder].",
)
@click.pass_context
def cli(ctx: click.Context, home: Path | None) -> None:
    """evenstride: GCT balance and cadence trends, and a single-leg strength plan."""
    ctx.ensure_object(dict)
    ctx.obj["home"] = (home or default_home()).expanduser()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="evenstride", auto_envvar_prefix=None)


if __name__ == "__main__":  # pragma: no cover
    os.sys.exit(main())
