"""The athlete's current plan: built from the store, kept under --home between runs.

The saved plan is what lets the next plan keep past sessions exactly as they were, and what the
push and the audit read. Shared by the CLI, the Garmin push and the nightly job.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from evenstride.analysis import plan_inputs
from evenstride.planner import Plan, build_plan
from evenstride.store import Store
from evenstride.store.archive import write_private_file


def plans_dir(home: Path, athlete: str) -> Path:
    return home / "plans" / athlete


def last_plan(home: Path, athlete: str) -> Plan | None:
    """The plan generated last time (its past sessions are kept as they were)."""
    path = plans_dir(home, athlete) / "latest.json"
    return Plan.from_json(path.read_text()) if path.exists() else None


def save_plan(home: Path, plan: Plan) -> Path:
    return write_private_file(plans_dir(home, plan.athlete) / "latest.json", plan.to_json())


def make_plan(store: Store, home: Path, athlete: str, *, today: date, weeks: int) -> Plan:
    """Assess the athlete's trend and build the plan; the program start is fixed on first use."""
    profile_row = dict((store.get_athlete(athlete) or {}).get("profile") or {})
    if "program_start" not in profile_row:
        profile_row["program_start"] = today.isoformat()
        store.update_athlete_profile(athlete, profile_row)
    assessment, profile, overrides, hard = plan_inputs(store, athlete, today=today)
    previous = last_plan(home, athlete)
    past = [s for s in previous.sessions if s.date < today] if previous else None
    return build_plan(
        assessment, profile, today=today, weeks=weeks, hard_run_dates=hard,
        overrides=overrides, past_sessions=past,
    )  # fmt: skip
