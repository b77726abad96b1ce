"""A forked second process that analyses part of an import batch while this one stores the rest.

Why a fork: decoding and summarising run under the GIL, so a thread cannot overlap them with the
archive and SQLite work (measured: slower than one thread), and a fresh worker process spends
3-4 s importing numpy, pandas and the compiled kernels. A fork inherits all of that, and the
batch's bytes, in a few milliseconds, so even a 50-file batch gains from the second core.

How the two share a batch: the files still to analyse are numbered into a pipe, and each process
takes the next number when it is free (a pipe read of 4 bytes is atomic, so no file is taken
twice). The helper sends each analysis back, pickled, through a second pipe; this process
analyses what it takes, stores every file in batch order, and analyses itself whatever the helper
did not send back (a helper that dies loses no file, it only stops helping). The helper never
touches the database or the archive and leaves with os._exit, so nothing of this process is torn
down twice.

Only on Linux, with two CPUs or more, and only when this process has no other thread: forking a
multi-threaded process can leave the child waiting on a lock a vanished thread held.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import logging
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence

log = logging.getLogger(__name__)

_CLAIM = 4  # bytes per file number in the claims pipe
_HEADER = 8  # bytes of a result frame's length
_PIPE_BYTES = 1 << 20  # results pipe capacity asked for: the helper rarely waits for a reader
ENV_OFF = "EVENSTRIDE_NO_HELPER"  # set (to anything but "") to analyse in one process


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def helper_possible() -> bool:
    """Whether a forked helper is safe and useful here (see the module's docstring)."""
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and not os.environ.get(ENV_OFF)
        and usable_cpus() >= 2
        and threading.active_count() == 1
    )


class ForkedHelper[T]:
    """A helper process forked with `items` in hand; `results` hands back analyses in order.

    Fork it BEFORE starting any thread (e.g. the archive's writer), `offer` each position to
    analyse as soon as it is known, then iterate `results` over the same positions; `close` (or
    the context manager) stops the helper.
    """

    def __init__(self, items: Sequence[bytes | None], analyse: Callable[[bytes], T]) -> None:
        self._items = items
        self._analyse = analyse
        self._claims_r, claims_w = os.pipe()
        self._results_r, results_w = os.pipe()
        with contextlib.suppress(OSError, AttributeError):  # a bigger pipe: helper waits less
            fcntl.fcntl(results_w, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        self._buffer = bytearray()
        self._eof = False
        self._claims_w: int | None = claims_w
        self.offered = 0  # positions put up for analysis
        self.helped = 0  # analyses the helper sent back (for tests and benchmarks)
        # Objects alive now are left out of this process's collections until `close`: a full
        # collection would write to every one of them and so copy every page the fork shares.
        self._froze = gc.get_freeze_count() == 0
        if self._froze:
            gc.freeze()
        self._closed = False
        try:
            self.pid = os.fork()
        except OSError as exc:  # e.g. no memory or process slots left: this process does it all
            log.warning("cannot fork an analysis helper (%s): analysing in one process", exc)
            self.pid = -1
        if self.pid == 0:  # pragma: no cover - runs in the child, which leaves by os._exit
            os.close(claims_w)
            os.close(self._results_r)
            _serve(items, analyse, self._claims_r, results_w)
        os.close(results_w)  # without a helper, the results pipe reads as ended at once

    # ---- this process

    def offer(self, pos: int) -> None:
        """Put `pos` up for analysis at once (the helper may start on it while we prepare more)."""
        if self._claims_w is None:
            raise RuntimeError("ForkedHelper.offer after results")
        with contextlib.suppress(BrokenPipeError):  # the helper is gone: we take every claim
            os.write(self._claims_w, pos.to_bytes(_CLAIM, "little"))  # <= PIPE_BUF: atomic
        self.offered += 1

    def results(self, todo: Sequence[int]) -> Iterator[tuple[int, T]]:
        """(position, analysis) for each of `todo` (all offered), in that order, from either side.

        Ends the offers first: once the claims pipe is empty, every file has been taken.
        """
        if self._claims_w is not None:
            os.close(self._claims_w)
            self._claims_w = None
        got: dict[int, T] = {}
        for pos in todo:
            while pos not in got:
                claim = self._claim()
                if claim is not None:
                    got[claim] = self._analyse(self._items[claim])  # type: ignore[arg-type]
                    self._receive(got, block=False)
                elif not self._eof:
                    self._receive(got, block=True)
                else:  # the helper stopped without this one (it died): analyse it here
                    got[pos] = self._analyse(self._items[pos])  # type: ignore[arg-type]
            yield pos, got.pop(pos)

    def _claim(self) -> int | None:
        chunk = os.read(self._claims_r, _CLAIM)
        return int.from_bytes(chunk, "little") if len(chunk) == _CLAIM else None

    def _receive(self, got: dict[int, T], *, block: bool) -> None:
        """Read what the helper has sent (waiting for some when `block`) into `got`."""
        os.set_blocking(self._results_r, block)
        try:
            chunk = os.read(self._results_r, _PIPE_BYTES)
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
            pos, value = pickle.loads(buf[_HEADER : _HEADER + size])
            del buf[: _HEADER + size]
            got[pos] = value
            self.helped += 1

    def close(self) -> None:
        """Stop the helper (at once if it is still working) and reap it; idempotent."""
        if self._closed:
            return
        self._closed = True
        log.debug("analysis helper process: %d of %d files", self.helped, self.offered)
        for fd in (self._claims_w, self._claims_r, self._results_r):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._claims_w = None
        if self._froze:
            gc.unfreeze()
        if self.pid <= 0:
            return
        pid, self.pid = self.pid, 0
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # finished or not: its results are no longer read
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) != signal.SIGKILL:
            log.warning("the analysis helper process died (signal %d)", os.WTERMSIG(status))

    def __enter__(self) -> ForkedHelper[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve[T](
    items: Sequence[bytes | None], analyse: Callable[[bytes], T], claims: int, out: int
) -> None:  # pragma: no cover - runs in the child
    """The helper's life: take numbers until none are left, send each analysis, leave."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        gc.disable()  # short-lived: collections would only copy the parent's pages
        while len(chunk := os.read(claims, _CLAIM)) == _CLAIM:
            pos = int.from_bytes(chunk, "little")
            frame = pickle.dumps((pos, analyse(items[pos])), protocol=pickle.HIGHEST_PROTOCOL)
            view = memoryview(len(frame).to_bytes(_HEADER, "little") + frame)
            while view:
                view = view[os.write(out, view) :]
    except BaseException:  # noqa: BLE001 - BrokenPipe (parent gone) and anything else: just stop
        code = 1
    finally:
        os._exit(code)
