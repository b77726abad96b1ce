"""Everything created under --home is private to the user: folders 0700, files 0600.

A full loop runs under the common umask 022 (which would leave 0755/0644 behind anything that
relies on it): import, sync garmin, sync strava, plan (with --format files into the home),
push, report --html and audit --format html --out into sub-folders of the home, nightly (with its
rotating log and lock), then the whole home tree is walked and every mode asserted.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_garmin import (
    FakeGarminConnect,
    fake_fixture,  # noqa: F401 - the `fake` fixture (fake Garmin)
    keyring_file_fixture,  # noqa: F401 - the `keyring_file` fixture
)
from fake_strava import login
from test_fault_matrix import (
    SEASON,
    FaultyStrava,
    _garmin_runs,
    _strava_runs,
    run_cli,
    short_waits,
    strava,  # noqa: F401 - the `strava` fixture (FaultyStrava)
)

from evenstride.connectors.garmin import auth as garmin_auth
from evenstride.store import open_store

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="POSIX modes")


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_every_file_and_folder_under_home_is_private(
    fake: FakeGarminConnect,
    strava: FaultyStrava,  # noqa: F811
    keyring_file: Any,
    tmp_path: Path,
    umask_022: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short_waits(monkeypatch)
    home = tmp_path / "home"
    _garmin_runs(fake, 6)
    _strava_runs(strava, 9000, 3)
    garmin_auth.save_tokens("default", fake.tokens_json())
    login(strava, "default")
    with open_store(home) as store:
        store.update_athlete_profile("default", {"sources": ["garmin", "strava"]})
    steps = [
        ("import", str(SEASON)),
        ("sync", "garmin"),
        ("sync", "strava"),
        ("plan", "--weeks", "1", "--format", "md", "--format", "ics", "--format", "fit",
         "--format", "html", "--format", "json", "--out", str(home / "plans-out")),
        ("push", "garmin", "--weeks", "1"),
        ("report", "--html", str(home / "reports" / "runs" / "report.html")),
        ("audit", "--format", "html", "--out", str(home / "audit" / "audit.html")),
        ("nightly", "--weeks", "1"),
    ]  # fmt: skip
    for args in steps:
        result = run_cli(capsys, home, *args)
        assert result.code == 0, (args, result.out, result.err)

    files, folders, wrong = 0, 0, []
    for root, dirs, names in os.walk(home):
        for d in dirs:
            folders += 1
            mode = stat.S_IMODE((Path(root) / d).stat().st_mode)
            if mode != 0o700:
                wrong.append(f"{Path(root, d).relative_to(home)}/ {mode:o}")
        for n in names:
            files += 1
            mode = stat.S_IMODE((Path(root) / n).stat().st_mode)
            if mode != 0o600:
                wrong.append(f"{Path(root, n).relative_to(home)} {mode:o}")
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert not wrong, f"not private: {wrong}"
    kinds = {p.suffix for p in home.rglob("*") if p.is_file()}
    assert {".sqlite3", ".zst", ".log", ".json", ".html", ".md", ".ics", ".fit"} <= kinds, kinds
    # the archive holds loose copies (FIT files as they are, JSON payloads as zstd frames) and
    # the packs of bulk imports with their indexes
    raw_kinds = {p.suffix for p in (home / "raw").rglob("*") if p.is_file()}
    assert raw_kinds == {".fit", ".zst", ".pack", ".idx"}, raw_kinds
    print(f"permissions: {folders + 1} folders 0700, {files} files 0600")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
@pytest.mark.parametrize("umask", [0o022, 0o277], ids=["umask-022", "umask-277"])
def test_make_private_dir_creates_every_missing_folder_0700(tmp_path: Path, umask: int) -> None:
    """One missing folder (the common case: a new shard folder) or a chain of them: all 0700
    whatever the umask; an existing folder keeps its mode."""
    from evenstride.store.archive import make_private_dir

    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    os.chmod(existing, 0o755)
    old = os.umask(umask)
    try:
        make_private_dir(existing / "one")
        make_private_dir(existing / "a" / "b" / "c", sync=False)
        make_private_dir(existing)  # already there: left alone
        make_private_dir(existing / "one")
    finally:
        os.umask(old)
    for folder in ("one", "a", "a/b", "a/b/c"):
        assert stat.S_IMODE((existing / folder).stat().st_mode) == 0o700, folder
    assert stat.S_IMODE(existing.stat().st_mode) == 0o755
