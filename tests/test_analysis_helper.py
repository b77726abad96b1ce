"""The forked analysis helper: every file analysed once, in order, whatever the helper does."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from evenstride import analysis_helper
from evenstride.analysis_helper import (
    ForkedHelper,
    HelperProcess,
    helper_possible,
    shared_process,
    usable_cpus,
)
from evenstride.ingest import Job, analyse, ingest_many, reprocess
from evenstride.store import open_store

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(os, "fork"), reason="fork helper: Linux"
)

SYNTHETIC = Path(__file__).resolve().parents[1] / "fixtures" / "synthetic"
FILES = sorted(SYNTHETIC.glob("*.fit")) + sorted(SYNTHETIC.glob("season/*.fit"))
PARENT = os.getpid()


@pytest.fixture(autouse=True)
def _no_kept_helper():
    """Each test starts without a kept helper (an earlier test's would serve it unforked)."""
    analysis_helper.shutdown()
    yield
    analysis_helper.shutdown()


@pytest.fixture
def two_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """The helper is used even on a one-CPU machine (it then shares that CPU): the tests of how
    it is kept run everywhere instead of skipping where it would not be forked."""
    monkeypatch.setattr(analysis_helper, "usable_cpus", lambda: max(2, usable_cpus()))
    monkeypatch.delenv(analysis_helper.ENV_OFF, raising=False)
    assert helper_possible(), "a helper cannot be forked here (another thread runs?)"


def _no_children_left() -> bool:
    """True when this process has no child, running or unreaped (a zombie)."""
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def _slow_upper(data: bytes) -> tuple[bytes, int]:
    time.sleep(0.01)  # long enough that both processes take items
    return data.upper(), os.getpid()


def test_every_item_once_in_order_from_both_processes() -> None:
    items = [f"file-{i}".encode() for i in range(20)]
    todo = [i for i in range(20) if i % 5 != 0]  # the others were "duplicates"
    with ForkedHelper(items, _slow_upper) as helper:
        for pos in todo:
            helper.offer(pos)
        got = list(helper.results(todo))
    assert [pos for pos, _ in got] == todo
    assert [value for _, (value, _) in got] == [items[i].upper() for i in todo]
    pids = {pid for _, (_, pid) in got}
    assert PARENT in pids and len(pids) == 2  # both analysed some
    assert helper.helped == sum(pid != PARENT for _, (_, pid) in got)
    assert _no_children_left()


def _dies_on_item_3(data: bytes) -> bytes:
    if os.getpid() != PARENT and data == b"3":
        os.kill(os.getpid(), signal.SIGTERM)  # the helper dies mid-analysis
    time.sleep(0.005)
    return data * 2


def test_a_helper_that_dies_loses_nothing(caplog: pytest.LogCaptureFixture) -> None:
    items = [str(i).encode() for i in range(12)]
    todo = list(range(12))
    with caplog.at_level(logging.WARNING), ForkedHelper(items, _dies_on_item_3) as helper:
        for pos in todo:
            helper.offer(pos)
        time.sleep(0.05)  # let the helper take the first items (3 among them) before we do
        got = dict(helper.results(todo))
    assert got == {i: items[i] * 2 for i in todo}  # item 3 analysed here after the crash
    assert "analysis helper process died (signal 15)" in caplog.text
    assert _no_children_left()


def _raises_on_2(data: bytes) -> bytes:
    if data == b"2":
        raise ValueError("bad item 2")
    time.sleep(0.005)
    return data


def test_an_error_is_raised_here_as_without_a_helper() -> None:
    items = [str(i).encode() for i in range(6)]
    with pytest.raises(ValueError, match="bad item 2"), ForkedHelper(items, _raises_on_2) as h:
        for pos in range(6):
            h.offer(pos)
        list(h.results(range(6)))
    assert _no_children_left()


def test_stopping_early_stops_and_reaps_the_helper() -> None:
    items = [str(i).encode() for i in range(200)]
    helper = ForkedHelper(items, _slow_upper)
    for pos in range(200):
        helper.offer(pos)
    results = helper.results(range(200))
    assert next(results)[0] == 0
    started = time.perf_counter()
    helper.close()  # the helper still had ~2 s of work: it is killed, not waited for
    assert time.perf_counter() - started < 1.0
    assert _no_children_left()


def test_a_fork_that_fails_leaves_this_process_to_do_it_all(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_fork() -> int:
        raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))  # the OS refuses, as at ulimit -u

    monkeypatch.setattr(os, "fork", no_fork)
    items = [str(i).encode() for i in range(5)]
    with caplog.at_level(logging.WARNING), ForkedHelper(items, _slow_upper) as helper:
        for pos in range(5):
            helper.offer(pos)
        got = list(helper.results(range(5)))
    assert [value for _, (value, _) in got] == [b.upper() for b in items]
    assert {pid for _, (_, pid) in got} == {PARENT} and helper.helped == 0
    assert "cannot fork an analysis helper" in caplog.text
    helper.close()  # twice is fine


def test_not_used_beside_other_threads_or_when_switched_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if usable_cpus() < 2:
        assert not helper_possible()  # one CPU: never used, whatever else holds
        return
    assert helper_possible()
    monkeypatch.setenv("EVENSTRIDE_NO_HELPER", "1")
    assert not helper_possible()
    monkeypatch.delenv("EVENSTRIDE_NO_HELPER")
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not helper_possible()  # forking a threaded process could deadlock the child
    finally:
        stop.set()
        other.join()
    assert helper_possible()


def _snapshot(store) -> list[tuple]:
    return [
        (r["source_id"], r["session_index"], r["summary"], r["start_time"])
        for r in store.list_runs()
    ] + [
        (a["source_id"], a["sha256"], a["status"], a["duration_s"], a["device"])
        for a in store.list_activities()
    ]  # fmt: skip


def test_ingest_with_the_helper_stores_exactly_what_one_process_stores(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expect_helper = helper_possible()  # one CPU: the same rows, all from this process
    jobs = [Job(p.read_bytes(), file_name=p.name) for p in FILES]
    jobs.insert(5, Job(b"not a FIT file", file_name="junk.fit"))  # failures keep their place
    jobs.insert(9, Job(FILES[0].read_bytes(), file_name="copy.fit"))  # same bytes twice
    with open_store(tmp_path / "one") as one:  # closed before: its archive thread stops
        serial = ingest_many(one, jobs, workers=1)
        expected, expected_ids = _snapshot(one), [a["id"] for a in one.list_activities()]
    with open_store(tmp_path / "two") as two:
        with caplog.at_level(logging.DEBUG, logger="evenstride.analysis_helper"):
            helped = ingest_many(two, jobs)
        assert [r.to_dict() | {"activity_id": 0} for r in helped] == [
            r.to_dict() | {"activity_id": 0} for r in serial
        ]
        assert [r.status for r in helped][5] == "failed"
        assert _snapshot(two) == expected
        assert [a["id"] for a in two.list_activities()] == expected_ids
        again = ingest_many(two, jobs)  # all known now: no file to analyse, so no fork
    assert {r.status for r in again} <= {"duplicate", "failed"}
    _assert_helped(caplog, expect_helper)
    assert analysis_helper.shared_running(analyse) == expect_helper  # kept for the next batch
    analysis_helper.shutdown()
    assert _no_children_left()


def _assert_helped(caplog: pytest.LogCaptureFixture, expect_helper: bool) -> None:
    """With a helper it analysed some files, not all; without one it never ran."""
    lines = [m for m in caplog.messages if m.startswith("analysis helper process:")]
    if not expect_helper:
        assert lines == []
        return
    helped = int(lines[0].split(": ")[1].split(" of ")[0])
    assert 1 <= helped < len(FILES)


def test_reprocess_with_the_helper_rebuilds_the_same_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expect_helper = helper_possible()
    with open_store(tmp_path / "h") as store:
        ingest_many(store, [Job(p.read_bytes(), file_name=p.name) for p in FILES], workers=1)
        before = _snapshot(store)
        with caplog.at_level(logging.DEBUG, logger="evenstride.analysis_helper"):
            results = reprocess(store)  # the import's writer thread is stopped for the fork
        assert [r.status for r in results] == ["imported"] * len(FILES)
        assert _snapshot(store) == before
    _assert_helped(caplog, expect_helper)
    analysis_helper.shutdown()
    assert _no_children_left()


def test_ingest_interrupted_mid_batch_leaves_no_helper_and_no_rows(tmp_path: Path) -> None:
    jobs = [Job(p.read_bytes(), file_name=p.name) for p in FILES]

    def stop_after_three(result) -> None:
        if stop_after_three.n == 3:
            raise KeyboardInterrupt
        stop_after_three.n += 1

    stop_after_three.n = 0
    with open_store(tmp_path / "h") as store:
        with pytest.raises(KeyboardInterrupt):
            ingest_many(store, jobs, on_result=stop_after_three)
        assert _no_children_left()
        assert store.list_activities() == []  # the batch rolled back
        results = ingest_many(store, jobs)  # the next run redoes the batch
        assert {r.status for r in results} <= {"imported", "partial"}


def test_a_killed_helper_during_ingest_only_slows_it(tmp_path: Path) -> None:
    """SIGKILL the helper from outside (OOM killer, an impatient admin): nothing is lost."""
    expect_helper = helper_possible()  # one CPU: no fork, so nothing to kill
    jobs = [Job(p.read_bytes(), file_name=p.name) for p in FILES]
    killed: list[int] = []
    real_fork = os.fork

    def fork_then_kill() -> int:
        pid = real_fork()
        if pid:
            os.kill(pid, signal.SIGKILL)  # before it takes anything
            killed.append(pid)
        return pid

    with open_store(tmp_path / "a") as a:
        expected = ingest_many(a, jobs, workers=1)
        expected_rows = _snapshot(a)
    with open_store(tmp_path / "b") as b:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(os, "fork", fork_then_kill)
            got = ingest_many(b, jobs)
        assert bool(killed) == expect_helper
        assert [r.status for r in got] == [r.status for r in expected]
        assert _snapshot(b) == expected_rows
    assert not analysis_helper.shared_running(analyse)  # a dead helper is not kept
    assert _no_children_left()


def test_the_helper_is_kept_between_batches_and_imports(tmp_path: Path, two_cpus: None) -> None:
    """One fork serves every batch of an import, and the next import in this process."""
    forks: list[int] = []
    real_fork = os.fork

    def counting_fork() -> int:
        pid = real_fork()
        if pid:
            forks.append(pid)
        return pid

    jobs = [Job(p.read_bytes(), file_name=p.name) for p in FILES]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fork", counting_fork)
        mp.setattr("evenstride.ingest.BULK_FILES", 10)  # three batches
        with open_store(tmp_path / "a") as a:
            first = ingest_many(a, jobs)
        with open_store(tmp_path / "b") as b:
            second = ingest_many(b, jobs)
            assert _snapshot(b) == _snapshot_of(tmp_path / "a")
    assert [r.status for r in first] == [r.status for r in second]
    assert len(forks) == 1
    assert analysis_helper._shared is not None and analysis_helper._shared.pid == forks[0]
    assert analysis_helper._shared.batches == 6
    analysis_helper.shutdown()
    assert _no_children_left()


def _snapshot_of(home: Path) -> list[tuple]:
    with open_store(home) as store:
        return _snapshot(store)


@pytest.mark.parametrize("keep", [64 << 20, 0])  # the memory file kept, or emptied each batch
def test_a_batch_is_never_confused_with_the_last_one(
    keep: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Positions repeat from batch to batch: each batch gets its own items' analyses, also
    when its bytes are fewer than the last batch's (the memory file's tail is stale)."""
    monkeypatch.setattr(analysis_helper, "_DATA_KEEP", keep)
    proc = HelperProcess(_slow_upper)
    try:
        for batch in (3, 0, 2, 1):
            items = [f"b{batch}-{i}".encode() * (1 + 500 * batch) for i in range(8)]
            with ForkedHelper(items, _slow_upper, process=proc) as helper:
                for pos in range(8):
                    helper.offer(pos)
                got = list(helper.results(range(8)))
            assert [value for _, (value, _) in got] == [x.upper() for x in items]
            assert proc.alive()  # a batch that ended cleanly leaves it running
    finally:
        proc.stop()
    assert _no_children_left()


def test_an_idle_helper_leaves_by_itself() -> None:
    proc = HelperProcess(_slow_upper, idle_s=0.2)
    assert proc.alive()
    deadline = time.monotonic() + 10
    while proc.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not proc.alive()  # reaped by alive()
    proc.stop()
    assert _no_children_left()


def test_the_helper_holds_no_file_of_this_process(tmp_path: Path) -> None:
    """A lock file (the nightly job's flock) is free the moment this process lets go of it."""
    lock = tmp_path / "nightly.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    proc = HelperProcess(_slow_upper)
    try:
        with ForkedHelper([b"a", b"b", b"c"], _slow_upper, process=proc) as helper:
            for pos in range(3):
                helper.offer(pos)
            list(helper.results(range(3)))  # the helper has served a batch: it is settled
        os.close(fd)  # the lock goes with our last descriptor, not the helper's copy
        other = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if the helper held it
        finally:
            os.close(other)
        assert proc.alive()
        held = os.listdir(f"/proc/{proc.pid}/fd")
        assert len(held) <= 6  # stdin/out/err, its claims, results and memory file
    finally:
        proc.stop()


def test_the_helper_leaves_when_its_parent_is_gone() -> None:
    """A parent killed without a word (SIGKILL, OOM): its helper sees the claims pipe end."""
    code = (
        "import os, sys\n"
        "from evenstride.analysis_helper import shared_process\n"
        "from evenstride.ingest import analyse\n"
        "proc = shared_process(analyse)\n"
        "print(proc.pid, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == -signal.SIGKILL, out.stderr
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 10
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(pid)


def _running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting for init to reap it is not)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_shared_process_is_none_where_no_helper_is_wanted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENSTRIDE_NO_HELPER", "1")
    assert shared_process(analyse) is None
    assert _no_children_left()


def test_objects_stay_frozen_while_any_helper_runs() -> None:
    """A full collection would touch every shared page: none scans what a helper shares."""
    import gc

    # In a fresh interpreter: Python 3.12 starts with a few hundred objects frozen already.
    code = (
        "import gc\n"
        "from evenstride.analysis_helper import HelperProcess\n"
        "alive = len(gc.get_objects())\n"
        "proc = HelperProcess(len)\n"
        "print(gc.get_freeze_count() >= alive // 2)\n"
        "proc.stop()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True"], out.stderr
    before = gc.get_freeze_count()
    alive = len(gc.get_objects())
    first = HelperProcess(_slow_upper)
    assert gc.get_freeze_count() >= before + alive // 2
    second = HelperProcess(_slow_upper)
    first.stop()
    assert gc.get_freeze_count() >= before + alive // 2  # the second still shares them
    second.stop()
    assert gc.get_freeze_count() <= before
    assert _no_children_left()


def _minor_faults(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[7])


def test_the_helper_keeps_its_heap_from_file_to_file() -> None:
    """The same batch again costs the helper almost no page faults (glibc keeps freed memory)."""
    samples = sorted(SYNTHETIC.parent.glob("samples/running_*/*.fit"))
    items = [p.read_bytes() for p in sorted(samples, key=lambda p: -p.stat().st_size) + FILES]
    proc = HelperProcess(_analysis_in_helper)
    try:
        faults = []
        for _ in range(3):
            before = _minor_faults(proc.pid)
            with ForkedHelper(items, _analysis_in_helper, process=proc) as helper:
                for pos in range(len(items)):
                    helper.offer(pos)
                got = list(helper.results(range(len(items))))
            faults.append(_minor_faults(proc.pid) - before)
            assert helper.helped >= len(items) - 3, got  # the helper analysed nearly all
        assert faults[-1] < 100, faults  # glibc default: ~350 (each large array mapped anew)
    finally:
        proc.stop()


def _analysis_in_helper(data: bytes) -> bool:
    """analyse() in the helper; this process is slow, so it leaves nearly every file to it."""
    if os.getpid() == PARENT:
        time.sleep(0.5)
        return True
    analyse(data)
    return False


def test_one_batch_at_a_time_on_the_kept_helper(two_cpus: None) -> None:
    """A second batch while one is on the helper (another thread) runs in one process instead."""
    proc = shared_process(_slow_upper)
    assert proc is not None and proc.in_use
    assert shared_process(_slow_upper) is None  # taken: no second batch on it, no second fork
    items = [b"a", b"b", b"c", b"d"]
    with ForkedHelper(items, _slow_upper, process=proc) as helper:
        for pos in range(4):
            helper.offer(pos)
        list(helper.results(range(4)))
    assert not proc.in_use
    assert shared_process(_slow_upper) is proc  # free again, and still running


def test_imports_from_two_threads_store_what_one_process_stores(tmp_path: Path) -> None:
    jobs = [Job(p.read_bytes(), file_name=p.name) for p in FILES]
    with open_store(tmp_path / "serial") as serial:
        ingest_many(serial, jobs, workers=1)
        expected = _snapshot(serial)
    with open_store(tmp_path / "warm") as warm:
        ingest_many(warm, jobs[:4])  # forks the kept helper while this process has one thread
    stores = [open_store(tmp_path / name) for name in ("a", "b")]
    errors: list[BaseException] = []

    def run(store) -> None:
        try:
            ingest_many(store, jobs)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads) and errors == []
    for store in stores:
        assert _snapshot(store) == expected
        store.close()
    analysis_helper.shutdown()
    assert _no_children_left()
