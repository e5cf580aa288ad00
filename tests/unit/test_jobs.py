import json

from retrain_contract.api import names
from retrain_contract.api.spec import PolicySpec
from retrain_operator.core.jobs import DriftRequest, PolicyRef, RunRequest, drift_job, run_config, trainer_job
from retrain_operator.core.runs import Trigger, job_name

from .policies import spec

POLICY = PolicyRef(name="churn", namespace="ml", uid="uid-1")
RUN = RunRequest("v3", "v2", Trigger("manual", "annotation", "2026-11-24T10:00:00Z", "now"))
GPU_TRAINING = {
    "strategy": "incremental",
    "image": "registry.example/trainer:1.2",
    "resources": {"limits": {"nvidia.com/gpu": 2, "memory": "8Gi"}, "requests": {"cpu": "2"}},
    "nodeSelector": {"nvidia.com/gpu.present": "true"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "runtimeClassName": "nvidia",
    "serviceAccountName": "trainer",
    "backoffLimit": 1,
    "activeDeadlineSeconds": 7200,
    "ttlSecondsAfterFinished": 600,
}


def build(**training):
    return trainer_job(POLICY, PolicySpec.from_dict(spec(training=training or {"strategy": "full"})), RUN,
                       "default/trainer:0")


def test_the_job_name_is_deterministic_and_owned_by_the_policy():
    job = build()
    assert job["metadata"]["name"] == "churn-v3" == build()["metadata"]["name"]
    [owner] = job["metadata"]["ownerReferences"]
    assert owner == {"apiVersion": names.API_VERSION, "kind": "RetrainPolicy", "name": "churn", "uid": "uid-1",
                     "controller": True, "blockOwnerDeletion": True}
    assert job["metadata"]["labels"][names.LABEL_RUN] == "v3"
    assert job["metadata"]["labels"][names.LABEL_POLICY] == "churn"


def test_gpu_resources_placement_and_runtime_reach_the_pod():
    job = build(**GPU_TRAINING)
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert container["image"] == "registry.example/trainer:1.2"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"] == GPU_TRAINING["tolerations"]
    assert pod["runtimeClassName"] == "nvidia"
    assert pod["serviceAccountName"] == "trainer"
    assert pod["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == 1
    assert job["spec"]["activeDeadlineSeconds"] == 7200
    assert job["spec"]["ttlSecondsAfterFinished"] == 600


def test_a_drift_check_is_placed_by_its_own_fields_never_by_trainings():
    tainted = [{"key": "pool", "operator": "Equal", "value": "batch", "effect": "NoSchedule"}]
    affinity = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [{"key": "spot", "operator": "In", "values": ["true"]}]}}]}}
    drift = {"data": "s3://data/recent/"}
    check = DriftRequest("d1", "v2", "2026-11-24T10:00:00Z", "s3://models/v2/")

    def pod_of(drift_section: dict) -> dict:
        policy = PolicySpec.from_dict(spec(training=GPU_TRAINING, triggers={"drift": drift_section}))
        return drift_job(POLICY, policy, check, "default/trainer:0")["spec"]["template"]["spec"]

    bare = pod_of(drift)
    assert not {"nodeSelector", "tolerations", "affinity", "runtimeClassName"} & bare.keys()
    placed = pod_of({**drift, "nodeSelector": {"pool": "batch"}, "tolerations": tainted, "affinity": affinity})
    assert placed["nodeSelector"] == {"pool": "batch"} and placed["tolerations"] == tainted
    assert placed["affinity"] == affinity and "runtimeClassName" not in placed
    assert "nvidia.com/gpu" not in json.dumps(placed["containers"][0]["resources"])


def test_the_default_image_and_command_are_the_projects_trainer():
    [container] = build()["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "default/trainer:0"
    assert container["command"] == ["retrain-trainer"]
    assert container["args"] == ["train"]


def test_credentials_travel_only_as_secret_references():
    [container] = build()["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    assert env["AWS_ACCESS_KEY_ID"] == {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {
        "secretKeyRef": {"name": "s3-creds", "key": "AWS_ACCESS_KEY_ID"}}}
    assert "value" not in env["AWS_SECRET_ACCESS_KEY"]
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://127.0.0.1:8333"
    config = json.loads(env[names.ENV_RUN_CONFIG]["value"])
    assert "secret" not in json.dumps(config).lower().replace("credentialssecret", "")


def test_the_run_config_carries_the_run_and_the_strategy():
    config = run_config(POLICY, PolicySpec.from_dict(spec(training={"strategy": "incremental",
                                                                    "incremental": {"replayFraction": 0.7}})), RUN)
    assert config["version"] == "v3" and config["parentVersion"] == "v2"
    assert config["trigger"] == {"type": "manual", "reason": "annotation", "at": "2026-11-24T10:00:00Z"}
    assert config["training"]["strategy"] == "incremental"
    assert config["training"]["replayFraction"] == 0.7
    assert config["storage"] == {"bucket": "models", "prefix": "retrain", "endpoint": "http://127.0.0.1:8333",
                                 "region": "us-east-1"}


def test_config_data_and_version_conflict_errors_fail_the_job_without_retries():
    rules = build()["spec"]["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "FailJob", "onExitCodes": {"containerName": "trainer", "operator": "In",
                                                              "values": [2, 3, 5]}}


def test_the_run_config_names_the_policy_incarnation_and_where_the_parent_is():
    run = RunRequest("v3", "v2", RUN.trigger, "s3://models/retrain/ml/churn/v2/")  # recorded before the uid layout
    config = run_config(POLICY, PolicySpec.from_dict(spec()), run)
    assert config["policy"] == {"namespace": "ml", "name": "churn", "uid": "uid-1"}
    assert config["parentUri"] == "s3://models/retrain/ml/churn/v2/"
    first = run_config(POLICY, PolicySpec.from_dict(spec()), RunRequest("v1", None, RUN.trigger))
    assert first["parentVersion"] is None and first["parentUri"] is None


def test_the_pod_runs_locked_down():
    pod = build()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["automountServiceAccountToken"] is False


def test_long_names_are_shortened_deterministically_to_a_valid_label():
    long_policy = "a-very-long-policy-name-that-goes-on-and-on-and-on-beyond-limits"
    name = job_name(long_policy, "v12345")
    assert len(name) <= 63 and name.endswith("-v12345") and name == job_name(long_policy, "v12345")
    assert name != job_name(long_policy + "x", "v12345")
