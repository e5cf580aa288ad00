"""Drift checks in the decision core: when they run, how their results are read, what they trigger."""

from __future__ import annotations

import dataclasses
import datetime as dt

from retrain_contract.api import names
from retrain_operator.core.conditions import get_condition
from retrain_operator.core.observed import ACTIVE, FAILED, SUCCEEDED, DriftJobView, DriftOutcome, Observed

from .decisions import NOW, step, then
from .policies import policy, spec

DRIFT = {"drift": {"data": "s3://data/churn/recent/", "window": "24h", "interval": "1h"}}
SERVING = {"runCounter": 1, "currentModel": {"version": "v1", "uri": "s3://models/retrain/ml/churn/v1/"},
           "lastRun": {"version": "v1", "phase": "Succeeded", "finishedAt": "2026-11-24T08:00:00Z"}}
DRIFTED = {"drift": True, "datasetDrift": True, "driftedShare": 0.4, "driftedFeatures": ["spend", "tenure"],
           "topFeatures": [{"name": "spend", "score": 0.3}], "rows": 5000, "performance": None}


def serving(triggers: dict | None = None, status: dict | None = None):
    return policy(spec(triggers=triggers or DRIFT), status={**SERVING, **(status or {})})


def job(check_id: str, state: str) -> DriftJobView:
    return DriftJobView(name=f"churn-{check_id}", check_id=check_id, state=state)


def test_a_serving_policy_starts_a_drift_check_job():
    plan = step(serving())
    job_manifest = plan.create_job
    assert job_manifest["metadata"]["name"] == "churn-d1"
    assert job_manifest["metadata"]["labels"][names.LABEL_PURPOSE] == "drift"
    assert names.LABEL_RUN not in job_manifest["metadata"]["labels"]  # not a training run
    container = job_manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["drift"] and "nvidia.com/gpu" not in str(container["resources"])
    assert plan.status["activeDriftCheck"]["checkId"] == "d1"
    assert plan.status["driftCounter"] == 1


def test_no_drift_check_without_a_model():
    plan = step(policy(spec(triggers=DRIFT)))
    assert plan.create_job is None and plan.status.get("activeDriftCheck") is None


def test_a_running_check_is_waited_for():
    state = then(serving(), step(serving()))
    plan = step(state, Observed(drift_jobs=(job("d1", ACTIVE),)))
    assert plan.create_job is None and plan.status["activeDriftCheck"]["checkId"] == "d1"


def test_detected_drift_is_recorded_and_starts_a_run_with_trigger_drift():
    state = then(serving(), step(serving()))
    observed = Observed(drift_jobs=(job("d1", SUCCEEDED),))
    assert step(state, observed).wants.drift_outcomes == ("d1",)
    plan = step(state, dataclasses.replace(observed, drift_outcomes={"d1": DriftOutcome(
        result=DRIFTED, uri="s3://models/retrain/ml/churn/drift/d1/")}))
    status = plan.status
    assert status["drift"]["drift"] is True and status["drift"]["driftedFeatures"] == ["spend", "tenure"]
    assert status["drift"]["reportUri"] == "s3://models/retrain/ml/churn/drift/d1/report.html"
    assert status["activeRun"]["trigger"]["type"] == "drift"
    assert status["lastDriftTrigger"] == "d1" and status.get("pendingDriftTrigger") is None
    assert get_condition(status["conditions"], "DriftDetected")["status"] == "True"
    assert [e.reason for e in plan.events] == ["DriftDetected", "RunStarted"]
    assert plan.create_job["metadata"]["name"] == "churn-v2"


def test_no_drift_means_no_run():
    state = then(serving(), step(serving()))
    outcome = DriftOutcome(result={**DRIFTED, "drift": False, "datasetDrift": False, "driftedFeatures": []})
    plan = step(state, Observed(drift_jobs=(job("d1", SUCCEEDED),), drift_outcomes={"d1": outcome}))
    assert plan.create_job is None
    assert get_condition(plan.status["conditions"], "DriftDetected")["reason"] == "NoDrift"
    assert [e.reason for e in plan.events] == ["NoDrift"]


def test_a_failed_check_is_reported_and_triggers_nothing():
    state = then(serving(), step(serving()))
    error = {"reason": "DataError", "message": "column(s) plan are missing from the recent data"}
    outcome = DriftOutcome(result=None, error=error)
    plan = step(state, Observed(drift_jobs=(job("d1", FAILED),), drift_outcomes={"d1": outcome}))
    assert plan.create_job is None
    condition = get_condition(plan.status["conditions"], "DriftDetected")
    assert condition["status"] == "Unknown" and condition["reason"] == "CheckFailed"
    assert "DataError" in condition["message"] and "missing" in condition["message"]
    assert [e.reason for e in plan.events] == ["DriftCheckFailed"]


def test_cooldown_defers_the_drift_run_without_losing_it():
    triggers = {**DRIFT, "cooldown": "6h"}
    state = then(serving(triggers), step(serving(triggers)))
    outcome = DriftOutcome(result=DRIFTED)
    plan = step(state, Observed(drift_jobs=(job("d1", SUCCEEDED),), drift_outcomes={"d1": outcome}))
    assert plan.create_job is None  # v1 finished at 08:00, cooldown until 14:00
    assert plan.status["pendingDriftTrigger"]["checkId"] == "d1"
    later = dataclasses.replace(then(state, plan), status={**plan.status})
    assert step(later, Observed(drift_jobs=(job("d1", SUCCEEDED),)),
                now=NOW + dt.timedelta(hours=4, minutes=1)).status["activeRun"]["trigger"]["type"] == "drift"


def test_checks_follow_their_interval():
    state = serving(status={"drift": {"checkId": "d1", "checkedAt": "2026-11-24T09:02:00Z", "drift": False}})
    early = step(state)  # 10:00, the next check is due at 10:02
    assert early.create_job is None and 119 <= early.requeue_after <= 121
    assert step(state, now=NOW + dt.timedelta(minutes=3)).create_job["metadata"]["name"] == "churn-d2"



def test_drift_found_in_a_model_already_replaced_triggers_no_run():
    state = then(serving(), step(serving()))
    state.status["currentModel"] = {"version": "v2", "uri": "s3://models/retrain/ml/churn/v2/"}
    plan = step(state, Observed(drift_jobs=(job("d1", SUCCEEDED),), drift_outcomes={"d1": DriftOutcome(
        result=DRIFTED, uri="s3://models/retrain/ml/churn/drift/d1/")}))
    assert not plan.status.get("pendingDriftTrigger") and not plan.status.get("activeRun")
