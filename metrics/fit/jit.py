"""numba's `njit`, or None when numba is missing or EVENSTRIDE_NO_JIT is set.

The reader's per-message loop (the header walk) is compiled when numba is there; the plain
Python walk stays as the reference the tests compare it with, and runs without numba.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

njit: Callable[..., Any] | None
try:  # pragma: no cover - which branch runs depends on the environment
    if os.environ.get("EVENSTRIDE_NO_JIT"):
        raise ImportError("disabled by EVENSTRIDE_NO_JIT")
    from numba import njit
except ImportError:  # pragma: no cover
    njit = None


def compiled(fn: Callable[..., Any]) -> Callable[..., Any] | None:
    """`fn` compiled (cached on disk, GIL released), or None without numba."""
    return njit(cache=True, nogil=True)(fn) if njit is not None else None
