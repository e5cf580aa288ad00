"""The decision core, driven the way the shell drives it: decide, gather what it wants, decide again."""

from __future__ import annotations

import dataclasses
import datetime as dt

from retrain_contract.api import names
from retrain_operator.core.conditions import get_condition
from retrain_operator.core.decide import Plan, PolicyState, Settings, decide
from retrain_operator.core.observed import ACTIVE, FAILED, SUCCEEDED, ArtifactOutcome, JobView, Observed
from retrain_operator.core.runs import Trigger

from .policies import policy, spec

# The scheduled re-verification of the current model is off here (it would ask S3 whenever a test moves the
# clock on); test_serving_truth.py drives it.
SETTINGS = Settings(default_image="trainer:test", verify_interval=0)
NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
MANUAL = {names.ANNOTATION_TRIGGER: "2026-11-24T09:59:00Z"}
MANIFEST = {"version": "v1", "createdAt": "2026-11-24T10:05:00Z", "parentVersion": None,
            "metrics": {"accuracy": 0.91, "f1Macro": 0.88}}


def job(version: str, state: str, trigger: Trigger | None = None, reason: str = "", message: str = "") -> JobView:
    return JobView(name=f"churn-{version}", version=version, index=int(version[1:]), state=state,
                   trigger=trigger, parent_version=None, started_at="2026-11-24T10:00:00Z",
                   finished_at=None if state == ACTIVE else "2026-11-24T10:05:00Z", reason=reason, message=message)


def step(state: PolicyState, observed: Observed | None = None, now: dt.datetime = NOW) -> Plan:
    return decide(state, observed or Observed(), now, SETTINGS)


def then(state: PolicyState, plan: Plan) -> PolicyState:
    """The policy as the next reconcile sees it, after the plan's status was written."""
    return dataclasses.replace(state, status=plan.status)


def started(annotations: dict[str, str] | None = None, **spec_sections) -> tuple[PolicyState, Plan]:
    state = policy(spec(**spec_sections), annotations=annotations or MANUAL)
    plan = step(state)
    assert plan.create_job is not None
    return then(state, plan), plan


def finished_ok(state: PolicyState, version: str = "v1", manifest: dict | None = None) -> Plan:
    observed = Observed(jobs=(job(version, SUCCEEDED),))
    assert step(state, observed).wants.outcomes == (version,)
    outcome = ArtifactOutcome(manifest=manifest or {**MANIFEST, "version": version},
                              uri=f"s3://models/retrain/ml/churn/{version}/")
    return step(state, dataclasses.replace(observed, outcomes={version: outcome}))


# -- manual trigger and the run's life --------------------------------------------------------

def test_a_manual_trigger_starts_one_run():
    state = policy(annotations=MANUAL)
    plan = step(state)
    assert plan.create_job["metadata"]["name"] == "churn-v1"
    active = plan.status["activeRun"]
    assert active["version"] == "v1" and active["trigger"]["type"] == "manual"
    assert plan.status["runCounter"] == 1
    assert plan.status["lastManualTrigger"] == MANUAL[names.ANNOTATION_TRIGGER]
    assert plan.status["phase"] == "Training"
    assert get_condition(plan.status["conditions"], "Training")["status"] == "True"
    assert [e.reason for e in plan.events] == ["RunStarted"]


def test_the_same_annotation_value_never_starts_a_second_run():
    state, _ = started()
    after = then(state, finished_ok(state))
    plan = step(after)
    assert plan.create_job is None
    assert plan.status["phase"] == "Ready"


def test_a_running_job_is_followed_not_duplicated():
    state, _ = started()
    plan = step(state, Observed(jobs=(job("v1", ACTIVE),)))
    assert plan.create_job is None and plan.status["activeRun"]["version"] == "v1"
    assert plan.events == ()


def test_a_succeeded_run_with_a_verified_manifest_becomes_current():
    state, _ = started()
    plan = finished_ok(state)
    status = plan.status
    assert status["currentModel"]["version"] == "v1"
    assert status["currentModel"]["uri"] == "s3://models/retrain/ml/churn/v1/"
    assert status["currentModel"]["metrics"] == MANIFEST["metrics"]
    assert status["activeRun"] is None
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


# -- crash recovery ----------------------------------------------------------------------------

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


# -- schedule and guards -------------------------------------------------------------------

NIGHTLY = {"schedule": {"cron": "0 3 * * *", "timeZone": "UTC"}}


def test_a_schedule_waits_for_its_tick_then_runs_once():
    state = policy(spec(triggers=NIGHTLY), annotations={})
    before = step(state, now=dt.datetime(2026, 11, 21, 2, 59, 59, tzinfo=dt.UTC))
    assert before.create_job is None
    assert before.status["nextRunAt"] == "2026-11-21T03:00:00Z"
    assert 0.9 <= before.requeue_after <= 1.1
    at_tick = step(state, now=dt.datetime(2026, 11, 21, 3, 0, 1, tzinfo=dt.UTC))
    assert at_tick.create_job is not None
    assert at_tick.status["activeRun"]["trigger"]["type"] == "schedule"
    assert at_tick.status["lastScheduleTime"] == "2026-11-21T03:00:00Z"
    assert at_tick.status["nextRunAt"] == "2026-11-22T03:00:00Z"


def test_cooldown_defers_a_scheduled_run_but_not_a_manual_one():
    state, _ = started(triggers={**NIGHTLY, "cooldown": "6h"})
    state = then(state, finished_ok(state))  # finished 10:05 on the 24th (job finished_at)
    later = dt.datetime(2026, 11, 24, 16, 3, tzinfo=dt.UTC)  # 2 min before the cooldown (10:05 + 6h) ends
    state = dataclasses.replace(state, status={**state.status, "lastScheduleTime": "2026-11-23T03:00:00Z"})
    deferred = step(state, now=later)
    assert deferred.create_job is None
    assert get_condition(deferred.status["conditions"], "Training")["reason"] == "CooldownActive"
    assert 119 <= deferred.requeue_after <= 121
    assert step(state, now=later + dt.timedelta(minutes=3)).create_job is not None
    manual = step(dataclasses.replace(state, annotations={names.ANNOTATION_TRIGGER: "now"}), now=later)
    assert manual.create_job is not None


def test_min_new_samples_asks_for_a_count_and_skips_small_batches():
    state, _ = started(triggers={"minNewSamples": 1000})
    state = then(state, finished_ok(state))
    state = dataclasses.replace(state, annotations={names.ANNOTATION_TRIGGER: "second"})
    assert step(state).wants.new_samples is True
    skipped = step(state, Observed(new_samples=999))
    assert skipped.create_job is None
    assert skipped.status["lastManualTrigger"] == "second"
    assert [e.reason for e in skipped.events] == ["RunSkipped"]
    assert get_condition(skipped.status["conditions"], "Training")["reason"] == "NotEnoughNewSamples"
    assert step(state, Observed(new_samples=1000)).create_job is not None


def test_the_first_run_does_not_wait_for_new_samples():
    state = policy(spec(triggers={"minNewSamples": 10**6}), annotations=MANUAL)
    assert step(state).create_job is not None


# -- invalid input and dependencies ----------------------------------------------------------

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


def test_a_missing_secret_blocks_new_runs_with_a_clear_reason():
    state = policy(annotations=MANUAL)
    plan = step(state, Observed(dependency_problem=("SecretNotFound", "Secret 's3-creds' does not exist")))
    assert plan.create_job is None
    assert plan.status["phase"] == "Blocked"
    assert get_condition(plan.status["conditions"], "Ready")["reason"] == "SecretNotFound"
    assert "lastManualTrigger" not in plan.status  # the trigger waits for the Secret, it is not lost


def test_a_suspended_policy_starts_nothing():
    state = policy(spec(suspend=True), annotations=MANUAL)
    plan = step(state)
    assert plan.create_job is None and plan.status["phase"] == "Suspended"


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


def test_generation_is_observed():
    plan = step(policy(generation=7))
    assert plan.status["observedGeneration"] == 7
    assert all(c["observedGeneration"] == 7 for c in plan.status["conditions"])


# -- quality gates ----------------------------------------------------------------------------

def _evaluation(challenger: float, champion: float = 0.88) -> dict:
    return {"heldOut": {"f1Macro": challenger},
            "comparison": {"rows": 400, "challenger": {"f1Macro": challenger}, "champion": {"f1Macro": champion}},
            "olderData": {"rows": 400, "challenger": {"f1Macro": champion}, "championHeldOut": {"f1Macro": champion}}}


def serving_v1(**spec_sections) -> PolicyState:
    current = {"version": "v1", "uri": "s3://models/retrain/ml/churn/v1/"}
    return policy(spec(**spec_sections), status={
        "runCounter": 2, "currentModel": current, "history": [current],
        "lastRun": {"version": "v1", "phase": "Succeeded", "finishedAt": "2026-11-24T09:00:00Z"},
        "activeRun": {"version": "v2", "jobName": "churn-v2", "trigger": {"type": "schedule"},
                      "parentVersion": "v1", "startedAt": "2026-11-24T09:30:00Z"}})


def test_a_challenger_that_passes_the_gates_becomes_current():
    plan = finished_ok(serving_v1(), "v2", {**MANIFEST, "version": "v2", "evaluation": _evaluation(0.90)})
    assert plan.status["currentModel"]["version"] == "v2"
    assert plan.status["lastRun"]["phase"] == "Succeeded"
    assert {g["result"] for g in plan.status["lastRun"]["gates"]} == {"Passed"}


def test_a_worse_challenger_is_rejected_and_the_champion_keeps_serving():
    plan = finished_ok(serving_v1(), "v2", {**MANIFEST, "version": "v2", "evaluation": _evaluation(0.80)})
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
        plan = finished_ok(state, version, {**MANIFEST, "version": version, "evaluation": _evaluation(0.5)})
        state = then(state, plan)
    assert [h["version"] for h in state.status["history"]] == ["v3", "v1"]
    assert plan.prune_versions == ("v2",)
    assert state.status["currentModel"]["version"] == "v1"
