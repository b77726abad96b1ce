"""Connectors: I/O with Garmin Connect, Strava and local files. No metric logic here."""
