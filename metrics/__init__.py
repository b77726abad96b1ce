"""Pure metric functions: FIT decoding, cleaning, per-run summaries, baselines, trends."""
