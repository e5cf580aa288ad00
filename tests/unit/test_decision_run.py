"""Following a run: its Job, adoption after a crash, and how its end is read from S3 (core/decision/run.py)."""

from __future__ import annotations

import dataclasses

from retrain_contract.api import names
from retrain_operator.core.conditions import get_condition
from retrain_operator.core.decision.outcomes import RunFinished, RunStarted
from retrain_operator.core.observed import ACTIVE, FAILED, SUCCEEDED, ArtifactOutcome, Observed
from retrain_operator.core.runs import Trigger

from .decisions import MANIFEST, MANUAL, finished_ok, job, started, step, then
from .policies import policy


def test_a_running_job_is_followed_not_duplicated():
    state, _ = started()
    plan = step(state, Observed(jobs=(job("v1", ACTIVE),)))
    assert plan.create_job is None and plan.status["activeRun"]["version"] == "v1"
    assert plan.events == ()

def test_a_succeeded_job_without_manifest_is_a_failed_run():
    state, _ = started()
    observed = Observed(jobs=(job("v1", SUCCEEDED),), outcomes={"v1": ArtifactOutcome(manifest=None, uri="s3://m/v1/")})
    plan = step(state, observed)
    assert plan.status["lastRun"]["reason"] == "ArtifactMissing"
    assert plan.status.get("currentModel") is None
    assert plan.status["phase"] == "Degraded"

def test_a_checksum_mismatch_is_a_failed_run_and_the_old_model_stays():
    state, _ = started()
    state = then(state, finished_ok(state))
    state = dataclasses.replace(state, annotations={names.ANNOTATION_TRIGGER: "again"})
    state = then(state, step(state))
    observed = Observed(jobs=(job("v2", SUCCEEDED),), outcomes={"v2": ArtifactOutcome(
        manifest={**MANIFEST, "version": "v2"}, problems=("model.joblib: sha256 mismatch",))})
    plan = step(state, observed)
    assert plan.status["lastRun"]["reason"] == "ChecksumMismatch"
    assert plan.status["currentModel"]["version"] == "v1"
    assert plan.discard_partial == ()  # a finished (if broken) version is evidence: it stays in S3

def test_a_failed_job_records_the_trainers_reason_and_keeps_the_serving_model():
    state, _ = started()
    state = then(state, finished_ok(state))
    state = then(dataclasses.replace(state, annotations={names.ANNOTATION_TRIGGER: "b"}),
                 step(dataclasses.replace(state, annotations={names.ANNOTATION_TRIGGER: "b"})))
    error = {"reason": "DataError", "message": "s3://data/churn/incoming/b.csv is empty", "exitCode": 3}
    observed = Observed(jobs=(job("v2", FAILED, reason="PodFailurePolicy", message="exit code 3"),),
                        outcomes={"v2": ArtifactOutcome(manifest=None, error=error)})
    plan = step(state, observed)
    status = plan.status
    assert status["lastRun"]["phase"] == "Failed"
    assert status["lastRun"]["reason"] == "DataError"
    assert "is empty" in status["lastRun"]["message"]
    assert status["currentModel"]["version"] == "v1"
    assert status["phase"] == "Degraded"
    assert get_condition(status["conditions"], "Ready")["status"] == "True"
    assert get_condition(status["conditions"], "Trained")["status"] == "False"
    [event] = plan.events
    assert event.type == "Warning" and "v1 keeps serving" in event.message
    assert plan.discard_partial == ("v2",)  # what it uploaded before failing goes; nothing else does
    assert plan.prune_versions == ()

def test_without_an_error_file_the_jobs_own_reason_is_used():
    state, _ = started()
    observed = Observed(jobs=(job("v1", FAILED, reason="DeadlineExceeded", message="too long"),),
                        outcomes={"v1": ArtifactOutcome(manifest=None)})
    assert step(state, observed).status["lastRun"]["reason"] == "DeadlineExceeded"

def test_an_unreadable_store_postpones_the_verdict():
    state, _ = started()
    observed = Observed(jobs=(job("v1", SUCCEEDED),),
                        outcomes={"v1": ArtifactOutcome(manifest=None, storage_error="StorageUnreachable: x")})
    plan = step(state, observed)
    assert plan.status["activeRun"]["version"] == "v1"
    assert plan.status.get("lastRun") is None

def test_a_job_the_status_does_not_know_is_adopted_not_duplicated():
    # The operator created churn-v1 and died before writing status.
    state = policy(annotations=MANUAL)
    trigger = Trigger("manual", "annotation", "2026-11-24T09:59:30Z", MANUAL[names.ANNOTATION_TRIGGER])
    plan = step(state, Observed(jobs=(job("v1", ACTIVE, trigger=trigger),)))
    assert plan.create_job is None
    assert plan.status["activeRun"]["version"] == "v1"
    assert plan.status["runCounter"] == 1
    assert plan.status["lastManualTrigger"] == MANUAL[names.ANNOTATION_TRIGGER]

def test_an_adopted_job_repeats_the_run_started_event_word_for_word():
    # The crash came after the Job was created but before its Event was posted: adoption posts it; had it been
    # posted, the same words from the same status give the same Event name, and the server keeps one.
    state = policy(annotations=MANUAL)
    first = step(state)
    created = first.create_job["metadata"]
    trigger = Trigger.from_dict(first.status["activeRun"]["trigger"])
    adopted = step(state, Observed(jobs=(job("v1", ACTIVE, trigger=trigger),)))
    assert adopted.create_job is None
    assert [(e.reason, e.message) for e in adopted.events] == [(e.reason, e.message) for e in first.events]
    assert created["name"] in adopted.events[0].message

def test_a_job_that_finished_while_the_operator_was_down_is_recorded():
    state = policy(annotations=MANUAL)
    trigger = Trigger("manual", "annotation", "2026-11-24T09:59:30Z", MANUAL[names.ANNOTATION_TRIGGER])
    observed = Observed(jobs=(job("v1", SUCCEEDED, trigger=trigger),))
    assert step(state, observed).wants.outcomes == ("v1",)
    observed = dataclasses.replace(observed, outcomes={"v1": ArtifactOutcome(manifest=MANIFEST, uri="s3://m/v1/")})
    plan = step(state, observed)
    assert plan.create_job is None
    assert plan.status["currentModel"]["version"] == "v1"

def test_a_vanished_job_is_judged_by_what_it_left_in_s3():
    state, _ = started()
    ok = step(state, Observed(outcomes={"v1": ArtifactOutcome(manifest=MANIFEST, uri="s3://m/v1/")}))
    assert ok.status["currentModel"]["version"] == "v1"
    lost = step(state, Observed(outcomes={"v1": ArtifactOutcome(manifest=None)}))
    assert lost.status["lastRun"]["reason"] == "JobNotFound"


def test_a_run_that_starts_and_ends_is_reported_as_typed_outcomes():
    """What the metrics count comes from the decision itself, not from Event reasons."""
    state, plan = started()
    assert plan.outcomes == (RunStarted("manual"),)
    assert finished_ok(state).outcomes == (RunFinished("manual", "succeeded", 300.0),)
    failed = step(state, Observed(jobs=(job("v1", FAILED, reason="BackoffLimitExceeded"),),
                                  outcomes={"v1": ArtifactOutcome(manifest=None, uri="s3://m/v1/")}))
    assert failed.outcomes == (RunFinished("manual", "failed", 300.0),)
