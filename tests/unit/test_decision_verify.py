"""Ready means served: the pinned manifest digest, the servers' readiness, the scheduled re-verification."""

from __future__ import annotations

import dataclasses
import datetime as dt

from retrain_contract.api import names
from retrain_operator.core import serving
from retrain_operator.core.conditions import get_condition
from retrain_operator.core.decide import Plan, PolicyState, Settings, decide
from retrain_operator.core.observed import SUCCEEDED, ArtifactOutcome, Observed, ServingView
from retrain_operator.core.timeutil import to_rfc3339

from .decisions import MANIFEST, job, then
from .policies import policy, spec

NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
SETTINGS = Settings(default_image="trainer:test", serving_grace=120.0, verify_interval=600.0)
URI = "s3://models/retrain/ml/churn/v1/"
DIGEST = "a" * 64
REWRITTEN = "b" * 64
SERVING = {"serving": {"replicas": 1}}
CANARY = {**SERVING, "promotion": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]}}}


def step(state: PolicyState, observed: Observed | None = None, now: dt.datetime = NOW) -> Plan:
    return decide(state, observed or Observed(), now, SETTINGS)


def recorded(sections: dict | None = None) -> PolicyState:
    """v1 trained, verified and current, as the operator recorded it at NOW."""
    state = policy(spec(**(sections or SERVING)), status={"runCounter": 1, "activeRun": {
        "version": "v1", "jobName": "churn-v1", "trigger": {"type": "manual"}, "parentVersion": None,
        "startedAt": "2026-11-24T09:30:00Z"}})
    observed = Observed(jobs=(job("v1", SUCCEEDED),),
                        outcomes={"v1": ArtifactOutcome(manifest=MANIFEST, uri=URI, manifest_sha256=DIGEST)})
    return then(state, step(state, observed))


def stable(version: str = "v1", ready: int = 1, available: str = "True", since: str = "2026-11-24T10:00:00Z",
           progressing: str = "True") -> dict:
    return {"metadata": {"name": "churn-model-stable", "generation": 1, "creationTimestamp": "2026-11-24T09:00:00Z"},
            "spec": {"replicas": 1, "template": {"metadata": {"labels": {names.LABEL_MODEL_VERSION: version}}}},
            "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": ready,
                       "conditions": [
                           {"type": "Available", "status": available, "lastTransitionTime": since,
                            "reason": "MinimumReplicasAvailable" if available == "True" else
                            "MinimumReplicasUnavailable",
                            "message": "Deployment has minimum availability." if available == "True" else
                            "Deployment does not have minimum availability."},
                           {"type": "Progressing", "status": progressing, "lastTransitionTime": since,
                            "reason": "NewReplicaSetAvailable" if progressing == "True" else
                            "ProgressDeadlineExceeded",
                            "message": 'ReplicaSet "churn-model-stable-1" has timed out progressing.'}]}}


def down(since: str = "2026-11-24T10:00:00Z") -> Observed:
    return Observed(serving=ServingView(stable=stable(ready=0, available="False", since=since)))


def ready(status: dict) -> dict:
    return get_condition(status["conditions"], "Ready")


def server_args(plan: Plan, role: str = serving.STABLE) -> list[str]:
    wanted = {d["metadata"]["name"]: d for d in plan.serving.deployments}[serving.deployment_name("churn", role)]
    return wanted["spec"]["template"]["spec"]["containers"][0]["args"]


def verified(outcome: ArtifactOutcome, now: dt.datetime, state: PolicyState, base: Observed | None = None) -> Plan:
    """The shell answering the decision's request to re-read the current version."""
    base = base or Observed()
    asked = step(state, base, now)
    assert asked.wants.verify_uri == URI, asked.wants
    return step(state, dataclasses.replace(base, current_artifacts=outcome), now)


# -- the pinned digest ---------------------------------------------------------------------------

def test_the_manifest_digest_is_pinned_in_status_and_passed_to_the_servers():
    state = recorded()
    current = state.status["currentModel"]
    assert current["manifestSha256"] == DIGEST and current["verifiedAt"] == to_rfc3339(NOW)
    args = server_args(step(state))
    assert args[args.index("--manifest-sha256") + 1] == DIGEST


def test_a_canary_gets_the_digest_of_its_own_version():
    state = recorded(CANARY)
    state = dataclasses.replace(state, status={**state.status, "runCounter": 2, "activeRun": {
        "version": "v2", "jobName": "churn-v2", "trigger": {"type": "manual"}, "parentVersion": "v1",
        "startedAt": "2026-11-24T09:30:00Z"}})
    serving_v1 = Observed(serving=ServingView(stable=stable()))
    first = step(state, serving_v1)  # the stable Deployment exists: the status learns which version it serves
    state = then(state, first)
    v2 = ArtifactOutcome(manifest={**MANIFEST, "version": "v2", "evaluation": {"comparison": {
        "rows": 200, "challenger": {"f1Macro": 0.9}, "champion": {"f1Macro": 0.88}}}},
        uri="s3://models/retrain/ml/churn/v2/", manifest_sha256=REWRITTEN)
    state = then(state, step(state, dataclasses.replace(serving_v1, jobs=(job("v2", SUCCEEDED),),
                                                          outcomes={"v2": v2})))
    assert state.status["rollout"]["manifestSha256"] == REWRITTEN
    plan = step(state, serving_v1)
    canary_args, stable_args = server_args(plan, serving.CANARY), server_args(plan)
    assert canary_args[canary_args.index("--manifest-sha256") + 1] == REWRITTEN
    assert stable_args[stable_args.index("--manifest-sha256") + 1] == DIGEST


# -- Ready means serving -------------------------------------------------------------------------

def test_ready_turns_false_when_the_current_version_has_no_ready_server_past_the_grace_period():
    state = recorded()
    assert ready(step(state, Observed(serving=ServingView(stable=stable()))).status)["status"] == "True"
    within = step(state, down(), NOW + dt.timedelta(seconds=60))
    assert ready(within.status)["status"] == "True" and within.status["phase"] == "Ready"
    assert 59 <= within.requeue_after <= 61  # looks again when the grace period ends
    plan = step(state, down(), NOW + dt.timedelta(seconds=121))
    condition = ready(plan.status)
    assert (condition["status"], condition["reason"]) == ("False", "ModelUnavailable")
    assert "no stable model server of v1 has been Ready since 2026-11-24T10:00:00Z" in condition["message"]
    assert "does not have minimum availability" in condition["message"]
    assert plan.status["phase"] == "Degraded"
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "ModelUnavailable")]
    # The serving target stays: the same version, the same pinned digest.
    assert DIGEST in server_args(plan)
    again = step(then(state, plan), down(), NOW + dt.timedelta(seconds=150))
    assert ready(again.status)["reason"] == "ModelUnavailable" and again.events == ()  # one Event per transition
    back = step(then(state, again), Observed(serving=ServingView(stable=stable(since="2026-11-24T10:03:00Z"))),
                NOW + dt.timedelta(seconds=200))
    assert ready(back.status)["status"] == "True" and back.status["phase"] == "Ready"
    assert [(e.type, e.reason) for e in back.events] == [("Normal", "ModelServed")]


def test_a_server_of_another_version_or_without_serving_says_nothing_about_the_current_one():
    state = recorded()
    other = Observed(serving=ServingView(stable=stable(version="v0", ready=0, available="False")))
    assert ready(step(state, other, NOW + dt.timedelta(hours=1)).status)["status"] == "True"
    training_only = recorded({})
    assert ready(step(training_only, down(), NOW + dt.timedelta(hours=1)).status)["status"] == "True"


def test_unavailable_since_reads_the_deployment_controllers_conditions():
    assert serving.unavailable_since(stable(), "v1") is None
    assert serving.unavailable_since(stable(ready=0, available="False"), "v2") is None
    since, detail = serving.unavailable_since(stable(ready=0, available="False", progressing="False"), "v1")
    assert to_rfc3339(since) == "2026-11-24T10:00:00Z"
    assert "minimum availability" in detail and "timed out progressing" in detail
    fresh = stable(ready=0)
    del fresh["status"]["conditions"]
    assert to_rfc3339(serving.unavailable_since(fresh, "v1")[0]) == "2026-11-24T09:00:00Z"
    # A new version rolled into a Deployment that was already short gets its own grace period...
    rolled = stable(ready=0, available="False")
    rolled["status"]["conditions"][1].update(reason="ReplicaSetUpdated", lastUpdateTime="2026-11-24T10:30:00Z")
    assert to_rfc3339(serving.unavailable_since(rolled, "v1")[0]) == "2026-11-24T10:30:00Z"
    # ...but a deadline exceeded is no progress.
    stuck = stable(ready=0, available="False", progressing="False")
    stuck["status"]["conditions"][1]["lastUpdateTime"] = "2026-11-24T10:30:00Z"
    assert to_rfc3339(serving.unavailable_since(stuck, "v1")[0]) == "2026-11-24T10:00:00Z"


# -- the scheduled re-verification ---------------------------------------------------------------

def test_the_current_version_is_re_read_on_schedule_and_a_consistent_rewrite_is_caught():
    state = recorded()
    early = step(state, now=NOW + dt.timedelta(minutes=5))
    assert not early.wants and 299 <= early.requeue_after <= 301  # due at verifiedAt + 10 min
    later = NOW + dt.timedelta(minutes=11)
    rewritten = ArtifactOutcome(manifest={**MANIFEST, "metrics": {"accuracy": 0.99}}, uri=URI,
                                manifest_sha256=REWRITTEN)  # valid checksums, another model
    plan = verified(rewritten, later, state)
    current = plan.status["currentModel"]
    assert current["version"] == "v1" and current["manifestSha256"] == DIGEST  # the pin never follows S3
    assert current["verifiedAt"] == to_rfc3339(later)
    assert f"not the pinned {DIGEST}" in current["artifactProblem"]
    condition = ready(plan.status)
    assert (condition["status"], condition["reason"]) == ("False", "ArtifactsChanged")
    assert plan.status["phase"] == "Degraded"
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "ArtifactsChanged")]
    assert DIGEST in server_args(plan)  # the serving model is not replaced
    # The next check finds the same: no second Event; Ready stays False in between.
    state = then(state, plan)
    between = step(state, now=later + dt.timedelta(minutes=5))
    assert not between.wants and ready(between.status)["reason"] == "ArtifactsChanged"
    again = verified(rewritten, later + dt.timedelta(minutes=11), state)
    assert again.events == () and ready(again.status)["reason"] == "ArtifactsChanged"
    # Put back as recorded: Ready again.
    restored = verified(ArtifactOutcome(manifest=MANIFEST, uri=URI, manifest_sha256=DIGEST),
                        later + dt.timedelta(minutes=22), then(state, again))
    assert ready(restored.status)["status"] == "True" and restored.status["currentModel"].get("artifactProblem") is None
    assert [(e.type, e.reason) for e in restored.events] == [("Normal", "ArtifactsVerified")]


def test_a_file_that_fails_its_checksum_or_a_missing_manifest_is_a_change():
    state, later = recorded(), NOW + dt.timedelta(minutes=11)
    swapped = verified(ArtifactOutcome(manifest=MANIFEST, uri=URI, manifest_sha256=DIGEST,
                                       problems=("model.joblib: sha256 does not match the manifest",)), later, state)
    assert "model.joblib: sha256 does not match" in ready(swapped.status)["message"]
    gone = verified(ArtifactOutcome(manifest=None, uri=URI), later, state)
    assert "manifest.json is missing" in ready(gone.status)["message"]
    assert ready(gone.status)["reason"] == "ArtifactsChanged"


def test_an_unreadable_store_is_not_a_change_and_is_asked_again():
    state, later = recorded(), NOW + dt.timedelta(minutes=11)
    plan = verified(ArtifactOutcome(manifest=None, uri=URI, storage_error="StorageUnreachable: timeout"), later,
                    state)
    assert ready(plan.status)["status"] == "True" and plan.events == ()
    assert plan.status["currentModel"]["verifiedAt"] == to_rfc3339(NOW)
    assert step(then(state, plan), now=later).wants.verify_uri == URI


def test_a_model_recorded_before_digests_were_pinned_is_pinned_at_its_first_verification():
    state = recorded()
    legacy = {k: v for k, v in state.status["currentModel"].items() if k not in ("manifestSha256", "verifiedAt")}
    state = dataclasses.replace(state, status={**state.status, "currentModel": legacy})
    assert "--manifest-sha256" not in server_args(step(state, dataclasses.replace(
        Observed(), current_artifacts=ArtifactOutcome(manifest=None, uri=URI, storage_error="down"))))
    plan = verified(ArtifactOutcome(manifest=MANIFEST, uri=URI, manifest_sha256=DIGEST), NOW, state)
    assert plan.status["currentModel"]["manifestSha256"] == DIGEST and ready(plan.status)["status"] == "True"
    assert DIGEST in server_args(step(then(state, plan)))  # the next reconcile passes it to the servers


def test_a_due_verification_rides_along_with_other_facts_instead_of_costing_a_round():
    state = recorded()
    state = dataclasses.replace(state, status={**state.status, "runCounter": 2, "activeRun": {
        "version": "v2", "jobName": "churn-v2", "trigger": {"type": "manual"}, "parentVersion": "v1",
        "startedAt": "2026-11-24T09:30:00Z"}})
    later = NOW + dt.timedelta(minutes=11)
    observed = Observed(jobs=(job("v2", SUCCEEDED),))
    wants = step(state, observed, later).wants
    assert wants.outcomes == ("v2",) and wants.verify_uri == URI
    v2 = ArtifactOutcome(manifest={**MANIFEST, "version": "v2"}, uri="s3://models/retrain/ml/churn/v2/",
                         manifest_sha256=REWRITTEN, problems=("model.joblib: missing",))
    plan = step(state, dataclasses.replace(observed, outcomes={"v2": v2}, current_artifacts=ArtifactOutcome(
        manifest=MANIFEST, uri=URI, manifest_sha256=DIGEST)), later)
    assert not plan.wants and plan.status["currentModel"]["verifiedAt"] == to_rfc3339(later)
    assert plan.status["lastRun"]["version"] == "v2"
