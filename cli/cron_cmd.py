"""`evenstride cron`: print a crontab line and a systemd service + timer for the nightly job.

Why generated rather than documented: cron and systemd run with an almost empty environment,
so the line must carry the absolute executable, the data folder and the keyring backend that
work in *this* shell. No `flock` wrapper: `evenstride nightly` locks itself.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from pathlib import Path

import click

from evenstride.cli import exitcodes
from evenstride.cli.common import Fail, home_of
from evenstride.store.archive import make_private_dir

UNIT = "evenstride-nightly"
# Environment the job needs to find the same data and the same keyring as this shell.
PASS_ENV = ("PYTHON_KEYRING_BACKEND", "XDG_DATA_HOME", "KEYRING_PROPERTY_FILE_PATH")


def executable() -> list[str]:
    """The command that runs this installation's evenstride, as absolute argv."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == "evenstride" and argv0.exists():
        return [str(argv0.absolute())]
    found = shutil.which("evenstride")
    if found:
        return [str(Path(found).absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "evenstride.cli.main"]


def job_env(home: Path) -> dict[str, str]:
    env = {"EVENSTRIDE_HOME": str(home)}
    for name in PASS_ENV:
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def crontab_line(argv: list[str], env: dict[str, str], out: Path, at: tuple[int, int]) -> str:
    """One crontab line (`%` is special to cron, hence escaped)."""
    words = [f"{k}={shlex.quote(v)}" for k, v in env.items()]
    words += [shlex.quote(a) for a in argv] + ["nightly", ">>", shlex.quote(str(out)), "2>&1"]
    return f"{at[1]} {at[0]} * * * " + " ".join(words).replace("%", r"\%")


def _systemd_quote(value: str, *, exec_line: bool = False) -> str:
    """A double-quoted systemd word: `%` is a specifier everywhere, `$` only in Exec lines."""
    value = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return '"' + (value.replace("$", "$$") if exec_line else value) + '"'


def service_unit(argv: list[str], env: dict[str, str], out: Path) -> str:
    lines = [
        "[Unit]",
        "Description=evenstride nightly: sync, GCT-balance trends, strength plan, Garmin push",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        *(f"Environment={_systemd_quote(f'{k}={v}')}" for k, v in env.items()),
        "ExecStart=" + " ".join(_systemd_quote(a, exec_line=True) for a in [*argv, "nightly"]),
        "# 75 = another run still holds the lock: not a failure",
        "SuccessExitStatus=75",
        f"StandardOutput=append:{str(out).replace('%', '%%')}",
        f"StandardError=append:{str(out).replace('%', '%%')}",
        "Nice=10",
    ]
    return "\n".join(lines) + "\n"


def timer_unit(at: tuple[int, int]) -> str:
    return (
        "[Unit]\n"
        "Description=Run evenstride nightly every night\n\n"
        "[Timer]\n"
        f"OnCalendar=*-*-* {at[0]:02d}:{at[1]:02d}:00\n"
        "RandomizedDelaySec=15min\n"
        "Persistent=true\n\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )


def _parse_time(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text.strip())
    if not m:
        raise Fail(f"--at wants HH:MM (24 h), got {text!r}", exitcodes.USAGE)
    return int(m.group(1)), int(m.group(2))


@click.command("cron")
@click.option(
    "--at",
    "at_text",
    default="03:17",
    show_default=True,
    help="Local time of the nightly run (off the full hour, when everyone else hits Garmin).",
)
@click.pass_context
def cron_cmd(ctx: click.Context, at_text: str) -> None:
    """Print a crontab line and a systemd service + timer for `evenstride nightly`.

    Both use this installation's absolute executable, the current --home (as EVENSTRIDE_HOME)
    and the keyring settings of this shell (PYTHON_KEYRING_BACKEND, XDG_DATA_HOME), and append
    the job's output to <home>/logs/cron.log. Nothing is installed: copy what you need.
    """
    at = _parse_time(at_text)
    home = home_of(ctx).absolute()
    argv, env = executable(), job_env(home)
    out = home / "logs" / "cron.log"
    make_private_dir(out.parent)  # the shell's `>>` would fail (and skip the job) without it
    if "PYTHON_KEYRING_BACKEND" not in env:
        click.echo(
            "# note: PYTHON_KEYRING_BACKEND is not set; cron and systemd have no desktop session,\n"
            "# so unless a keyring works without one, set it (see `evenstride login garmin`).\n"
        )
    click.echo(
        "# --- cron: add with `crontab -e` (runs in your user's crontab, local time) ---\n"
        f"{crontab_line(argv, env, out, at)}\n\n"
        "# --- or systemd (user units): save the two files below as\n"
        f"#   ~/.config/systemd/user/{UNIT}.service and ~/.config/systemd/user/{UNIT}.timer\n"
        "# then run:\n"
        "#   systemctl --user daemon-reload\n"
        f"#   systemctl --user enable --now {UNIT}.timer\n"
        "#   loginctl enable-linger $USER    # run it even when you are not logged in\n"
        f"#   systemctl --user list-timers {UNIT}.timer; journalctl --user -u {UNIT}\n"
        f"# ---- {UNIT}.service ----\n"
        f"{service_unit(argv, env, out)}\n"
        f"# ---- {UNIT}.timer ----\n"
        f"{timer_unit(at)}\n"
        "# The job locks itself (a second run exits 75), logs details to "
        f"{home / 'logs' / 'nightly.log'}\n"
        "# and exits 0 (all athletes ok), 1 (some failed) or 2 (configuration)."
    )
