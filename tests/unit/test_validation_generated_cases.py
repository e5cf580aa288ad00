"""Specs the API server accepts that the operator's core could not handle (found by
tests/integration/test_generated_policies.py): the semantic checks report them as InvalidSpec instead,
so the reconcile never reaches the code that would raise."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from retrain_contract.api.spec import PolicySpec
from retrain_operator.api.validation import problems, semantic_problems
from retrain_operator.core.decide import Settings, decide
from retrain_operator.core.observed import Observed

from .policies import BASE_SPEC, policy

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
SERVING = {"serving": {"replicas": 1}}
HUGE = "99999999999999h"  # matches the schema's duration pattern; beyond what a timedelta holds


def with_(**sections: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE_SPEC)
    spec.update(copy.deepcopy(sections))
    return spec


# (spec, where the problem is said). Each passes the CRD schema (the durations match its pattern).
CASES = {
    "empty time zone": (with_(triggers={"schedule": {"cron": "0 3 * * *", "timeZone": ""}}),
                        "spec.triggers.schedule.timeZone: unknown time zone ''"),
    "drift interval out of range": (with_(triggers={"drift": {"data": "s3://data/live/", "interval": HUGE}}),
                                    "spec.triggers.drift.interval"),
    "drift window out of range": (with_(triggers={"drift": {"data": "s3://data/live/", "window": HUGE}}),
                                  "spec.triggers.drift.window"),
    "pause out of range": (with_(**SERVING, promotion={"canary": {"steps": [
        {"pause": {"duration": HUGE}}, {"setWeight": 100}]}}), "spec.promotion.canary.steps[0].pause"),
    "analysis interval out of range": (with_(**SERVING, promotion={"canary": {
        "steps": [{"setWeight": 100}], "analysis": {"interval": HUGE}}}),
        "spec.promotion.canary.analysis.interval"),
    "ready timeout out of range": (with_(**SERVING, promotion={"canary": {
        "steps": [{"setWeight": 100}], "readyTimeout": HUGE}}), "spec.promotion.canary.readyTimeout"),
    "cooldown beyond datetime arithmetic": (with_(triggers={"cooldown": "999999999d"}),
                                            "spec.triggers.cooldown: '999999999d' is too long"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_spec_the_core_cannot_handle_is_an_invalid_spec(case: str):
    spec, where = CASES[case]
    found = problems(spec)
    assert any(problem.startswith(where) for problem in found), found
    plan = decide(policy(spec), Observed(spec_problems=tuple(found)), NOW, Settings())
    ready = next(c for c in plan.status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "InvalidSpec" and where in ready["message"]


def test_the_cases_crash_the_core_without_the_checks():
    """Why the checks exist: the first reconcile of each would raise (in _observe or in decide)."""
    for case, (spec, _) in CASES.items():
        if case == "cooldown beyond datetime arithmetic":
            continue  # raises only once a run finished (finishedAt + cooldown)
        with pytest.raises((ValueError, OverflowError)):
            decide(policy(spec), Observed(), NOW, Settings())
            PolicySpec.from_dict(spec)


def test_reasonable_durations_are_still_fine():
    spec = with_(triggers={"cooldown": "6h", "drift": {"data": "s3://data/live/", "interval": "1h", "window": "7d"}},
                 **SERVING, promotion={"canary": {"steps": [{"pause": {"duration": "1m"}}, {"setWeight": 100}],
                                                  "analysis": {"interval": "30s"}, "readyTimeout": "10m"}})
    assert problems(spec) == []


@pytest.mark.parametrize("section", ["model", "training", "triggers", "promotion"])
def test_a_section_of_the_wrong_type_is_a_schema_problem_not_a_crash(section: str):
    spec = with_(**{section: "oops"})
    assert semantic_problems(spec) == []
    assert any(problem.startswith(f"spec.{section}: ") for problem in problems(spec))
