"""Drift checks in the decision core: when they run, how their results are read, what they trigger."""

from __future__ import annotations

import dataclasses
import datetime as dt

from retrain_contract.api import names
from retrain_operator.core.conditions import get_condition
from retrain_operator.core.decision.outcomes import DriftChecked
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


INSUFFICIENT = {"verdict": "insufficient-data", "drift": False, "datasetDrift": False, "driftedShare": 0.0,
                "driftedFeatures": [], "topFeatures": [], "rows": 12, "minRows": 200,
                "insufficientFeatures": ["spend", "tenure"], "verdictReason": "12 current rows, at least 200 needed",
                "features": {"spend": {"score": 0.9, "insufficient": True}, "tenure": {"score": 0.8,
                                                                                     "insufficient": True}}}


def test_too_few_rows_is_neither_drift_nor_no_drift_and_starts_no_run():
    state = then(serving(), step(serving()))
    plan = step(state, Observed(drift_jobs=(job("d1", SUCCEEDED),), drift_outcomes={"d1": DriftOutcome(
        result=INSUFFICIENT, uri="s3://models/retrain/ml/churn/drift/d1/")}))
    assert plan.create_job is None and not plan.status.get("pendingDriftTrigger")
    record = plan.status["drift"]
    assert record["verdict"] == "insufficient-data" and "drift" not in record  # not False: not known
    assert record["rows"] == 12 and record["minRows"] == 200 and record["insufficientFeatures"] == ["spend", "tenure"]
    assert record.get("featureScores") == {}  # scores of too few rows are noise, not a signal
    condition = get_condition(plan.status["conditions"], "DriftDetected")
    assert (condition["status"], condition["reason"]) == ("Unknown", "InsufficientData")
    assert condition["message"] == "d1: 12 current rows, at least 200 needed"
    assert [(e.type, e.reason) for e in plan.events] == [("Normal", "InsufficientData")]
    assert "12 current rows, at least 200 needed" in plan.events[0].message
    assert [o for o in plan.outcomes if isinstance(o, DriftChecked)] == [DriftChecked("insufficient_data")]


def test_an_insufficient_result_without_the_trainers_words_still_says_the_counts():
    state = then(serving(), step(serving()))
    result = {key: value for key, value in INSUFFICIENT.items() if key != "verdictReason"}
    plan = step(state, Observed(drift_jobs=(job("d1", SUCCEEDED),), drift_outcomes={"d1": DriftOutcome(result)}))
    assert get_condition(plan.status["conditions"], "DriftDetected")["message"] == \
        "d1: 12 rows in the window, at least 200 needed"


def test_a_result_without_a_verdict_is_read_from_its_booleans():
    state = then(serving(), step(serving()))
    plan = step(state, Observed(drift_jobs=(job("d1", SUCCEEDED),), drift_outcomes={"d1": DriftOutcome(DRIFTED)}))
    assert plan.status["drift"]["verdict"] == "drift" and plan.status["drift"]["drift"] is True

def test_drift_short_of_new_samples_waits_for_them_and_is_counted_again_every_few_minutes():
    triggers = {**DRIFT, "minNewSamples": 1000}
    state = then(serving(triggers), step(serving(triggers)))
    found = Observed(drift_jobs=(job("d1", SUCCEEDED),), drift_outcomes={"d1": DriftOutcome(result=DRIFTED)})
    assert step(state, found).wants.new_samples is True
    waiting = step(state, dataclasses.replace(found, new_samples=300))
    assert waiting.create_job is None and not waiting.status.get("activeRun")
    pending = waiting.status["pendingDriftTrigger"]
    assert pending["checkId"] == "d1" and pending["newSamples"] == 300
    assert pending["countedAt"] == "2026-11-24T10:00:00Z"
    assert "lastDriftTrigger" not in waiting.status  # not consumed: a skipped drift would go unanswered
    assert [e.reason for e in waiting.events] == ["DriftDetected", "RunWaitsForSamples"]
    training = get_condition(waiting.status["conditions"], "Training")
    assert training["reason"] == "NotEnoughNewSamples" and "300 since v1" in training["message"]
    assert waiting.outcomes.count(DriftChecked("drift")) == 1 and len(waiting.outcomes) == 1  # not a skipped run
    assert 299 <= waiting.requeue_after <= 301

    state = then(state, waiting)
    quiet = step(state, now=NOW + dt.timedelta(minutes=2))
    assert not quiet.wants and quiet.create_job is None and quiet.events == ()
    assert 179 <= quiet.requeue_after <= 181
    due = NOW + dt.timedelta(minutes=5)
    assert step(state, now=due).wants.new_samples is True
    still = step(state, Observed(new_samples=600), now=due)
    assert still.events == () and still.status["pendingDriftTrigger"]["newSamples"] == 600
    assert still.status["pendingDriftTrigger"]["at"] == pending["at"]
    enough = step(then(state, still), Observed(new_samples=1000), now=due + dt.timedelta(minutes=5))
    assert enough.status["activeRun"]["trigger"]["type"] == "drift" and enough.status["lastDriftTrigger"] == "d1"
    assert enough.status.get("pendingDriftTrigger") is None


def test_drift_found_again_while_a_run_waits_keeps_the_time_it_has_waited_since():
    triggers = {**DRIFT, "cooldown": "6h"}
    state = then(serving(triggers), step(serving(triggers)))
    first = step(state, Observed(drift_jobs=(job("d1", SUCCEEDED),),
                                 drift_outcomes={"d1": DriftOutcome(result=DRIFTED)}))
    state = then(state, first)
    later = NOW + dt.timedelta(hours=1, minutes=1)
    state = then(state, step(state, now=later))  # the next check, d2
    assert state.status["activeDriftCheck"]["checkId"] == "d2"
    found = Observed(drift_jobs=(job("d2", SUCCEEDED),), drift_outcomes={"d2": DriftOutcome(result=DRIFTED)})
    again = step(state, found, now=later + dt.timedelta(minutes=1))
    assert again.status["pendingDriftTrigger"]["checkId"] == "d2"
    assert again.status["pendingDriftTrigger"]["at"] == first.status["pendingDriftTrigger"]["at"]
