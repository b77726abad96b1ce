"""JSON rendering: the plan's canonical, round-trippable form (sorted keys, ISO dates)."""

from __future__ import annotations

from .models import Plan


def plan_to_json(plan: Plan) -> str:
    return plan.to_json()


def plan_from_json(text: str) -> Plan:
    return Plan.from_json(text)
