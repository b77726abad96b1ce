"""Planner: assessment -> program -> sessions, as pure data."""
