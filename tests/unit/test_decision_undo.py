"""Undo and retry: an earlier version serves again through the canary (or at once), only once S3 still
holds what was recorded for it; a request that cannot be met is refused once, said in status and an Event."""

from __future__ import annotations

import dataclasses

from retrain_contract.api import names
from retrain_operator.core import rollout
from retrain_operator.core.decide import PolicyState
from retrain_operator.core.observed import ArtifactOutcome, Observed
from retrain_operator.core.undo import UndoRequest, parse

from .decisions import NOW, step, then
from .policies import policy, spec

SERVING = {"serving": {"replicas": 2}}
CANARY = {**SERVING, "promotion": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]}}}


def uri(version: str) -> str:
    return f"s3://models/retrain/ml/churn/{version}/"


def record(version: str, **extra) -> dict:
    return {"version": version, "uri": uri(version), "manifestSha256": version[1:] * 64, **extra}


def serving_v3(undo: str | None, sections: dict | None = None) -> PolicyState:
    """v3 current after v2 and v1 served; v4 rejected by its gates; v5 aborted as a canary."""
    current = record("v3", rolledOutAt="2026-11-24T08:00:00Z", passedGates=True)
    history = [record("v5", rejected="Aborted", passedGates=True), record("v4", rejected="GateFailed"), current,
               record("v2", rolledOutAt="2026-11-23T08:00:00Z"), record("v1", rolledOutAt="2026-11-22T08:00:00Z")]
    return policy(spec(**(sections or CANARY)), annotations={names.ANNOTATION_UNDO: undo} if undo else {}, status={
        "runCounter": 5, "currentModel": current, "history": history,
        "serving": {"stableVersion": "v3", "servedVersion": "v3", "replicas": 2, "router": "replicas"}})


def verified(version: str, digest: str | None = None) -> Observed:
    return Observed(current_artifacts=ArtifactOutcome(manifest={"version": version}, uri=uri(version),
                                                      manifest_sha256=digest or version[1:] * 64))


def test_requests_parse_with_their_options():
    assert parse("previous") == UndoRequest("previous", "previous")
    assert parse("v2;immediate;at=2026-11-24T10:00:00Z") == UndoRequest(
        "v2;immediate;at=2026-11-24T10:00:00Z", "v2", immediate=True)
    assert parse("v5;retry") == UndoRequest("v5;retry", "v5", retry=True)
    assert parse("") is None and parse("  ") is None
    assert "unknown option 'fast'" in str(parse("v2;fast"))
    assert "no version named" in str(parse(";immediate"))


def test_undo_to_previous_verifies_then_starts_a_canary_of_the_version_before():
    state = serving_v3("previous")
    asked = step(state)
    assert asked.wants.verify_uri == uri("v2")  # the artifacts first: nothing changes yet
    assert asked.status == state.status
    plan = step(state, verified("v2"))
    status = plan.status
    assert status["rollout"]["version"] == "v2" and status["rollout"]["stableVersion"] == "v3"
    assert status["rollout"]["manifestSha256"] == "2" * 64
    assert status["currentModel"]["version"] == "v3"  # v3 serves until the canary is promoted
    assert status["lastUndo"]["result"] == "Started" and status["lastUndo"]["version"] == "v2"
    assert [(e.reason, e.type) for e in plan.events if e.reason.startswith("Undo")] == [("UndoStarted", "Normal")]
    # Acted on once: the same annotation does nothing more.
    again = step(then(state, plan), verified("v2"))
    assert again.status["lastUndo"] == status["lastUndo"]
    assert not [e for e in again.events if e.reason.startswith("Undo")]


def test_undo_immediate_serves_the_version_at_once():
    state = serving_v3("v1;immediate;at=2026-11-24T09:59:00Z")
    plan = step(state, verified("v1"))
    assert plan.status["currentModel"]["version"] == "v1"
    assert plan.status["currentModel"]["rolledOutAt"] == "2026-11-24T10:00:00Z"
    assert plan.status.get("rollout") is None
    assert plan.status["lastUndo"]["result"] == "Applied"
    stable = next(d for d in plan.serving.deployments if d["metadata"]["name"].endswith("-stable"))
    assert stable["spec"]["template"]["metadata"]["labels"][names.LABEL_MODEL_VERSION] == "v1"


def test_without_a_canary_undo_is_immediate():
    plan = step(serving_v3("v2", SERVING), verified("v2"))
    assert plan.status["currentModel"]["version"] == "v2" and plan.status["lastUndo"]["result"] == "Applied"


def test_retry_brings_back_an_aborted_canary_but_never_a_version_its_gates_rejected():
    retried = step(serving_v3("v5;retry"), verified("v5"))
    assert retried.status["rollout"]["version"] == "v5"
    assert next(h for h in retried.status["history"] if h["version"] == "v5").get("rejected") is None
    assert [e.reason for e in retried.events if e.reason.startswith("Retry")] == ["RetryStarted"]
    refused = step(serving_v3("v4"))
    assert refused.wants.verify_uri is None
    assert refused.status["lastUndo"]["result"] == "Refused"
    assert "v4 never passed its gates (GateFailed)" in refused.status["lastUndo"]["message"]
    assert [(e.type, e.reason) for e in refused.events if e.reason.startswith("Undo")] == [("Warning", "UndoRefused")]


def test_changed_artifacts_refuse_the_undo_and_the_current_model_keeps_serving():
    plan = step(serving_v3("v2"), verified("v2", digest="f" * 64))
    assert plan.status["currentModel"]["version"] == "v3" and plan.status.get("rollout") is None
    assert plan.status["lastUndo"]["result"] == "Refused"
    assert "changed since it was recorded" in plan.status["lastUndo"]["message"]
    missing = step(serving_v3("v2"), Observed(current_artifacts=ArtifactOutcome(manifest=None, uri=uri("v2"))))
    assert "manifest.json is missing" in missing.status["lastUndo"]["message"]


def test_unreadable_storage_keeps_the_request_for_later():
    observed = Observed(current_artifacts=ArtifactOutcome(manifest=None, uri=uri("v2"), storage_error="timeout"))
    plan = step(serving_v3("v2"), observed)
    assert "lastUndo" not in plan.status and plan.status["currentModel"]["version"] == "v3"
    assert plan.requeue_after <= 15


def test_unknown_or_current_versions_and_a_rollout_in_progress_are_refused():
    for value, said in (("v9", "v9 is not in status.history (kept: v5, v4, v3, v2, v1)"),
                        ("v3", "v3 is already the current version")):
        assert said in step(serving_v3(value)).status["lastUndo"]["message"]
    state = serving_v3("v2")
    rolling = dict(state.status, rollout=rollout.start("v5", uri("v5"), "v3", NOW, rollout.Commands()))
    plan = step(dataclasses.replace(state, status=rolling))
    assert "the rollout of v5 is in progress" in plan.status["lastUndo"]["message"]
    assert plan.status["rollout"]["version"] == "v5"


def test_a_version_trained_now_records_that_it_passed_its_gates():
    from .decisions import finished_ok, started

    state, _ = started()
    plan = finished_ok(state)
    assert plan.status["currentModel"]["passedGates"] is True
