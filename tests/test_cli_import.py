"""`evenstride import / activities / demo / connectors` end to end, with a real store on disk."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from evenstride.cli.main import cli
from evenstride.connectors.base import discover
from evenstride.connectors.local_files import LocalFilesConnector

SYNTHETIC = Path(__file__).resolve().parents[1] / "fixtures" / "synthetic"
RUN = SYNTHETIC / "steady_left_51_2.fit"
WALK = SYNTHETIC / "walking_with_rd.fit"


def invoke(home: Path, *args: str):
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


def test_version_and_help() -> None:
    out = CliRunner().invoke(cli, ["--version"])
    assert out.exit_code == 0 and "evenstride" in out.output
    out = CliRunner().invoke(cli, ["--help"])
    assert out.exit_code == 0 and "--home" in out.output and "import" in out.output


def test_import_is_idempotent_and_lists(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = invoke(home, "import", str(RUN), str(WALK))
    assert first.exit_code == 0, first.output
    assert "2 imported" in first.output and "1 running session(s), 1 not a run" in first.output
    again = invoke(home, "import", str(RUN), str(WALK))
    assert again.exit_code == 0 and "0 imported, 2 already stored" in again.output
    listing = invoke(home, "activities", "--json")
    rows = json.loads(listing.output)
    assert len(rows) == 2
    run = next(r for r in rows if r["sport"] == "running")
    truth = json.loads(RUN.with_suffix(".truth.json").read_text())
    assert run["gct_balance_pct"] == pytest.approx(truth["balance_time_weighted_mean"], abs=1e-9)
    assert run["balance_sensor"].startswith("garmin hrm_pro")
    csv_out = invoke(home, "activities", "--csv").output.splitlines()
    assert csv_out[0].startswith("id,athlete,start_time") and len(csv_out) == 3
    table = invoke(home, "activities").output
    assert "51.22" in table and "running/generic" in table


def test_raw_gives_back_the_archived_files_of_a_bulk_import(tmp_path: Path) -> None:
    """Imported files sit in a pack; `raw` returns each byte for byte, by sha256 or prefix."""
    home = tmp_path / "home"
    assert invoke(home, "import", str(RUN), str(WALK)).exit_code == 0
    assert list((home / "raw" / "packs").glob("*.pack"))  # a bulk import: one pack
    rows = json.loads(invoke(home, "activities", "--json").output)
    by_sha = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in (RUN, WALK)}
    assert {r["sha256"] for r in rows} == set(by_sha)
    for sha, original in by_sha.items():
        out = tmp_path / f"{sha[:8]}.fit"
        result = invoke(home, "raw", sha, "--out", str(out))
        assert result.exit_code == 0 and out.read_bytes() == original.read_bytes()
        assert out.stat().st_mode & 0o777 == 0o600
        piped = CliRunner().invoke(cli, ["--home", str(home), "raw", sha[:10]])
        assert piped.exit_code == 0 and piped.stdout_bytes == original.read_bytes()
    missing = invoke(home, "raw", "0" * 64)
    assert missing.exit_code == 1 and "no archived file" in missing.output
    assert invoke(home, "raw", "abc").exit_code == 2  # too short a prefix
    assert invoke(home, "raw", "z" * 64).exit_code == 2  # not hex


def test_home_from_environment(tmp_path: Path) -> None:
    home = tmp_path / "envhome"
    out = CliRunner().invoke(cli, ["import", str(RUN)], env={"EVENSTRIDE_HOME": str(home)})
    assert out.exit_code == 0
    assert (home / "evenstride.sqlite3").exists()
    assert oct((home).stat().st_mode & 0o777) == "0o700"


def test_folders_gz_and_nested_zips(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "deep" / "er").mkdir(parents=True)
    (src / "deep" / "er" / "a.fit.gz").write_bytes(gzip.compress(RUN.read_bytes()))
    (src / "notes.txt").write_text("not a fit file")
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("123456789_ACTIVITY.fit", (SYNTHETIC / "trail_hills.fit").read_bytes())
    with zipfile.ZipFile(src / "export.zip", "w") as z:
        z.writestr("DI_CONNECT/UploadedFiles_0-_Part1.zip", inner.getvalue())
        z.writestr("activities/9.fit.gz", gzip.compress(WALK.read_bytes()))
    out = invoke(tmp_path / "home", "import", "--json", str(src))
    data = json.loads(out.output)
    assert out.exit_code == 0
    statuses = sorted(f["status"] for f in data["files"])
    assert statuses == ["imported", "imported", "imported"]


def test_failures_exit_1_and_are_listed_last(tmp_path: Path) -> None:
    bad = tmp_path / "bad.fit"
    bad.write_bytes(b"")
    corrupt = tmp_path / "x.zip"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    truncated = tmp_path / "cut.fit"
    truncated.write_bytes(RUN.read_bytes()[:20000])
    result = CliRunner().invoke(
        cli,
        ["--home", str(tmp_path / "h"), "import", str(bad), str(corrupt), str(truncated), str(RUN)],
    )
    assert result.exit_code == 1
    assert "bad.fit: empty file (0 bytes)" in result.output
    assert "x.zip" in result.output and "not a readable zip" in result.output
    assert "partial: cut.fit: truncated file" in result.output
    # the good file and the readable part of the truncated one are stored
    rows = json.loads(invoke(tmp_path / "h", "activities", "--json").output)
    assert {r["status"] for r in rows} == {"ok", "partial", "failed"}


def test_missing_path_is_a_clean_failure(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--home", str(tmp_path / "h"), "import", str(tmp_path / "nope")]
    )
    assert result.exit_code == 1 and "no such file or folder" in result.output


def test_console_script_never_prints_a_traceback(tmp_path: Path) -> None:
    """The installed entry point, on a home that cannot be created (a file is in the way)."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "evenstride.cli.main", "--home", str(blocker / "sub"), "activities"],
        capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("evenstride:")


def test_demo_runs_on_bundled_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole loop on bundled data: two athletes, trend, plans in three formats, audit."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its folder goes with tmp_path
    result = CliRunner().invoke(cli, ["demo", "--keep"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "running session(s)" in out
    assert "running/treadmill" in out and "48.50" in out
    assert "shifted_left" in out
    assert "season: Week 1, phase 1, level 1; focus side LEFT; band orange" in out
    home = Path(out.split("home kept at ")[1].split()[0])
    folder = Path(out.split("the demo's files are in ")[1].split()[0])
    assert home.parent == folder and folder.parent == tmp_path  # where the last lines say
    for athlete in ("season", "default"):
        folder = home / "plans-out" / athlete
        assert (folder / f"evenstride-plan-{athlete}.md").exists()
        assert (folder / f"evenstride-plan-{athlete}.ics").exists()
        assert list((folder / f"evenstride-plan-{athlete}-fit").glob("*.fit"))
    audit = (home / "audit.html").read_text()
    assert "report-season.html" in audit and "<svg" in audit
    assert out.index("season   orange shift") < out.index("default  no verdict")


def test_local_connector_is_an_entry_point_plugin() -> None:
    found = discover()
    assert found["local"] is LocalFilesConnector
    out = CliRunner().invoke(cli, ["connectors"])
    assert "local" in out.output and "evenstride.connectors" in out.output


def test_third_party_plugin_is_discovered(tmp_path: Path) -> None:
    """A plugin installed as a distribution with an entry point is found without core changes."""
    pkg = tmp_path / "site"
    (pkg / "evenstride_fake").mkdir(parents=True)
    (pkg / "evenstride_fake" / "__init__.py").write_text(
        "from evenstride.connectors.base import Connector, RawItem\n"
        "class Fake(Connector):\n"
        "    name = 'fake'\n"
        "    description = 'test plugin'\n"
        "    def items(self, **options):\n"
        "        yield RawItem(name='x', error='nothing here')\n"
    )
    dist = pkg / "evenstride_fake-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evenstride-fake\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[evenstride.connectors]\nfake = evenstride_fake:Fake\n")
    code = (
        f"import sys; sys.path.insert(0, {str(pkg)!r})\n"
        "from evenstride.connectors.base import discover\n"
        "c = discover()['fake']()\n"
        "print(c.description, next(iter(c.items())).error)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "test plugin nothing here"


def _import_on_a_terminal(tmp_path: Path, cache: Path | None, *, tty: bool) -> str:
    """`evenstride import` of a broken file (nothing to compile) with stderr on a pty or a pipe.

    `cache`: an empty numba cache folder (a machine that never ran evenstride), or None for
    numba's usual cache next to the code.
    """
    import pty

    bad = tmp_path / "empty.fit"
    bad.write_bytes(b"")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("NUMBA_CACHE_DIR", None)
    if cache is not None:
        env["NUMBA_CACHE_DIR"] = str(cache)
    cmd = [sys.executable, "-m", "evenstride.cli.main", "--home", str(tmp_path / "h"),
           "import", str(bad)]  # fmt: skip
    if not tty:
        return subprocess.run(cmd, capture_output=True, text=True, env=env).stderr
    leader, follower = pty.openpty()
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=follower, env=env) as proc:
        os.close(follower)
        out = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        proc.wait()
    os.close(leader)
    return out.decode(errors="replace")


def test_first_run_says_it_is_compiling_on_a_terminal_only(tmp_path: Path) -> None:
    from evenstride.cli.import_cmd import FIRST_RUN_NOTE
    from evenstride.metrics import summary_kernels

    if not summary_kernels.COMPILED:
        pytest.skip("numba not available: nothing is compiled")
    cold = tmp_path / "cold-cache"
    assert FIRST_RUN_NOTE in _import_on_a_terminal(tmp_path, cold, tty=True)
    assert FIRST_RUN_NOTE not in _import_on_a_terminal(tmp_path, cold, tty=False)  # cron: quiet
    from evenstride.ingest import analyse

    some_run = SYNTHETIC / "steady_left_51_2.fit"
    assert analyse(some_run.read_bytes()).rows  # compiles (or loads) and caches the kernels
    assert summary_kernels.compiled_cache_ready()
    assert FIRST_RUN_NOTE not in _import_on_a_terminal(tmp_path, None, tty=True)
