"""Versions belong to one policy incarnation: a policy deleted and created again with the same name
(a GitOps prune, a rename back, a namespace rebuilt) trains its own v1; it never takes the deleted
one's v1 as its own, and never touches the deleted one's files.

The first test runs on the real control plane (the operator, the Job, the real trainer, SeaweedFS);
the others run the trainer's entrypoint as the Job runs it, against SeaweedFS.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from retrain_contract.api import names
from retrain_contract.artifacts.layout import version_prefix
from retrain_contract.artifacts.store import ArtifactStore
from retrain_contract.artifacts.uris import parse_s3_uri
from retrain_sandbox import dataset

from .conftest import Scenario
from .test_trainer_entrypoint import config, train

pytestmark = pytest.mark.integration


def files_under(s3: Any, bucket: str, prefix: str) -> dict[str, str]:
    """key -> sha256 of the bytes, of every object under the prefix."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            found[item["Key"]] = hashlib.sha256(body).hexdigest()
    return found


def manifest_at(s3: Any, uri: str) -> dict[str, Any]:
    bucket, key = parse_s3_uri(uri)
    manifest = ArtifactStore(s3, bucket).read_manifest(key)
    assert manifest is not None, f"no manifest at {uri}"
    return manifest


def delete_policy(scenario: Scenario, name: str) -> None:
    """`kubectl delete rtp NAME`, then wait until it and its Jobs are gone (the garbage collector's part)."""
    cluster, namespace = scenario.cluster, scenario.namespace
    cluster.custom.delete_namespaced_custom_object(names.GROUP, names.VERSION, namespace, names.PLURAL, name)
    cluster.wait(lambda: not cluster._exists(lambda: cluster.policy(namespace, name)), 60, f"{name} to be deleted")
    cluster.wait(lambda: not cluster.jobs(namespace), 90, "the deleted policy's Jobs to be collected")


def test_a_recreated_policy_trains_its_own_v1_and_leaves_the_old_one_alone(scenario: Scenario):
    namespace, s3, bucket = scenario.namespace, scenario.s3, scenario.model_bucket
    scenario.load_history(rows=1500, seed=1)
    scenario.cluster.apply_policy(namespace, "churn", scenario.policy_spec(),
                                  annotations={names.ANNOTATION_TRIGGER: "1"})
    first = scenario.wait_recorded("churn", "v1", timeout=120)
    assert first["lastRun"]["phase"] == "Succeeded", first["lastRun"]
    old_uid = scenario.cluster.policy(namespace, "churn")["metadata"]["uid"]
    old_uri = first["currentModel"]["uri"]
    old_manifest = manifest_at(s3, old_uri)
    old_files = files_under(s3, bucket, f"models/{namespace}/churn/")
    assert parse_s3_uri(old_uri)[1] + "manifest.json" in old_files

    # Deleted (a GitOps prune); the S3 files stay. Recreated with the same name and other data.
    delete_policy(scenario, "churn")
    assert files_under(s3, bucket, f"models/{namespace}/churn/") == old_files
    scenario.load_history(rows=2500, seed=2)
    scenario.cluster.apply_policy(namespace, "churn", scenario.policy_spec(),
                                  annotations={names.ANNOTATION_TRIGGER: "1"})
    new_uid = scenario.cluster.policy(namespace, "churn")["metadata"]["uid"]
    assert new_uid != old_uid
    second = scenario.wait_recorded("churn", "v1", timeout=120)

    assert second["lastRun"]["phase"] == "Succeeded", second["lastRun"]
    current = second["currentModel"]
    assert current["version"] == "v1"
    new_manifest = manifest_at(s3, current["uri"])
    # The model recorded is trained on the new data, for the new incarnation: not the deleted policy's v1.
    assert new_manifest["data"]["identity"] != old_manifest["data"]["identity"]
    assert new_manifest["data"]["rows"]["history"] == 2500 and old_manifest["data"]["rows"]["history"] == 1500
    assert new_manifest["files"]["model.joblib"] != old_manifest["files"]["model.joblib"]
    assert current["metrics"] == new_manifest["metrics"]
    assert new_manifest["policy"].get("uid") == new_uid and old_manifest["policy"].get("uid") == old_uid
    assert current["uri"] == f"s3://{bucket}/models/{namespace}/churn/{new_uid}/v1/" != old_uri
    assert old_uri == f"s3://{bucket}/models/{namespace}/churn/{old_uid}/v1/"
    # The deleted policy's version is exactly as it was: not read as ours, not overwritten, not pruned.
    after = files_under(s3, bucket, f"models/{namespace}/churn/")
    assert {key: after[key] for key in old_files} == old_files


def test_a_copied_version_of_another_incarnation_is_refused_not_recorded(scenario: Scenario):
    """Copying an old version's folder under the new uid does not adopt it: the manifest names the old
    incarnation, so the trainer refuses it (VersionConflict, no retry) and the operator records ForeignVersion."""
    namespace, s3, bucket = scenario.namespace, scenario.s3, scenario.model_bucket
    scenario.load_history(rows=1500, seed=3)
    scenario.cluster.apply_policy(namespace, "copy", scenario.policy_spec())  # no trigger yet
    uid = scenario.cluster.policy(namespace, "copy")["metadata"]["uid"]
    # Another incarnation's v1, trained by the real trainer, copied where this incarnation's v1 goes.
    other = config(bucket, "v1", policy={"namespace": namespace, "name": "copy", "uid": "0ther-incarnation"},
                   storage={"prefix": "models"},
                   data={"history": f"s3://{scenario.data_bucket}/churn/history/", "incoming": None})
    result = train(scenario.cluster.seaweed, other)
    assert result.returncode == 0, result.stderr
    source = version_prefix("models", namespace, "copy", "v1", uid="0ther-incarnation")
    target = version_prefix("models", namespace, "copy", "v1", uid=uid)
    for key in files_under(s3, bucket, source):
        s3.copy_object(Bucket=bucket, Key=target + key[len(source):], CopySource={"Bucket": bucket, "Key": key})
    copied = files_under(s3, bucket, target)

    scenario.cluster.trigger(namespace, "copy", "1")
    status = scenario.wait_recorded("copy", "v1", timeout=120)
    last = status["lastRun"]
    assert last["phase"] == "Failed" and last["reason"] == "ForeignVersion", last
    assert "0ther-incarnation" in last["message"] and uid in last["message"]
    assert not status.get("currentModel") and status["phase"] == "Degraded"
    error = json.loads(s3.get_object(Bucket=bucket, Key=target + "error.json")["Body"].read())
    assert error["reason"] == "VersionConflict" and error["exitCode"] == 5
    after = files_under(s3, bucket, target)
    assert {key: after[key] for key in copied} == copied  # refused, not overwritten


# -- the trainer alone -------------------------------------------------------------------------------

def test_the_trainer_refuses_another_incarnations_manifest_under_its_prefix(seaweed, s3, bucket):
    s3.put_object(Bucket=bucket, Key="history/a.parquet", Body=dataset.to_parquet(dataset.churn_table(1500, 1)))
    old = config(bucket, policy={"namespace": "ml", "name": "churn", "uid": "old-uid"})
    assert train(seaweed, old).returncode == 0
    old_prefix = version_prefix("models", "ml", "churn", "v1", uid="old-uid")
    new_prefix = version_prefix("models", "ml", "churn", "v1", uid="new-uid")
    for key in files_under(s3, bucket, old_prefix):  # the old incarnation's v1, where the new one's v1 goes
        s3.copy_object(Bucket=bucket, Key=new_prefix + key[len(old_prefix):], CopySource={"Bucket": bucket, "Key": key})
    planted = files_under(s3, bucket, new_prefix)

    s3.put_object(Bucket=bucket, Key="history/a.parquet", Body=dataset.to_parquet(dataset.churn_table(2500, 2)))
    result = train(seaweed, config(bucket, policy={"namespace": "ml", "name": "churn", "uid": "new-uid"}))
    assert result.returncode == 5, (result.returncode, result.stderr)
    assert "retrain-trainer: error: VersionConflict:" in result.stderr and "old-uid" in result.stderr
    error = json.loads(s3.get_object(Bucket=bucket, Key=new_prefix + "error.json")["Body"].read())
    assert error["reason"] == "VersionConflict" and error["exitCode"] == 5
    after = files_under(s3, bucket, new_prefix)
    assert {key: after[key] for key in planted} == planted  # nothing overwritten


def test_only_a_retry_of_the_same_run_finds_its_version_finished(seaweed, s3, bucket):
    s3.put_object(Bucket=bucket, Key="history/a.parquet", Body=dataset.to_parquet(dataset.churn_table(1500, 1)))
    run = config(bucket, policy={"namespace": "ml", "name": "churn", "uid": "u-1"})
    assert train(seaweed, run).returncode == 0
    prefix = version_prefix("models", "ml", "churn", "v1", uid="u-1")
    written = files_under(s3, bucket, prefix)
    manifest = ArtifactStore(s3, bucket).read_manifest(prefix)
    assert manifest["policy"]["uid"] == "u-1" and manifest["configDigest"].startswith("sha256:")

    retry = train(seaweed, run)  # the pod retried after the manifest was written
    assert retry.returncode == 0, retry.stderr
    assert "already finished" in retry.stderr
    other = config(bucket, policy={"namespace": "ml", "name": "churn", "uid": "u-1"}, training={"randomSeed": 7})
    conflict = train(seaweed, other)  # the same version name, another configuration
    assert conflict.returncode == 5 and "another run configuration" in conflict.stderr, conflict.stderr
    after = files_under(s3, bucket, prefix)
    assert {key: after[key] for key in written} == written


# -- the operator's storage view: recorded versions where they are, nobody else's ------------------

def test_pruning_and_new_samples_use_recorded_places_and_never_touch_another_incarnation(s3, bucket):
    from retrain_contract.api.spec import PolicySpec
    from retrain_operator.adapters.storage import PolicyStorage, recorded_uris

    spec = PolicySpec.from_dict({
        "model": {"estimator": "RandomForestClassifier", "task": "classification", "target": dataset.TARGET},
        "data": {"incoming": f"s3://{bucket}/incoming/"},
        "storage": {"bucket": bucket, "prefix": "models", "credentialsSecret": {"name": "s3"}}})
    legacy, ours = "models/ml/churn/v1/", version_prefix("models", "ml", "churn", "v2", uid="u-new")
    theirs = version_prefix("models", "ml", "churn", "v1", uid="u-old")
    s3.put_object(Bucket=bucket, Key="incoming/a.csv", Body=dataset.to_csv(dataset.churn_table(100, 1)))
    s3.put_object(Bucket=bucket, Key="incoming/b.csv", Body=dataset.to_csv(dataset.churn_table(40, 2)))
    etag = s3.head_object(Bucket=bucket, Key="incoming/a.csv")["ETag"].strip('"')
    trained_on = {"version": "v1", "data": {"objects": [{"uri": f"s3://{bucket}/incoming/a.csv", "etag": etag}]}}
    for prefix in (legacy, ours, theirs):
        s3.put_object(Bucket=bucket, Key=prefix + "model.joblib", Body=b"model")
        s3.put_object(Bucket=bucket, Key=prefix + "manifest.json", Body=json.dumps(trained_on).encode())
    status = {"currentModel": {"version": "v1", "uri": f"s3://{bucket}/{legacy}"},
              "history": [{"version": "v2", "uri": f"s3://{bucket}/{ours}"},
                          {"version": "v1", "uri": f"s3://{bucket}/{legacy}"},
                          {"version": "v0", "uri": f"s3://{bucket}/elsewhere/v0/"}]}
    storage = PolicyStorage(spec, "ml", "churn", s3, uid="u-new", recorded=recorded_uris(status))
    s3.put_object(Bucket=bucket, Key="elsewhere/v0/model.joblib", Body=b"not the policy's")

    assert storage.new_samples("v1") == 40  # v1's manifest read where it was recorded (the legacy layout)
    storage.prune(["v1", "v2", "v0"])
    assert files_under(s3, bucket, legacy) == {} and files_under(s3, bucket, ours) == {}
    assert set(files_under(s3, bucket, theirs)) == {theirs + "model.joblib", theirs + "manifest.json"}
    assert set(files_under(s3, bucket, "elsewhere/")) == {"elsewhere/v0/model.joblib"}  # outside: never pruned


def owner_uids(obj: dict[str, Any]) -> list[str]:
    return [ref["uid"] for ref in (obj.get("metadata") or {}).get("ownerReferences") or []]


def recreate(scenario: Scenario, name: str, spec: dict[str, Any]) -> tuple[str, str]:
    """`kubectl delete` then `kubectl apply` at once, as a GitOps tool replacing the object does: the old
    incarnation's Jobs and Deployments may still be there, being collected. (old uid, new uid)"""
    cluster, namespace = scenario.cluster, scenario.namespace
    old_uid = cluster.policy(namespace, name)["metadata"]["uid"]
    cluster.custom.delete_namespaced_custom_object(names.GROUP, names.VERSION, namespace, names.PLURAL, name)
    cluster.wait(lambda: not cluster._exists(lambda: cluster.policy(namespace, name)), 60, f"{name} to be deleted")
    cluster.apply_policy(namespace, name, spec, annotations={names.ANNOTATION_TRIGGER: "1"})
    return old_uid, cluster.policy(namespace, name)["metadata"]["uid"]


def test_a_policy_recreated_while_its_run_trains_records_only_its_own_run(scenario: Scenario):
    """Deleted while the trainer runs, recreated at once with the same name: the old Job (collected, maybe
    not yet) is never adopted or recorded; the new incarnation's own v1 is the one recorded."""
    namespace, name = scenario.namespace, "churn"
    scenario.load_history(rows=1500, seed=1)
    spec = scenario.policy_spec()
    scenario.cluster.apply_policy(namespace, name, spec, annotations={names.ANNOTATION_TRIGGER: "1"})
    scenario.cluster.wait(lambda: any((p.get("status") or {}).get("phase") == "Running" for p in
                                      scenario.cluster.pods(namespace, {"job-name": f"{name}-v1"})),
                          120, "the trainer pod to run")
    old_uid, new_uid = recreate(scenario, name, spec)
    assert new_uid != old_uid
    status = scenario.wait_recorded(name, "v1", timeout=180)

    assert status["lastRun"]["phase"] == "Succeeded", status["lastRun"]
    current = status["currentModel"]
    assert current["uri"] == f"s3://{scenario.model_bucket}/models/{namespace}/{name}/{new_uid}/v1/"
    assert manifest_at(scenario.s3, current["uri"])["policy"]["uid"] == new_uid
    jobs = scenario.cluster.jobs(namespace)
    assert [job["metadata"]["name"] for job in jobs] == [f"{name}-v1"]
    assert owner_uids(jobs[0]) == [new_uid]  # its own Job, not the deleted one's
    assert status.get("runCounter") == 1


def test_a_policy_recreated_mid_rollout_gets_the_route_back_and_serves_its_own_model(scenario: Scenario):
    """Deleted while v2 is the canary at 30 %, recreated at once: the finalizer gave the route back to
    the stable Service, the old Deployments are collected, and the new incarnation serves its own v1
    from Deployments it owns, with the route at full weight on stable."""
    from .test_canary_rollout import deployment, http_route, route_weights
    from .test_operator_kills import rollout_spec, serve_v1, train_v2

    namespace, name = scenario.namespace, "canary"
    http_route(scenario, name)
    spec = rollout_spec(scenario, {"type": "gatewayAPI", "httpRoute": name})
    serve_v1(scenario, name, spec)
    train_v2(scenario, name)
    scenario.wait_status(name, lambda s: (s.get("rollout") or {}).get("weight") == 30, "the v2 canary at 30 %",
                         timeout=240)
    assert route_weights(scenario, name) == (70, 30)
    old_uid, new_uid = recreate(scenario, name, spec)
    assert route_weights(scenario, name) == (100, 0)  # given back before the policy was gone
    status = scenario.wait_recorded(name, "v1", timeout=180)
    assert status["lastRun"]["phase"] == "Succeeded", status["lastRun"]
    pinned = status["currentModel"]["manifestSha256"]
    assert status["currentModel"]["uri"].endswith(f"/{new_uid}/v1/")

    def serving_new_v1() -> dict | None:
        found = deployment(scenario, name, "stable")
        if not found or owner_uids(found) != [new_uid] or (found.get("status") or {}).get("readyReplicas") != 1:
            return None
        args = found["spec"]["template"]["spec"]["containers"][0]["args"]
        return found if args[args.index("--manifest-sha256") + 1] == pinned else None
    scenario.cluster.wait(serving_new_v1, 180, "the new incarnation's stable server of its own v1")
    assert route_weights(scenario, name) == (100, 0)
    canary = deployment(scenario, name, "canary")
    assert canary is None or (owner_uids(canary) == [new_uid] and canary["spec"]["replicas"] == 0)
    assert not (scenario.status(name).get("rollout") or {}).get("version")  # nothing inherited
    assert sorted(j["metadata"]["name"] for j in scenario.cluster.jobs(namespace)) == [f"{name}-v1"]
    old = f"s3://{scenario.model_bucket}/models/{namespace}/{name}/{old_uid}/"
    assert manifest_at(scenario.s3, old + "v2/")["policy"]["uid"] == old_uid  # the old versions stay in S3
