"""The one path every raw file takes: archive untouched -> decode -> summarise -> store.

Connectors (Garmin, Strava, local files) hand raw bytes to `ingest_file`; it never does network
I/O itself. Contract (implemented in the spine):

    result = ingest_file(store, data, source="garmin", source_id="123456789",
                         athlete="default", file_name="123456789_ACTIVITY.fit",
                         extra={"summary_json": {...}})
    result.status   # "imported" | "duplicate" | "partial" | "failed"
    result.activity_id, result.sha256, result.reason, result.runs
"""
