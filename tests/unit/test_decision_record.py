"""Recording a run: the version, its gates, history and pruning (core/decision/record.py)."""

from __future__ import annotations

import dataclasses

from retrain_operator.core.conditions import get_condition
from retrain_operator.core.observed import SUCCEEDED, Observed

from .decisions import MANIFEST, evaluation, finished_ok, job, serving_v1, started, step, then
from .policies import policy, spec


def test_a_succeeded_run_with_a_verified_manifest_becomes_current():
    state, _ = started()
    plan = finished_ok(state)
    status = plan.status
    assert status["currentModel"]["version"] == "v1"
    assert status["currentModel"]["uri"] == "s3://models/retrain/ml/churn/v1/"
    assert status["currentModel"]["metrics"] == MANIFEST["metrics"]
    assert status.get("activeRun") is None
    assert status["lastRun"]["phase"] == "Succeeded"
    assert [h["version"] for h in status["history"]] == ["v1"]
    assert status["phase"] == "Ready"
    assert get_condition(status["conditions"], "Ready")["status"] == "True"
    assert get_condition(status["conditions"], "Trained")["reason"] == "TrainingSucceeded"
    assert [e.reason for e in plan.events] == ["RunSucceeded"]

def test_a_run_is_recorded_once_even_when_looked_at_again():
    state, _ = started()
    plan = finished_ok(state)
    again = step(then(state, plan), Observed(jobs=(job("v1", SUCCEEDED),)))
    assert again.wants.outcomes == () and again.events == ()
    assert again.status["history"] == plan.status["history"]

def test_history_is_bounded_and_dropped_versions_are_pruned():
    history = [{"version": "v3", "uri": "s3://m/v3/"}, {"version": "v2", "uri": "s3://m/v2/"}]
    state = policy(spec(historyLimit=2), status={
        "runCounter": 3, "currentModel": history[0], "history": history,
        "lastRun": {"version": "v3", "phase": "Succeeded", "finishedAt": "2026-11-24T09:00:00Z"},
        "activeRun": {"version": "v4", "jobName": "churn-v4", "trigger": None, "parentVersion": "v3",
                      "startedAt": "2026-11-24T09:30:00Z"}})
    evaluation = {"comparison": {"rows": 100, "challenger": {"f1Macro": 0.9}, "champion": {"f1Macro": 0.9}}}
    plan = finished_ok(state, "v4", {**MANIFEST, "version": "v4", "evaluation": evaluation})
    assert plan.status["currentModel"]["version"] == "v4"
    assert [h["version"] for h in plan.status["history"]] == ["v4", "v3"]
    assert plan.prune_versions == ("v2",)

def test_a_challenger_that_passes_the_gates_becomes_current():
    plan = finished_ok(serving_v1(), "v2", {**MANIFEST, "version": "v2", "evaluation": evaluation(0.90)})
    assert plan.status["currentModel"]["version"] == "v2"
    assert plan.status["lastRun"]["phase"] == "Succeeded"
    assert {g["result"] for g in plan.status["lastRun"]["gates"]} == {"Passed"}

def test_a_worse_challenger_is_rejected_and_the_champion_keeps_serving():
    plan = finished_ok(serving_v1(), "v2", {**MANIFEST, "version": "v2", "evaluation": evaluation(0.80)})
    status = plan.status
    assert status["currentModel"]["version"] == "v1"
    assert status["lastRun"]["phase"] == "Rejected" and status["lastRun"]["reason"] == "GateFailed"
    assert "f1Macro 0.8 vs v1 0.88" in status["lastRun"]["message"]
    assert status["phase"] == "Ready" and "v2 was not promoted (GateFailed)" in status["message"]
    trained = get_condition(status["conditions"], "Trained")
    assert trained["status"] == "False" and trained["reason"] == "GateFailed"
    assert get_condition(status["conditions"], "Ready")["status"] == "True"
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "GateFailed")]
    assert "v1 keeps serving" in plan.events[0].message
    assert status["history"][0] == {**status["history"][0], "version": "v2", "rejected": "GateFailed"}

def test_a_challenger_without_evaluation_is_not_promoted_unless_comparisons_are_off():
    plan = finished_ok(serving_v1(), "v2", {**MANIFEST, "version": "v2"})
    assert plan.status["lastRun"]["reason"] == "GateInconclusive"
    assert plan.status["currentModel"]["version"] == "v1"
    relaxed = finished_ok(serving_v1(promotion={"gates": {"compare": [], "olderData": {"enabled": False}}}), "v2",
                          {**MANIFEST, "version": "v2"})
    assert relaxed.status["currentModel"]["version"] == "v2"

def test_rejected_challengers_never_push_the_serving_model_out_of_history():
    state = serving_v1(historyLimit=2)
    for version in ("v2", "v3"):
        state = dataclasses.replace(state, status={**state.status, "activeRun": {
            "version": version, "jobName": f"churn-{version}", "trigger": {"type": "schedule"},
            "parentVersion": "v1", "startedAt": "2026-11-24T09:30:00Z"}})
        plan = finished_ok(state, version, {**MANIFEST, "version": version, "evaluation": evaluation(0.5)})
        state = then(state, plan)
    assert [h["version"] for h in state.status["history"]] == ["v3", "v1"]
    assert plan.prune_versions == ("v2",)
    assert state.status["currentModel"]["version"] == "v1"
