"""`evenstride demo`: the whole job on bundled sample files, no account needed."""

from __future__ import annotations

import tempfile
from importlib.resources import files
from pathlib import Path

import click

from evenstride.cli.activities_cmd import activities_cmd
from evenstride.cli.import_cmd import import_cmd


def bundled_fixtures() -> Path:
    """The fixtures folder shipped with the package (synthetic files and licensed samples)."""
    return Path(str(files("evenstride"))) / "fixtures"


@click.command("demo")
@click.option("--keep", is_flag=True, help="Keep the temporary home and print where it is.")
@click.pass_context
def demo_cmd(ctx: click.Context, keep: bool) -> None:
    """Import the bundled sample runs into a fresh temporary home and show what was found."""
    root = bundled_fixtures()
    sources = [p for p in (root / "synthetic",) if p.exists()]
    if not sources:
        raise click.ClickException(f"bundled fixtures not found under {root}")
    tmp = Path(tempfile.mkdtemp(prefix="evenstride-demo-"))
    home = tmp / "home"
    ctx.find_root().obj["home"] = home
    click.echo(f"evenstride demo: importing bundled sample files into {home}\n")
    code = 0
    try:
        ctx.invoke(import_cmd, paths=tuple(sources), athlete="default", as_json=False, force=False)
    except SystemExit as exc:  # pragma: no cover - import_cmd exits via ctx.exit
        code = int(exc.code or 0)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    click.echo("")
    ctx.invoke(activities_cmd, athlete=None, since=None, as_json=False, as_csv=False)
    if code:
        click.echo(
            "\n(the sample set deliberately includes damaged files: failures above are expected)"
        )
    if keep:
        click.echo(f"\nhome kept at {home}  (try: evenstride --home {home} activities)")
