"""Writes the API server refuses: a typed failure, the whole status still written, a condition, backoff.

Driven the way reconcile.py drives it: decide; on a refused Job record the failure in the status
the decision started from and decide again; on refused serving objects record it in the decided
status; then summarise once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from retrain_contract.api import names
from retrain_operator.core import apply_errors
from retrain_operator.core.apply_errors import ApplyFailure
from retrain_operator.core.conditions import STALLED, get_condition
from retrain_operator.core.decide import Plan, PolicyState
from retrain_operator.core.observed import SUCCEEDED, ArtifactOutcome, Observed
from retrain_operator.core.timeutil import to_rfc3339

from .decisions import MANIFEST, MANUAL, NOW, job, step, then
from .policies import policy, spec

INVALID = json.dumps({
    "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Invalid", "code": 422,
    "message": 'Job.batch "churn-v1" is invalid: spec.template.spec.nodeSelector: Invalid value: "a b": '
               "a valid label must be an empty string or consist of alphanumeric characters"}).encode()
FORBIDDEN = json.dumps({"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403,
                        "message": 'services is forbidden: User "system:serviceaccount:retrain-system:retrain-operator"'
                                   ' cannot create resource "services" in API group "" in the namespace "ml"'})


def job_refused(name: str = "churn-v1") -> ApplyFailure:
    return apply_errors.from_api_error(apply_errors.JOB, "Job", name, 422, INVALID, "Unprocessable Entity")


def service_refused() -> ApplyFailure:
    return apply_errors.from_api_error(apply_errors.SERVING, "Service", "churn-model-stable", 403, FORBIDDEN,
                                       "Forbidden")


def refuse_job(state: PolicyState, failure: ApplyFailure, now: dt.datetime = NOW) -> dict:
    """What reconcile writes when the planned Job was refused."""
    refused = apply_errors.record(state.status, failure, now, state.generation)
    plan = step(dataclasses.replace(state, status=refused), now=now)
    assert plan.create_job is None
    return apply_errors.summarise(plan.status, now, state.generation)


# -- the typed failure ----------------------------------------------------------------------------

def test_the_servers_status_message_and_reason_are_kept():
    failure = job_refused()
    assert (failure.kind, failure.name, failure.code, failure.api_reason) == ("Job", "churn-v1", 422, "Invalid")
    assert failure.reason == "JobRejected"
    assert failure.message.startswith('Job.batch "churn-v1" is invalid: spec.template.spec.nodeSelector')
    served = service_refused()
    assert served.reason == "ServingObjectRejected" and served.code == 403 and served.api_reason == "Forbidden"
    assert "cannot create resource" in served.message


def test_a_body_that_is_no_status_still_gives_a_message():
    assert apply_errors.from_api_error("job", "Job", "j", 500, b"etcdserver: request timed out").message == \
        "etcdserver: request timed out"
    assert apply_errors.from_api_error("job", "Job", "j", 503, None, "Service Unavailable").message == \
        "Service Unavailable"
    assert apply_errors.from_api_error("job", "Job", "j", 413, "").message == "HTTP 413"
    long = apply_errors.from_api_error("job", "Job", "j", 422, json.dumps({"message": "x" * 10000}))
    assert len(long.message) == apply_errors.MAX_MESSAGE


# -- backoff ----------------------------------------------------------------------------------------

def test_the_backoff_doubles_up_to_a_cap():
    assert [apply_errors.backoff(n) for n in range(1, 9)] == [15, 30, 60, 120, 240, 300, 300, 300]


def test_each_failure_in_a_row_waits_longer_and_a_new_generation_starts_over():
    status: dict = {}
    now = NOW
    waits = []
    for _ in range(4):
        status = apply_errors.record(status, job_refused(), now, 3)
        entry = status["applyErrors"]["job"]
        waits.append((dt.datetime.fromisoformat(entry["nextAttemptAt"]) - now).total_seconds())
        assert apply_errors.waiting(status, "job", now, 3) == entry
        now += dt.timedelta(seconds=waits[-1])
        assert apply_errors.waiting(status, "job", now, 3) is None  # due now
    assert waits == [15, 30, 60, 120]
    assert entry["attempts"] == 4 and entry["firstFailedAt"] == to_rfc3339(NOW)
    assert apply_errors.waiting(status, "job", NOW, 4) is None  # the spec changed: try at once
    again = apply_errors.record(status, job_refused(), now, 4)["applyErrors"]["job"]
    assert again["attempts"] == 1 and again["firstFailedAt"] == to_rfc3339(now)
    assert apply_errors.current(status["applyErrors"], 4) is None
    assert apply_errors.current(status["applyErrors"], 3) == status["applyErrors"]


def test_a_record_has_no_nulls_so_the_stored_status_equals_the_decided_one():
    failure = apply_errors.not_owned("serving", "Service", "churn-model", "exists but is not owned")
    entry = apply_errors.record({}, failure, NOW, 1)["applyErrors"]["serving"]
    assert None not in entry.values() and "code" not in entry and entry["reason"] == "ServiceNotOwned"


# -- a refused Job ---------------------------------------------------------------------------------

def test_a_refused_job_is_no_started_run_and_the_trigger_waits_for_the_backoff():
    state = policy(annotations=MANUAL)
    assert step(state).create_job["metadata"]["name"] == "churn-v1"
    status = refuse_job(state, job_refused())
    assert not status.get("activeRun") and status.get("runCounter", 0) == 0
    assert status.get("lastManualTrigger") is None  # not consumed: the run is still wanted
    stalled = get_condition(status["conditions"], STALLED)
    assert stalled["status"] == "True" and stalled["reason"] == "JobRejected"
    assert "Job churn-v1 refused (422 Invalid): Job.batch \"churn-v1\" is invalid" in stalled["message"]
    assert f"next at {to_rfc3339(NOW + dt.timedelta(seconds=15))}" in stalled["message"]
    training = get_condition(status["conditions"], "Training")
    assert training["status"] == "False" and training["reason"] == "JobRejected"
    assert "Job churn-v1 refused" in status["message"]
    entry = status["applyErrors"]["job"]
    assert entry["kind"] == "Job" and entry["code"] == 422 and entry["apiReason"] == "Invalid"
    assert entry["nextAttemptAt"] == to_rfc3339(NOW + dt.timedelta(seconds=15))

    # Within the backoff nothing is tried and nothing changes: no status write, no loop.
    later = dataclasses.replace(state, status=status)
    soon = NOW + dt.timedelta(seconds=10)
    plan = step(later, now=soon)
    assert plan.create_job is None and plan.events == ()
    assert apply_errors.summarise(plan.status, soon, state.generation) == status
    assert plan.requeue_after <= 5

    # Once it is due, the same Job is planned again; accepted, the record goes and Stalled turns False.
    due = NOW + dt.timedelta(seconds=15)
    plan = step(later, now=due)
    assert plan.create_job["metadata"]["name"] == "churn-v1"
    accepted = apply_errors.summarise(apply_errors.clear(plan.status, "job"), due, state.generation)
    assert accepted.get("applyErrors") is None and accepted["activeRun"]["version"] == "v1"
    assert get_condition(accepted["conditions"], STALLED)["status"] == "False"
    assert get_condition(accepted["conditions"], STALLED)["reason"] == "Accepted"


def test_a_changed_spec_retries_a_refused_job_at_once():
    state = policy(annotations=MANUAL)
    status = refuse_job(state, job_refused())
    edited = dataclasses.replace(state, status=status, generation=2)
    plan = step(edited, now=NOW + dt.timedelta(seconds=1))
    assert plan.create_job is not None and plan.status.get("applyErrors") is None


def test_a_finished_run_is_recorded_even_when_the_next_jobs_creation_is_refused():
    running = policy(status={"runCounter": 1, "activeRun": {
        "version": "v1", "jobName": "churn-v1", "trigger": {"type": "manual", "key": "first"},
        "parentVersion": None, "startedAt": "2026-11-24T09:00:00Z"}, "lastManualTrigger": "first"},
        annotations={names.ANNOTATION_TRIGGER: "second"})
    observed = Observed(jobs=(job("v1", SUCCEEDED),), outcomes={"v1": ArtifactOutcome(
        manifest=MANIFEST, uri="s3://models/retrain/ml/churn/v1/")})
    plan = step(running, observed)
    assert plan.status["lastRun"]["phase"] == "Succeeded" and plan.create_job["metadata"]["name"] == "churn-v2"
    refused = apply_errors.record(running.status, job_refused("churn-v2"), NOW, running.generation)
    again = step(dataclasses.replace(running, status=refused), observed)
    assert again.create_job is None
    status = apply_errors.summarise(again.status, NOW, running.generation)
    assert status["lastRun"]["version"] == "v1" and status["lastRun"]["phase"] == "Succeeded"
    assert status["currentModel"]["version"] == "v1" and status["phase"] == "Ready"
    assert not status.get("activeRun") and status["runCounter"] == 1
    assert [e.reason for e in again.events] == ["RunSucceeded"]
    assert get_condition(status["conditions"], STALLED)["reason"] == "JobRejected"


def test_a_drift_check_job_waits_for_the_backoff_too():
    state = policy(spec(triggers={"drift": {"data": "s3://data/recent/", "interval": "1h"}}),
                   status={"currentModel": {"version": "v1", "uri": "s3://models/retrain/ml/churn/v1/"}})
    first = step(state)
    assert first.create_job["metadata"]["name"] == "churn-d1"
    status = refuse_job(state, job_refused("churn-d1"))
    assert not status.get("activeDriftCheck") and status.get("driftCounter", 0) == 0
    assert step(dataclasses.replace(state, status=status), now=NOW + dt.timedelta(seconds=5)).create_job is None


def test_an_old_refusal_that_nothing_needs_any_more_is_dropped_after_its_backoff():
    state = policy(annotations=MANUAL)
    status = refuse_job(state, job_refused())
    quiet = dataclasses.replace(state, status=status, annotations={names.ANNOTATION_TRIGGER: ""})
    plan = step(quiet, now=NOW + dt.timedelta(seconds=20))
    assert plan.create_job is None and plan.status.get("applyErrors") is None
    after = apply_errors.summarise(plan.status, NOW + dt.timedelta(seconds=20), state.generation)
    assert get_condition(after["conditions"], STALLED)["status"] == "False"


# -- refused serving objects -----------------------------------------------------------------------

SERVED = {"serving": {"replicas": 2}}


def trained_with_serving() -> tuple[PolicyState, Plan]:
    state = policy(spec(**SERVED), status={"runCounter": 1, "activeRun": {
        "version": "v1", "jobName": "churn-v1", "trigger": {"type": "manual"}, "parentVersion": None,
        "startedAt": "2026-11-24T09:00:00Z"}})
    observed = Observed(jobs=(job("v1", SUCCEEDED),), outcomes={"v1": ArtifactOutcome(
        manifest=MANIFEST, uri="s3://models/retrain/ml/churn/v1/")})
    plan = step(state, observed)
    assert plan.serving is not None
    return state, plan


def test_a_finished_training_is_recorded_when_its_serving_objects_are_refused():
    state, plan = trained_with_serving()
    status = apply_errors.summarise(apply_errors.record(plan.status, service_refused(), NOW, state.generation),
                                    NOW, state.generation)
    assert status["lastRun"]["phase"] == "Succeeded" and status["currentModel"]["version"] == "v1"
    assert status["serving"] == plan.status["serving"]  # what should serve is unchanged
    stalled = get_condition(status["conditions"], STALLED)
    assert stalled["status"] == "True" and stalled["reason"] == "ServingObjectRejected"
    assert 'cannot create resource "services"' in stalled["message"]
    assert status["message"].startswith("v1 is current; Service churn-model-stable refused (403 Forbidden)")
    assert status["applyErrors"]["serving"]["nextAttemptAt"] == to_rfc3339(NOW + dt.timedelta(seconds=15))
    assert apply_errors.seconds_to_next_attempt(status, NOW + dt.timedelta(seconds=5)) == 10
    # The Event's text is the condition's.
    assert apply_errors.describe(status["applyErrors"]["serving"]) == stalled["message"]

    # Next reconcile, within the backoff: the plan is the same (stable keeps its replicas), nothing changes.
    soon = NOW + dt.timedelta(seconds=5)
    again = step(then(state, Plan(status=status)), now=soon)
    assert apply_errors.waiting(again.status, "serving", soon, state.generation) is not None
    stable = {d["metadata"]["name"]: d for d in again.serving.deployments}["churn-model-stable"]
    assert stable["spec"]["replicas"] == 2
    assert apply_errors.summarise(again.status, soon, state.generation) == status


def test_job_and_serving_refusals_are_kept_apart_and_both_shown():
    status = apply_errors.record({}, service_refused(), NOW, 1)
    status = apply_errors.record(status, job_refused(), NOW, 1)
    status = apply_errors.summarise({**status, "message": "v1 is current"}, NOW, 1)
    stalled = get_condition(status["conditions"], STALLED)
    assert stalled["reason"] == "JobRejected"  # the job first, then serving
    assert "Job churn-v1 refused" in stalled["message"] and "Service churn-model-stable refused" in stalled["message"]
    cleared = apply_errors.clear(status, "job")
    assert set(cleared["applyErrors"]) == {"serving"}
    assert apply_errors.clear(cleared, "serving")["applyErrors"] is None


def test_a_policy_that_never_had_a_refusal_gets_no_stalled_condition():
    _, plan = trained_with_serving()
    assert apply_errors.summarise(plan.status, NOW, 1) == plan.status
    assert get_condition(plan.status["conditions"], STALLED) is None
