"""`evenstride nightly` SIGKILLed at random moments ends, after one clean run, exactly where an
uninterrupted run ends: no lost activity, no duplicate workout or calendar entry on Garmin, the
same saved plan, and a consistent database."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fake_garmin import (
    FakeGarminConnect,
    fake_fixture,  # noqa: F401 - the `fake` fixture
    keyring_file_fixture,  # noqa: F401 - the `keyring_file` fixture
)

from evenstride.connectors.garmin import auth
from evenstride.store import open_store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="uses SIGKILL")

TRIALS = 12
NEW_RUNS_BEFORE = {0: 3, 4: 2, 8: 2}  # trial -> runs that appear on Garmin before it
OVERRIDE_BEFORE = 6  # the coach changes the focus side: the pushed workouts must be replaced
OVERRIDE = {"overrides": {"focus_side": "right"}}
TODAY = dt.date.today().isoformat()
# A "zygote" imports evenstride once, then forks one child per run, which runs the console
# entry point `main()` exactly as `evenstride nightly` does. Why: start-up imports take 2-5 s,
# and a kill during imports proves nothing; this way the kills land in the real work and the
# whole file stays well under 90 s.
ZYGOTE = """
import os, sys
import evenstride.analysis, evenstride.ingest, evenstride.nightly
import evenstride.connectors.garmin.push, evenstride.connectors.garmin.sync
from evenstride.cli.main import cli, main
from evenstride.cli.nightly_cmd import nightly_cmd
if "nightly" not in cli.commands:
    cli.add_command(nightly_cmd)
for line in sys.stdin:
    url, out, *args = line.rstrip("\\n").split("\\t")
    pid = os.fork()
    if pid == 0:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.environ["EVENSTRIDE_GARMIN_API_URL"] = url
        sys.argv = ["evenstride", *args]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        finally:  # never fall back into the zygote's loop
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    print(pid, flush=True)
    print(os.waitpid(pid, 0)[1], flush=True)
"""
VOLATILE = {"workoutId", "ownerId", "createdDate", "updateDate"}


class Zygote:
    """Runs `evenstride nightly` in forked children of one pre-imported Python process."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.n = tmp, 0
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )

    def start(self, home: Path, url: str) -> tuple[int, Path]:
        """Start one run; returns the child's pid and its output file."""
        self.n += 1
        out = self.tmp / f"run-{self.n}.out"
        args = ["--home", str(home), "nightly", "--today", TODAY, "--weeks", "2"]
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\t".join([url, str(out), *args]) + "\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline()), out

    def wait(self) -> int:
        """The child's exit code, or -signal when a signal ended it."""
        assert self.proc.stdout is not None
        status = int(self.proc.stdout.readline())
        return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)

    def run(self, home: Path, url: str) -> tuple[int, str]:
        _, out = self.start(home, url)
        return self.wait(), out.read_text()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


class Tripwire(list):
    """The fake's request log: kills `pid` at request number `at`, or `delay` seconds after
    the run's first request (so timed kills land in decoding, database writes, planning)."""

    pid: int | None = None
    at: int | None = None
    delay: float | None = None

    def arm(self, pid: int, *, at: int | None = None, delay: float | None = None) -> None:
        self.pid, self.at, self.delay = pid, at, delay

    def disarm(self) -> None:
        self.pid = self.at = self.delay = None

    def kill(self, pid: int | None) -> None:
        if pid is not None and pid == self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def append(self, item: Any) -> None:
        super().append(item)
        if self.pid is None:
            return
        if self.at is not None and len(self) >= self.at:
            self.kill(self.pid)
            self.at = None
        elif self.delay is not None:
            threading.Timer(self.delay, self.kill, [self.pid]).start()
            self.delay = None


def add_runs(fakes: list[FakeGarminConnect], n: int, first: dt.datetime) -> dt.datetime:
    """The same runs (same ids, same FIT bytes) on every fake; returns the next start."""
    for _ in range(n):
        aid = max([900_000_000, *fakes[0].activities]) + 1
        for fake in fakes:
            fake.add_activity(first, activity_id=aid)
        first += dt.timedelta(hours=7)
    return first


def calendar(fake: FakeGarminConnect) -> dict[str, list[dict[str, Any]]]:
    """Date -> the workouts scheduled that day, without Garmin's ids and timestamps."""
    days: dict[str, list[dict[str, Any]]] = {}
    for s in fake.schedules.values():
        workout = fake.workouts.get(s["workoutId"])
        assert workout is not None, f"schedule {s} points at a deleted workout"
        days.setdefault(s["date"], []).append(
            {k: v for k, v in workout.items() if k not in VOLATILE}
        )
    return days


def end_state(home: Path, fake: FakeGarminConnect) -> dict[str, Any]:
    with open_store(home) as store:
        assert store.integrity_check() == []
        acts = store.list_activities("default")
    ids = Counter(a["source_id"] for a in acts)
    assert max(ids.values()) == 1, f"duplicate activities: {ids}"
    scheduled = {s["workoutId"] for s in fake.schedules.values()}
    assert set(fake.workouts) == scheduled, "unscheduled (orphan) workouts left on Garmin"
    days = calendar(fake)
    assert all(len(v) == 1 for v in days.values()), "two workouts on one day"
    return {
        "activities": sorted((a["source_id"], a["status"]) for a in acts),
        "calendar": days,
        "plan": (home / "plans" / "default" / "latest.json").read_text(),
    }


def test_killed_nightly_runs_converge_to_the_uninterrupted_result(
    fake, keyring_file, tmp_path: Path
) -> None:
    started = time.monotonic()
    reference = FakeGarminConnect().start()  # the same account, driven without kills
    zygote = Zygote(tmp_path)
    try:
        reference.access_tokens = set(fake.access_tokens)
        reference.refresh_token = fake.refresh_token
        auth.save_tokens("default", fake.tokens_json())
        tripwire = Tripwire(fake.log)
        fake.log = tripwire
        home = tmp_path / "killed"
        rng = random.Random(7)
        first = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=5)
        kills = 0
        for trial in range(TRIALS):
            first = add_runs([fake, reference], NEW_RUNS_BEFORE.get(trial, 0), first)
            if trial == OVERRIDE_BEFORE:
                with open_store(home) as store:
                    store.update_athlete_profile("default", OVERRIDE)
            pid, _ = zygote.start(home, fake.url)
            if trial % 2:  # at a random request to Garmin (sync, push reads or writes)
                tripwire.arm(pid, at=len(tripwire) + rng.randint(1, 24))
            else:  # at a random moment of the work (decoding, database writes, planning)
                tripwire.arm(pid, delay=rng.uniform(0.0, 3.0))
            code = zygote.wait()
            tripwire.disarm()
            kills += code == -signal.SIGKILL
            assert code in (0, -signal.SIGKILL), code
        assert kills >= TRIALS // 2, f"only {kills} of {TRIALS} runs were killed"

        code, out = zygote.run(home, fake.url)
        assert code == 0, out
        assert "\ndefault: sync garmin " in f"\n{out}"  # stdout and stderr share the file

        ref_home = tmp_path / "reference"
        with open_store(ref_home) as store:
            store.update_athlete_profile("default", OVERRIDE)
        code, out = zygote.run(ref_home, reference.url)
        assert code == 0, out

        killed, clean = end_state(home, fake), end_state(ref_home, reference)
        assert killed["activities"] == clean["activities"]
        assert {sid for sid, _ in killed["activities"]} == {str(i) for i in fake.running_ids()}
        assert {status for _, status in killed["activities"]} == {"ok"}
        assert killed["plan"] == clean["plan"]
        assert killed["calendar"] == clean["calendar"]
        assert clean["calendar"]  # the plan really reached the calendar
        assert not (home / "nightly.lock").exists()
    finally:
        zygote.close()
        reference.stop()
    assert time.monotonic() - started < 90
