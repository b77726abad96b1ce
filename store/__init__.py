"""Embedded store: SQLite database behind one small module, plus the raw-file archive."""
