"""Stable identities for sessions: content hashes and per-athlete/date ids.

Renderers and the Garmin push use these so re-exporting the same plan yields the same ids and a
changed session is recognisable by its hash, without any stored state.
"""

from __future__ import annotations

import hashlib
import re

from .models import Session
from .serialize import canonical_json

MARKER = "[evenstride]"


def content_hash(athlete: str, session: Session) -> str:
    """16 hex digits over the athlete and everything in the session (date included)."""
    text = canonical_json({"athlete": athlete, "session": session})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def slug(text: str) -> str:
    """Lower-case ASCII id fragment: safe in UIDs, file names and Garmin descriptions."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "athlete"


def tag(session_hash: str) -> str:
    """The marker plus content hash that evenstride writes into every workout it creates."""
    return f"[evenstride:{session_hash}]"
