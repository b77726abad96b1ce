"""Command-line interface (click): wires connectors, metrics, store and planner together."""
