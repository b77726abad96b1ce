"""A push process killed (SIGKILL) in the middle of its writes is completed by the next push.

The kill comes from the fake server while it handles the N-th write, so that write still
happens on "Garmin" but its answer never reaches the dead client: the hardest case (a workout
uploaded but never scheduled, an old version scheduled next to its replacement, ...).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fake_garmin import (
    FakeGarminConnect,
    Logged,
    fake_fixture,  # noqa: F401 - the `fake` fixture
    keyring_file_fixture,  # noqa: F401 - the `keyring_file` fixture
)
from test_push_garmin import (
    LATER,
    SEASON,
    TODAY,
    _root,
    assert_clean,
    calendar_of_ours,
    ours,
    plan_dates,
)

from evenstride.connectors.garmin import auth
from evenstride.store import open_store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="uses SIGKILL")

SCRIPT = """
import sys
import time
from pathlib import Path
from evenstride.cli.push_cmd import push_garmin
push_garmin.main(["--today", sys.argv[2]], obj={"home": Path(sys.argv[1])})
"""


def _push(home: Path, today: str, fake: FakeGarminConnect, kill_at: int | None) -> int:
    """Run `push garmin` in a subprocess; SIGKILL it when the kill_at-th data write arrives."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(home), today],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    start = len(fake.data_writes())

    def maybe_kill(request: Logged) -> None:
        if kill_at is not None and len(fake.data_writes()) - start >= kill_at:
            proc.send_signal(signal.SIGKILL)

    fake.on_request = maybe_kill
    try:
        proc.communicate(timeout=120)
    finally:
        fake.on_request = None
    return proc.returncode


@pytest.fixture
def home(tmp_path: Path, fake: FakeGarminConnect, keyring_file: Any) -> Path:
    home = tmp_path / "home"
    result = CliRunner().invoke(_root(), ["--home", str(home), "import", str(SEASON)])
    assert result.exit_code == 0, result.output
    auth.save_tokens("default", fake.tokens_json())
    return home


def test_killed_pushes_are_completed_without_duplicates(home: Path, fake) -> None:
    own = fake.add_workout("Tempo 5k", on="2024-04-17")
    assert _push(home, TODAY, fake, 1) == -signal.SIGKILL  # killed at its first upload
    deadline = time.monotonic() + 5
    while not ours(fake) and time.monotonic() < deadline:  # the server finishes that upload
        time.sleep(0.05)
    assert len(ours(fake)) == 1 and calendar_of_ours(fake) == []  # uploaded, never scheduled
    for kill_at in (4, 9):  # at a schedule, then at a later upload
        assert _push(home, TODAY, fake, kill_at) == -signal.SIGKILL
    assert _push(home, TODAY, fake, None) == 0
    assert_clean(fake, plan_dates(home))
    assert len(ours(fake)) == 8

    # the plan changes (a coach override); kill the replacing push at its deletes too
    with open_store(home) as store:
        profile = dict(store.get_athlete("default")["profile"])
        profile["overrides"] = {"focus_side": "right"}
        store.update_athlete_profile("default", profile)
    before_past = {c["date"]: c["workout_id"] for c in fake.calendar() if c["date"] < LATER}
    for kill_at in (2, 3, 7):  # after an upload, at the old version's unschedule, its delete
        assert _push(home, LATER, fake, kill_at) == -signal.SIGKILL
    assert _push(home, LATER, fake, None) == 0
    expected = sorted(set(plan_dates(home)) | {"2024-04-15", "2024-04-18"})
    assert_clean(fake, expected)
    after_past = {c["date"]: c["workout_id"] for c in fake.calendar() if c["date"] < LATER}
    assert after_past == before_past  # past sessions and the athlete's workout untouched
    assert own[0] in fake.workouts and own[1] in {c["schedule_id"] for c in fake.calendar()}
    for c in fake.calendar():
        if c["date"] >= LATER and c["name"].startswith("[evenstride]"):
            assert "focus RIGHT" in fake.workouts[c["workout_id"]]["description"]

    # and one more push changes nothing
    snapshot = json.dumps(fake.workouts, sort_keys=True)
    writes = len(fake.data_writes())
    assert _push(home, LATER, fake, None) == 0
    assert json.dumps(fake.workouts, sort_keys=True) == snapshot
    assert len(fake.data_writes()) == writes
