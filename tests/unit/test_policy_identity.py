"""Versions belong to one policy incarnation (its metadata.uid): the layout, the run configuration, the
trainer's test of an existing manifest and the operator's, all pure."""

from __future__ import annotations

import dataclasses
import json

import pytest

from retrain_contract.api import names
from retrain_contract.api.spec import PolicySpec
from retrain_contract.artifacts.identity import config_digest, foreign_to_policy, foreign_to_run
from retrain_contract.artifacts.layout import drift_prefix, policy_root, version_prefix
from retrain_operator.adapters.storage import PolicyStorage, recorded_uris
from retrain_operator.core.conditions import get_condition
from retrain_operator.core.jobs import PolicyRef, RunRequest, run_config
from retrain_operator.core.observed import FAILED, SUCCEEDED, ArtifactOutcome, Observed
from retrain_operator.core.runs import Trigger
from retrain_trainer import config as config_module
from retrain_trainer.errors import EXIT_CONFLICT, VersionConflict, classify

from .decisions import MANIFEST, finished_ok, job, started, step, then
from .policies import spec

TRIGGER = Trigger("manual", "annotation", "2026-11-24T10:00:00Z", "1")


def config_for(uid: str, version: str = "v1", parent: str | None = None, parent_uri: str | None = None) -> dict:
    return run_config(PolicyRef("churn", "ml", uid), PolicySpec.from_dict(spec()),
                      RunRequest(version, parent, TRIGGER, parent_uri))


# -- the layout ----------------------------------------------------------------------------------

def test_each_incarnation_has_its_own_folder():
    assert version_prefix("retrain", "ml", "churn", "v1", uid="u-1") == "retrain/ml/churn/u-1/v1/"
    assert version_prefix("", "ml", "churn", "v1", uid="u-2") == "ml/churn/u-2/v1/"
    assert drift_prefix("retrain", "ml", "churn", "d3", uid="u-1") == "retrain/ml/churn/u-1/drift/d3/"
    assert policy_root("retrain", "ml", "churn") == "retrain/ml/churn/"
    # No uid: the layout of versions trained before it was part of the path.
    assert version_prefix("retrain", "ml", "churn", "v1", uid="") == "retrain/ml/churn/v1/"


def test_the_uid_cannot_be_left_out_by_mistake():
    with pytest.raises(TypeError):
        version_prefix("retrain", "ml", "churn", "v1")  # type: ignore[call-arg]


# -- the run configuration and its digest -----------------------------------------------------------

def test_the_digest_ignores_how_s3_is_reached_but_not_what_is_trained():
    base = config_for("u-1")
    moved = json.loads(json.dumps(base))
    moved["storage"]["endpoint"] = "http://elsewhere:9000"
    assert config_digest(moved) == config_digest(base)
    for change in ({"policy": {**base["policy"], "uid": "u-2"}}, {"version": "v2"},
                   {"model": {**base["model"], "params": {"n_estimators": 7}}},
                   {"data": {**base["data"], "history": "s3://data/other/"}}):
        assert config_digest({**base, **change}) != config_digest(base), change
    assert config_digest(base).startswith("sha256:") and config_digest(base) == config_digest(config_for("u-1"))


def test_the_trainer_reads_the_incarnation_and_the_parents_recorded_place():
    raw = config_for("u-1", "v3", "v2", "s3://models/retrain/ml/churn/v2/")
    parsed = config_module.parse(json.dumps(raw))
    assert parsed.uid == "u-1" and parsed.parent_uri == "s3://models/retrain/ml/churn/v2/"
    assert parsed.output_prefix == "retrain/ml/churn/u-1/v3/"
    assert parsed.digest == config_digest(raw)
    legacy = {**raw, "policy": {"namespace": "ml", "name": "churn"}, "parentUri": None}
    assert config_module.parse(json.dumps(legacy)).output_prefix == "retrain/ml/churn/v3/"
    with pytest.raises(config_module.ConfigError):
        config_module.parse(json.dumps({**raw, "parentUri": "models/v2/"}))


# -- may an existing manifest be taken as finished? -------------------------------------------------

def manifest_of(uid: str | None, digest: str | None) -> dict:
    policy_ = {"namespace": "ml", "name": "churn", **({"uid": uid} if uid else {})}
    return {"version": "v1", "policy": policy_, "configDigest": digest, "files": {}, "metrics": {}}


def test_only_this_runs_own_manifest_counts_as_finished():
    digest = config_digest(config_for("u-new"))
    assert foreign_to_run(manifest_of("u-new", digest), "u-new", digest) is None  # a retry after the manifest
    old = foreign_to_run(manifest_of("u-old", config_digest(config_for("u-old"))), "u-new", digest)
    assert old and "u-old" in old and "u-new" in old
    assert "another run configuration" in foreign_to_run(manifest_of("u-new", "sha256:other"), "u-new", digest)
    # A manifest of a trainer before the uid and digest were written: not shown to be this run's.
    assert foreign_to_run(manifest_of(None, None), "u-new", digest)
    assert foreign_to_run(manifest_of(None, None), "", digest)


def test_a_version_conflict_is_not_retried():
    assert classify(VersionConflict("x")) == (EXIT_CONFLICT, "VersionConflict") == (5, "VersionConflict")


def test_the_operator_refuses_only_a_manifest_that_names_another_incarnation():
    assert foreign_to_policy(manifest_of("u-old", "d"), "u-new")
    assert foreign_to_policy(manifest_of("u-new", "d"), "u-new") is None
    assert foreign_to_policy(manifest_of(None, None), "u-new") is None  # a trainer of your own: where it lies


# -- the operator's storage view -------------------------------------------------------------------

def storage(status: dict) -> PolicyStorage:
    return PolicyStorage(PolicySpec.from_dict(spec()), "ml", "churn", client=None, uid="u-1",
                         recorded=recorded_uris(status))


def test_runs_go_to_the_incarnation_and_recorded_versions_are_found_where_recorded():
    status = {"currentModel": {"version": "v2", "uri": "s3://models/retrain/ml/churn/v2/"},
              "history": [{"version": "v2", "uri": "s3://models/retrain/ml/churn/v2/"},
                          {"version": "v1", "uri": "s3://models/retrain/ml/churn/v1/"}],
              "rollout": {"version": "v3", "uri": "s3://models/retrain/ml/churn/u-1/v3/"}}
    view = storage(status)
    assert view.uri("v4") == "s3://models/retrain/ml/churn/u-1/v4/"
    assert view.recorded_prefix("v1") == ("models", "retrain/ml/churn/v1/")  # legacy layout, as recorded
    assert view.recorded_prefix("v3") == ("models", "retrain/ml/churn/u-1/v3/")
    assert view.recorded_prefix("v9") == ("models", "retrain/ml/churn/u-1/v9/")


# -- the decision ----------------------------------------------------------------------------------

def test_a_run_continues_from_the_parent_where_it_was_recorded():
    state, _ = started()
    after = then(state, finished_ok(state))
    assert after.status["currentModel"]["uri"] == "s3://models/retrain/ml/churn/v1/"
    plan = step(dataclasses.replace(after, annotations={names.ANNOTATION_TRIGGER: "again"}))
    env = {e["name"]: e.get("value") for e in plan.create_job["spec"]["template"]["spec"]["containers"][0]["env"]}
    config = json.loads(env[names.ENV_RUN_CONFIG])
    assert config["policy"]["uid"] == "uid-1"
    assert config["parentVersion"] == "v1" and config["parentUri"] == "s3://models/retrain/ml/churn/v1/"


@pytest.mark.parametrize("state_of_job", [SUCCEEDED, FAILED, None])
def test_another_incarnations_version_is_a_failure_never_the_new_model(state_of_job):
    state, _ = started()
    jobs = (job("v1", state_of_job),) if state_of_job else ()
    why = "version v1 was trained for another incarnation of the policy (uid old), not this one (uid uid-1)"
    outcome = ArtifactOutcome(manifest=None, uri="s3://models/retrain/ml/churn/uid-1/v1/", foreign=why)
    plan = step(state, Observed(jobs=jobs, outcomes={"v1": outcome}))
    status = plan.status
    assert status["lastRun"]["phase"] == "Failed" and status["lastRun"]["reason"] == "ForeignVersion"
    assert status["lastRun"]["message"] == why
    assert not status.get("currentModel") and not status.get("history")
    assert get_condition(status["conditions"], "Trained")["reason"] == "ForeignVersion"
    assert "RunFailed" in [e.reason for e in plan.events]


def test_a_manifest_of_this_incarnation_is_still_recorded():
    state, _ = started()
    plan = finished_ok(state, manifest={**MANIFEST, "policy": {"namespace": "ml", "name": "churn", "uid": "uid-1"}})
    assert plan.status["currentModel"]["version"] == "v1"


def test_a_drift_check_reads_the_model_where_it_was_recorded():
    from retrain_operator.core.jobs import DriftRequest, drift_config

    check = DriftRequest("d1", "v2", "2026-11-24T10:00:00Z", "s3://models/retrain/ml/churn/v2/")
    drift_spec = PolicySpec.from_dict(spec(triggers={"drift": {"data": "s3://data/churn/recent/"}}))
    config = drift_config(PolicyRef("churn", "ml", "u-1"), drift_spec, check)
    assert config["policy"]["uid"] == "u-1" and config["modelUri"] == "s3://models/retrain/ml/churn/v2/"
