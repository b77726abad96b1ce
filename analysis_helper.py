"""A forked second process that analyses part of each import batch while this one stores the rest.

Why a fork: decoding and summarising run under the GIL, so a thread cannot overlap them with the
archive and SQLite work (measured: slower than one thread), and a fresh worker process spends
3-4 s importing numpy, pandas and the compiled kernels. A fork inherits all of that in a few
milliseconds, so even a 50-file batch gains from the second core.

Why it is kept between batches: right after a fork every page is shared, and the first write to
one (a reference count, a reused heap slot) copies it. On this kind of VM that is ~3 us a page
and about 8,000 pages per fork on both sides together: a fork per batch paid ~20 ms of CPU a
batch, more than storing it. The helper process therefore serves batch after batch (of the same
import, and of later imports in this process) and only the first batch pays for the fork. It
leaves when this process stops it (`shutdown`, also at exit), when this process is gone (its
claims pipe ends), or after IDLE_S seconds without work, so a notebook that imported once does
not keep a copy of itself around.

How the two share a batch: each file's bytes are appended to a memory file both processes hold
(memfd), and a claim (batch, position, offset, length) is written to a pipe; each process takes
the next claim when it is free (claims are 24-byte writes, under PIPE_BUF, so none is split or
taken twice). The helper sends each analysis back, pickled, through a second pipe; this process
analyses what it takes, stores every file in batch order, and analyses itself whatever the helper
did not send back (a helper that dies loses no file, it only stops helping; the next batch forks
a new one). A batch that does not end cleanly (an exception, Ctrl-C) stops the helper, so no
half-done claim outlives it. The helper never touches the database or the archive, closes every
file it inherited (lock files, databases) and leaves with os._exit.

Only on Linux, with two CPUs or more, and a fork only when this process has no other thread:
forking a multi-threaded process can leave the child waiting on a lock a vanished thread held.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import gc
import logging
import os
import pickle
import select
import signal
import struct
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence

log = logging.getLogger(__name__)

_CLAIM = struct.Struct("<IIQQ")  # batch, position, offset and length of its bytes in the memfd
_HEADER = 8  # bytes of a result frame's length
_PIPE_BYTES = 1 << 20  # results pipe capacity asked for: the helper rarely waits for a reader
ENV_OFF = "EVENSTRIDE_NO_HELPER"  # set (to anything but "") to analyse in one process
IDLE_S = 30.0  # a helper with no claim for this long leaves by itself
_DATA_KEEP = 64 << 20  # the memory file keeps up to this many bytes from batch to batch


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def helper_wanted() -> bool:
    """Whether a helper is useful and allowed here (Linux, fork, two CPUs, not switched off)."""
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and not os.environ.get(ENV_OFF)
        and usable_cpus() >= 2
    )


def helper_possible() -> bool:
    """Whether a helper may be forked now: wanted, and this process has no other thread."""
    return helper_wanted() and threading.active_count() == 1


def _data_file() -> int:
    """A file in memory for the batches' bytes (a deleted temporary file where memfd is missing)."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("evenstride-batch", os.MFD_CLOEXEC)
    fd, path = tempfile.mkstemp(prefix="evenstride-batch-")  # pragma: no cover - old kernels
    os.unlink(path)  # pragma: no cover
    return fd  # pragma: no cover


class HelperProcess[T]:
    """The forked process itself: it analyses any claim of any batch until it is stopped."""

    def __init__(self, analyse: Callable[[bytes], T], *, idle_s: float = IDLE_S) -> None:
        self.analyse = analyse
        self.owner = os.getpid()
        self.batches = 0  # batches started on it (for tests and benchmarks)
        self.in_use = False  # a batch is on it (one at a time: see shared_process)
        self._claims_r, self.claims_w = os.pipe()
        for fd in (self._claims_r, self.claims_w):
            os.set_blocking(fd, False)  # both processes poll; a claim goes to the first reader
        self.results_r, results_w = os.pipe()
        os.set_blocking(self.results_r, False)  # read when select says so, or in passing
        with contextlib.suppress(OSError, AttributeError):  # a bigger pipe: helper waits less
            fcntl.fcntl(results_w, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        self.data = _data_file()
        # Objects alive now are left out of this process's collections while a helper runs: a
        # full collection would write to every one of them and so copy every page the fork
        # shares (measured: 9,300 page copies and +65 ms in the import that ran one).
        _freeze_for(self)
        try:
            self.pid = os.fork()
        except OSError as exc:  # e.g. no memory or process slots left: this process does it all
            log.warning("cannot fork an analysis helper (%s): analysing in one process", exc)
            self.pid = -1
        if self.pid == 0:  # pragma: no cover - runs in the child, which leaves by os._exit
            keep = (self._claims_r, results_w, self.data)
            _serve(analyse, keep, idle_s)
        os.close(results_w)  # without a helper, the results pipe reads as ended at once

    def take(self) -> tuple[int, int] | None:
        """The next claim (batch, position) nobody has taken yet, or None."""
        try:
            chunk = os.read(self._claims_r, _CLAIM.size)
        except BlockingIOError:
            return None
        if len(chunk) != _CLAIM.size:  # pragma: no cover - writes of _CLAIM.size are atomic
            return None
        batch, pos, _, _ = _CLAIM.unpack(chunk)
        return batch, pos

    def alive(self) -> bool:
        """Whether the helper still runs (reaping it when it has left, e.g. after IDLE_S)."""
        if self.pid <= 0 or self.owner != os.getpid():
            return False
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid = self.pid
        if pid == 0:
            return True
        self.pid = 0
        return False

    def stop(self) -> None:
        """Kill and reap the helper (at once, working or not) and close its pipes; idempotent."""
        if self.owner != os.getpid():  # a copy of it in a forked child: the helper is not ours
            self.pid = 0
        for fd in (self.claims_w, self._claims_r, self.results_r, self.data):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.claims_w = self._claims_r = self.results_r = self.data = -1
        _unfreeze_for(self)
        if self.pid <= 0:
            return
        pid, self.pid = self.pid, 0
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # its results are no longer read
        with contextlib.suppress(ChildProcessError):
            _, status = os.waitpid(pid, 0)
            if os.WIFSIGNALED(status) and os.WTERMSIG(status) != signal.SIGKILL:
                log.warning("the analysis helper process died (signal %d)", os.WTERMSIG(status))


class ForkedHelper[T]:
    """One batch analysed by this process and a helper process; `results` hands them in order.

    `process`: a running HelperProcess to use (kept running when the batch ends cleanly); without
    it a helper is forked for this batch and stopped at `close`. Fork BEFORE starting any thread
    (e.g. the archive's writer), `offer` each position to analyse as soon as it is known, then
    iterate `results` over the same positions; `close` (or the context manager) ends the batch.
    """

    def __init__(
        self,
        items: Sequence[bytes | None],
        analyse: Callable[[bytes], T],
        *,
        process: HelperProcess[T] | None = None,
    ) -> None:
        self._items = items
        self._analyse = analyse
        self._own = process is None
        self._proc = HelperProcess(analyse) if process is None else process
        self._proc.in_use = True
        self._proc.batches += 1
        self._batch = self._proc.batches & 0xFFFFFFFF
        self._helping = self._proc.pid > 0
        if self._helping and os.fstat(self._proc.data).st_size > _DATA_KEEP:
            os.ftruncate(self._proc.data, 0)  # else its pages are overwritten, not allocated anew
        self._end = 0  # bytes of this batch in the memory file
        self._buffer = bytearray()
        self._eof = not self._helping
        self._finished = False
        self._closed = False
        self._mine: set[int] = set()  # positions the helper was never offered
        self.offered = 0  # positions put up for analysis
        self.helped = 0  # analyses the helper sent back (for tests and benchmarks)

    # ---- this process

    def offer(self, pos: int) -> None:
        """Put `pos` up for analysis at once (the helper may start on it while we prepare more)."""
        if self._closed or self._finished:
            raise RuntimeError("ForkedHelper.offer after results")
        self.offered += 1
        data = self._items[pos]
        if not self._helping or data is None:
            self._mine.add(pos)
            return
        try:
            view = memoryview(data)
            written = 0
            while written < len(view):
                written += os.pwrite(self._proc.data, view[written:], self._end + written)
            claim = _CLAIM.pack(self._batch, pos, self._end, len(view))
            if os.write(self._proc.claims_w, claim) != len(claim):  # pragma: no cover - atomic
                raise OSError("short claim write")
        except OSError:  # memory file full, claims pipe full: this process takes it
            self._mine.add(pos)
            return
        self._end += len(view)

    def results(self, todo: Sequence[int]) -> Iterator[tuple[int, T]]:
        """(position, analysis) for each of `todo` (all offered), in that order, from either side.

        Once no claim is left in the pipe, every file has been taken, so this process waits
        only for what the helper is analysing.
        """
        got: dict[int, T] = {}
        self._finished = not todo
        for n, pos in enumerate(todo, 1):
            while pos not in got:
                if pos in self._mine:
                    got[pos] = self._analyse(self._items[pos])  # type: ignore[arg-type]
                    continue
                claim = self._proc.take() if self._helping else None
                if claim is not None:
                    batch, mine = claim
                    if batch == self._batch:  # (an older batch's claim cannot be left over)
                        got[mine] = self._analyse(self._items[mine])  # type: ignore[arg-type]
                        self._receive(got, block=False)
                elif not self._eof:
                    self._receive(got, block=True)
                else:  # the helper stopped without this one (it died): analyse it here
                    got[pos] = self._analyse(self._items[pos])  # type: ignore[arg-type]
            self._finished = n == len(todo)  # the helper has nothing of this batch left
            yield pos, got.pop(pos)

    def _receive(self, got: dict[int, T], *, block: bool) -> None:
        """Read what the helper has sent (waiting for some when `block`) into `got`."""
        fd = self._proc.results_r
        if block:
            select.select([fd], [], [])
        try:
            chunk = os.read(fd, _PIPE_BYTES)
        except BlockingIOError:
            return
        if not chunk:
            self._eof = True
            return
        buf = self._buffer
        buf += chunk
        while len(buf) >= _HEADER:
            size = int.from_bytes(buf[:_HEADER], "little")
            if len(buf) < _HEADER + size:
                break
            batch, pos, value = pickle.loads(buf[_HEADER : _HEADER + size])
            del buf[: _HEADER + size]
            if batch == self._batch:
                got[pos] = value
                self.helped += 1

    def close(self) -> None:
        """End the batch: the helper keeps running only if it is shared and the batch finished."""
        if self._closed:
            return
        self._closed = True
        log.debug("analysis helper process: %d of %d files", self.helped, self.offered)
        if self._own or not self._finished or self._eof:
            self._proc.stop()
        with _shared_lock:
            self._proc.in_use = False

    def __enter__(self) -> ForkedHelper[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_freezers: set[HelperProcess] = set()  # the live helpers this process froze its objects for


def _freeze_for(proc: HelperProcess) -> None:
    """gc.freeze() for `proc` (Python 3.12 starts with a few hundred objects frozen already)."""
    if not _freezers:
        gc.freeze()
    _freezers.add(proc)


def _unfreeze_for(proc: HelperProcess) -> None:
    """Collect normally again once no helper this process forked shares its pages."""
    if proc in _freezers:
        _freezers.discard(proc)
        if not _freezers:
            gc.unfreeze()


_shared: HelperProcess | None = None
_shared_lock = threading.Lock()


def shared_process[T](analyse: Callable[[bytes], T]) -> HelperProcess[T] | None:
    """The helper process kept for `analyse` between batches, forked now when none is running.

    It comes marked in use, for one batch (a ForkedHelper, whose close frees it). None when no
    helper may be used, when another thread's batch has it (that batch then runs in one
    process), or when none may be forked now (another thread runs: see `helper_possible`).
    """
    global _shared
    if not helper_wanted():
        return None
    with _shared_lock:
        proc = _shared
        if proc is not None and proc.in_use and proc.owner == os.getpid():
            return None
        if proc is not None and proc.analyse is analyse and proc.alive():
            proc.in_use = True
            return proc
        if proc is not None:
            proc.stop()
            _shared = None
        if not helper_possible():
            return None
        proc = HelperProcess(analyse)
        if proc.pid <= 0:  # the fork was refused (logged): no helper this time
            proc.stop()
            return None
        proc.in_use = True
        _shared = proc
        return proc


def shared_running(analyse: Callable[[bytes], object]) -> bool:
    """Whether the helper kept for `analyse` runs now (so a batch can use it without a fork)."""
    return _shared is not None and _shared.analyse is analyse and _shared.alive()


def shutdown() -> None:
    """Stop the kept helper process, if any (also done at interpreter exit)."""
    global _shared
    proc, _shared = _shared, None
    if proc is not None:
        proc.stop()


atexit.register(shutdown)


def _serve[T](
    analyse: Callable[[bytes], T], keep: tuple[int, int, int], idle_s: float
) -> None:  # pragma: no cover - runs in the child
    """The helper's life: take claims until told to stop or idle, send each analysis, leave."""
    claims, out, data = keep
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        gc.freeze()  # what it inherited is never collected here: collections copy no page
        _keep_heap()
        for fd in _open_fds():  # lock files, databases, other helpers' pipes: not ours
            if fd > 2 and fd not in keep:
                with contextlib.suppress(OSError):
                    os.close(fd)
        os.set_blocking(out, True)
        poller = select.poll()
        poller.register(claims, select.POLLIN)
        while True:
            if not poller.poll(idle_s * 1000):
                break  # idle: leave; the next batch forks a new helper
            try:
                chunk = os.read(claims, _CLAIM.size)
            except BlockingIOError:
                continue  # the other process took it first
            if len(chunk) != _CLAIM.size:
                break  # no writer left: this helper's parent is gone
            batch, pos, offset, length = _CLAIM.unpack(chunk)
            value = analyse(os.pread(data, length, offset))
            frame = pickle.dumps((batch, pos, value), protocol=pickle.HIGHEST_PROTOCOL)
            view = memoryview(len(frame).to_bytes(_HEADER, "little") + frame)
            while view:
                view = view[os.write(out, view) :]
    except BaseException:  # noqa: BLE001 - BrokenPipe (parent gone) and anything else: just stop
        code = 1
    finally:
        os._exit(code)


def _keep_heap() -> None:  # pragma: no cover - runs in the child
    """glibc: keep freed memory for the next file's arrays instead of handing it back.

    By default large arrays are mapped afresh and freed memory is returned to the OS, so every
    file's arrays fault their pages in again (~850 faults per 50 files here, ~3 us each). The
    helper allocates the same few sizes file after file; it keeps its heap at its peak instead.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    for option, value in ((-1, 256 << 20), (-2, 16 << 20), (-3, 32 << 20)):
        mallopt(option, value)  # M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD (glibc's max)


def _open_fds() -> list[int]:  # pragma: no cover - runs in the child
    try:
        return [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 256))
