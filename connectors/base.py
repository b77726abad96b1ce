"""The connector plugin interface.

A connector moves raw activity files between a platform and evenstride; it does I/O only and
never computes metrics. Connectors are discovered through the `evenstride.connectors` entry-point
group, so a third party can add one (Intervals.icu, COROS, ...) from its own package:

    # pyproject.toml of the plugin
    [project.entry-points."evenstride.connectors"]
    coros = "evenstride_coros:CorosConnector"

    class CorosConnector(Connector):
        name = "coros"
        description = "COROS Training Hub exports"

        def items(self, **options) -> Iterator[RawItem]:
            for activity in my_api.list(since=options.get("since")):
                yield RawItem(name=activity.title, source="coros", source_id=activity.id,
                              load=lambda a=activity: my_api.download_fit(a.id))

Every yielded item goes through `evenstride.ingest.ingest_file` (archive raw -> decode -> store),
which is idempotent on (athlete, source, source_id) and on the file's sha256. An item whose bytes
cannot be fetched carries `error` instead and is recorded as failed; the run goes on.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar

ENTRY_POINT_GROUP = "evenstride.connectors"
DEFAULT_OVERLAP = dt.timedelta(days=2)  # incremental syncs re-list this far behind the cursor
FIRST_SYNC_DAYS = 365  # the first sync without --since looks back this far


@dataclass
class RawItem:
    """One raw file a connector offers; bytes are loaded lazily so listings stay cheap."""

    name: str  # what to show the user (path, "export.zip:activities/1.fit.gz", activity title)
    load: Callable[[], bytes] | None = None
    source: str = "file"
    source_id: str | None = None  # None: the content hash identifies it
    kind: str = "fit"  # fit | gpx | tcx | json
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # set when the item is known to be unreadable (e.g. corrupt gzip)


class Connector(ABC):
    """Base class of all connectors (local files, Garmin Connect, Strava, plugins)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    @abstractmethod
    def items(self, **options: Any) -> Iterator[RawItem]:
        """Raw activity files to ingest."""


def discover() -> dict[str, type[Connector]]:
    """All installed connectors by name, from the `evenstride.connectors` entry points."""
    found: dict[str, type[Connector]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        found[ep.name] = cls
    return found


# --------------------------------------------------------------------------- incremental syncs


def window_start(
    since: dt.date | None, cursor: str | None, overlap: dt.timedelta, now: dt.datetime
) -> dt.datetime:
    """Where an incremental sync starts listing: `since` (midnight UTC), else the cursor (an
    ISO datetime) minus `overlap` (catches late uploads), else FIRST_SYNC_DAYS before `now`."""
    if since is not None:
        return dt.datetime.combine(since, dt.time(), dt.UTC)
    if cursor:
        return dt.datetime.fromisoformat(cursor) - overlap
    return now - dt.timedelta(days=FIRST_SYNC_DAYS)


def stopped_text(stopped: str | None, retry_hint: str | None) -> str:
    """The "; stopped: <why> (<retry hint>)" tail of a summary line; "" when nothing stopped."""
    if not stopped:
        return ""
    return f"; stopped: {stopped}" + (f" ({retry_hint})" if retry_hint else "")
