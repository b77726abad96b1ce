"""Strava connector: OAuth with the user's own API app, streams sync, bulk-export import.

    evenstride login strava            # once: browser OAuth (or --refresh-token - on a server)
    evenstride sync strava             # unattended: runs as streams -> cadence trends
    evenstride import export_123.zip   # Strava's bulk export: FIT originals keep GCT balance

Modules: `client` (the only place that knows stravalib and Strava's URLs), `auth` (keyring,
OAuth flow), `callback` (one-shot 127.0.0.1 listener), `ratelimit` (budget from headers),
`streams` (streams JSON -> canonical columns), `sync` (cursor, dedup), `export` (bulk export),
`errors` (exceptions -> cli/exitcodes.py). What Strava can and cannot give: README.md here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from evenstride.connectors.base import Connector, RawItem


class StravaConnector(Connector):
    """Entry-point face of the connector (`evenstride connectors` lists it).

    Strava runs arrive as streams, not files, so they are stored by `sync.sync` through
    `ingest_records`; this connector yields no raw FIT items itself.
    """

    name = "strava"
    description = "Strava: OAuth login, runs as streams (cadence, pace, HR), bulk-export zips"

    def items(self, **options: Any) -> Iterator[RawItem]:
        return iter(())


__all__ = ["StravaConnector"]
