"""`evenstride demo`: the whole loop on bundled sample files, no account needed.

Two athletes (the bundled left-shifting season, and the single-scenario files) go through
import -> summaries -> trend report -> strength plan (Markdown, iCalendar, FIT workouts) -> the
coach's audit. The only step that needs an account, pushing to Garmin Connect, is shown as the
command to run. Plans are made "as of" the day after the newest bundled run, so the output is
the same on every machine and every day.
"""

from __future__ import annotations

import tempfile
from datetime import date, datetime, timedelta
from importlib.resources import files
from pathlib import Path

import click

from evenstride.cli.activities_cmd import activities_cmd
from evenstride.cli.audit_cmd import audit_cmd
from evenstride.cli.common import store_of
from evenstride.cli.import_cmd import import_cmd
from evenstride.cli.plan_cmd import write_formats
from evenstride.cli.report_cmd import report_cmd
from evenstride.planner.text import headline
from evenstride.plans import make_plan, save_plan
from evenstride.store import Store

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
@click.option(
    "--keep",
    is_flag=True,
    help="Also print how to explore the demo's home with other commands.",
)
@click.pass_context
def demo_cmd(ctx: click.Context, keep: bool) -> None:
    """Import the bundled sample runs into a fresh temporary home, show trends, write a report.

    The temporary home stays where it is (the reports it points to are in it); the last line
    says where, so it can be deleted when done.
    """
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
    store = store_of(ctx)
    day = _demo_today(store)
    click.echo(f"\nstrength plans, as of {day} (the day after the newest bundled run):")
    for athlete in (SEASON_ATHLETE, "default"):
        _plan(store, home, athlete, day)
    click.echo("\nthe coach's audit (most concerning first):")
    as_of = datetime(day.year, day.month, day.day)
    ctx.invoke(audit_cmd, fmt="table", out=None, athletes=(), today=as_of)
    audit = home / "audit.html"
    ctx.invoke(audit_cmd, fmt="html", out=audit, athletes=(), today=as_of)
    click.echo(f"\nopen the audit (links to each athlete's report): {audit.as_uri()}")
    click.echo(
        "\nWith an account, the loop continues on the athlete's watch: `evenstride login garmin`,"
        " then `evenstride push garmin --dry-run` (and `evenstride cron` for the nightly job)."
    )
    click.echo(f"\nthe demo's files are in {tmp} (delete the folder when done)")
    if keep:
        click.echo(f"home kept at {home}  (try: evenstride --home {home} report)")


def _demo_today(store: Store) -> date:
    """The day after the newest bundled run: plans and audit stay the same whatever today is."""
    starts = [a["start_time"] for a in store.list_activities() if a.get("start_time")]
    return (max(starts) + timedelta(days=1)).date() if starts else date.today()


def _plan(store: Store, home: Path, athlete: str, day: date) -> None:
    """Plan for one athlete and write it as Markdown, iCalendar and FIT workout files."""
    plan = make_plan(store, home, athlete, today=day, weeks=4)
    save_plan(home, plan)
    written = write_formats(plan, home / "plans-out" / athlete, ("md", "ics", "fit"))
    fits = [p for p in written if p.suffix == ".fit"]
    first = plan.sessions[0] if plan.sessions else None
    click.echo(f"  {athlete}: {headline(plan)}; {len(plan.sessions)} sessions")
    if first is not None:
        click.echo(f"    first session {first.date}: {first.name}")
    md = next(p for p in written if p.suffix == ".md")
    ics = next(p for p in written if p.suffix == ".ics")
    click.echo(f"    {md}\n    {ics}\n    {len(fits)} FIT workout files in {fits[0].parent}")
