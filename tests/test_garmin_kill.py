"""A sync process killed (SIGKILL) at any moment loses nothing and duplicates nothing."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import keyring
import pytest
from fake_garmin import (
    fake_fixture,  # noqa: F401 - the `fake` fixture
    keyring_file_fixture,  # noqa: F401 - the `keyring_file` fixture
)

from evenstride.connectors.garmin import auth
from evenstride.store import open_store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="uses SIGKILL")

SCRIPT = """
import sys
from pathlib import Path
from evenstride.cli.garmin_cmds import sync_garmin
sync_garmin.main(["--since", "2023-12-01", "--page-size", "20"], obj={"home": Path(sys.argv[1])})
"""


def _spawn(home: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(home)],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_killed_syncs_resume_to_exactly_once(fake, keyring_file, tmp_path: Path) -> None:
    assert keyring.get_keyring() is keyring_file
    fake.add_runs(120)
    auth.save_tokens("default", fake.tokens_json())
    home = tmp_path / "home"
    rng = random.Random(4)
    kills = 0
    for kill_at in (5, 23, None):  # at a download, at a later download, then on a timer
        proc = _spawn(home)
        target = len(fake.downloads) + kill_at if kill_at else None

        def maybe_kill(
            aid: int, proc: subprocess.Popen = proc, target: int | None = target
        ) -> None:
            if target is not None and len(fake.downloads) >= target:
                proc.send_signal(signal.SIGKILL)

        fake.on_download = maybe_kill
        timer = threading.Timer(rng.uniform(2.0, 4.0), proc.send_signal, [signal.SIGKILL])
        if kill_at is None:
            timer.start()
        proc.wait(timeout=120)
        timer.cancel()
        if proc.returncode == -signal.SIGKILL:
            kills += 1
    assert kills >= 2

    fake.on_download = None
    final = _spawn(home)
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()
    assert b"imported" in out

    with open_store(home) as store:
        assert store.integrity_check() == []
        stored = Counter(a["source_id"] for a in store.list_activities("default", source="garmin"))
        assert {a["status"] for a in store.list_activities("default")} == {"ok"}
    assert set(stored) == {str(i) for i in fake.running_ids()}
    assert max(stored.values()) == 1
    # at most the activities in flight at each kill were downloaded twice
    assert sum(n - 1 for n in Counter(fake.downloads).values()) <= kills
