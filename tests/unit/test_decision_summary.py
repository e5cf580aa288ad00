"""What kubectl shows: an invalid spec, conditions and observedGeneration (core/decision/summary.py)."""

from __future__ import annotations

from retrain_operator.core.conditions import get_condition
from retrain_operator.core.observed import Observed

from .decisions import MANUAL, step, then
from .policies import policy


def test_an_invalid_spec_is_reported_once_and_nothing_runs():
    state = policy(annotations=MANUAL)
    plan = step(state, Observed(spec_problems=("spec.triggers.schedule.cron: bad cron",)))
    assert plan.create_job is None
    assert plan.status["phase"] == "Invalid"
    ready = get_condition(plan.status["conditions"], "Ready")
    assert ready["reason"] == "InvalidSpec" and "bad cron" in ready["message"]
    assert [e.reason for e in plan.events] == ["InvalidSpec"]
    again = step(then(state, plan), Observed(spec_problems=("spec.triggers.schedule.cron: bad cron",)))
    assert again.events == ()

def test_generation_is_observed():
    plan = step(policy(generation=7))
    assert plan.status["observedGeneration"] == 7
    assert all(c["observedGeneration"] == 7 for c in plan.status["conditions"])
