"""`evenstride demo`: the whole job on bundled sample files, no account needed."""

from __future__ import annotations

import tempfile
from importlib.resources import files
from pathlib import Path

import click

from evenstride.cli.activities_cmd import activities_cmd
from evenstride.cli.import_cmd import import_cmd
from evenstride.cli.report_cmd import report_cmd

SEASON_ATHLETE = "season"
"""The bundled season (one synthetic athlete whose balance shifts left) is imported as its own
athlete, so its trend is not mixed with the unrelated single-scenario files."""


def bundled_fixtures() -> Path:
    """The fixtures folder shipped with the package (synthetic files and licensed samples)."""
    return Path(str(files("evenstride"))) / "fixtures"


def _import(ctx: click.Context, paths: tuple[Path, ...], athlete: str) -> int:
    """Run `import` and return its exit code (it exits 1 when a sample fails, as intended)."""
    try:
        ctx.invoke(import_cmd, paths=paths, athlete=athlete, as_json=False, force=False)
    except SystemExit as exc:  # pragma: no cover - import_cmd exits via ctx.exit
        return int(exc.code or 0)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0


@click.command("demo")
@click.option("--keep", is_flag=True, help="Keep the temporary home and print where it is.")
@click.pass_context
def demo_cmd(ctx: click.Context, keep: bool) -> None:
    """Import the bundled sample runs into a fresh temporary home, show trends, write a report."""
    root = bundled_fixtures() / "synthetic"
    if not root.exists():
        raise click.ClickException(f"bundled fixtures not found under {root.parent}")
    singles = tuple(sorted(root.glob("*.fit")))
    season = root / "season"
    tmp = Path(tempfile.mkdtemp(prefix="evenstride-demo-"))
    home = tmp / "home"
    ctx.find_root().obj["home"] = home
    click.echo(f"evenstride demo: importing bundled sample files into {home}\n")
    code = _import(ctx, singles, "default") if singles else 0
    if season.is_dir():
        click.echo(f"\nthe bundled season, as athlete {SEASON_ATHLETE!r}:")
        code = max(code, _import(ctx, (season,), SEASON_ATHLETE))
    click.echo("")
    ctx.invoke(activities_cmd, athlete=None, since=None, as_json=False, as_csv=False)
    if code:
        click.echo(
            "\n(the sample set deliberately includes damaged files: failures above are expected)"
        )
    report = home / "report.html"
    click.echo("")
    ctx.invoke(report_cmd, athlete=None, since=None, html_path=report, as_json=False, as_csv=False)
    click.echo(f"\nopen the HTML report: {report.as_uri()}")
    if keep:
        click.echo(f"\nhome kept at {home}  (try: evenstride --home {home} report)")
