"""The process kubelet's pure parts: the environment and command a container gets, and the pod status it reports."""

from __future__ import annotations

import base64

import pytest

from retrain_devcluster.kubelet import containers
from retrain_devcluster.kubelet.status import ContainerState, PodRecord, phase, pod_status

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "x"}},
       "spec": {"nodeName": "n"}, "status": {"podIP": "198.18.0.2"}}
SECRET = {"data": {"token": base64.b64encode(b"s3cr3t").decode()}}


def lookup(kind: str, name: str):
    return SECRET if (kind, name) == ("Secret", "creds") else None


def test_env_resolves_references_in_order_and_expands_earlier_names():
    container = {"env": [
        {"name": "A", "value": "one"},
        {"name": "B", "value": "$(A)-two $$(A) $(MISSING)"},
        {"name": "T", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "O", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}}}]}
    env = containers.environment(POD, container, lookup, {"PATH": "/bin"})
    assert env["B"] == "one-two $(A) $(MISSING)"
    assert (env["T"], env["NS"], env["IP"], env["L"], env["HOSTNAME"]) == ("s3cr3t", "ns", "198.18.0.2", "x", "p")
    assert "O" not in env and env["PATH"] == "/bin"


@pytest.mark.parametrize("ref, message", [
    ({"name": "absent", "key": "token"}, 'secret "absent" not found'),
    ({"name": "creds", "key": "nope"}, "couldn't find key nope in Secret creds")])
def test_a_missing_secret_or_key_is_a_config_error(ref, message):
    with pytest.raises(containers.ConfigError, match=message):
        containers.environment(POD, {"env": [{"name": "X", "valueFrom": {"secretKeyRef": ref}}]}, lookup, {})


def test_the_command_is_command_plus_args_or_the_images_entrypoint():
    env = {"V": "2"}
    assert containers.command({"command": ["sh", "-c"], "args": ["echo $(V)"]}, env) == ["sh", "-c", "echo 2"]
    assert containers.command({"image": "ghcr.io/retrain-operator/retrain-trainer:0.1.0", "args": ["train"]},
                              env) == ["retrain-trainer", "train"]
    with pytest.raises(containers.ConfigError):
        containers.command({"name": "c", "image": "unknown"}, env)


def record(policy: str, *states: ContainerState, terminal: bool = False) -> PodRecord:
    return PodRecord(uid="u", restart_policy=policy, containers=list(states), sandbox_ready=True, terminal=terminal)


def done(code: int) -> ContainerState:
    return ContainerState("c", "i", state="terminated", exit_code=code, started=True)


def test_phase_follows_the_restart_policy():
    running = ContainerState("c", "i", state="running", started=True)
    assert phase(record("Never", running)) == "Running"
    assert phase(record("Never", done(0))) == "Succeeded"
    assert phase(record("Never", done(1))) == "Failed"
    assert phase(record("OnFailure", done(1))) == "Running"  # it will be restarted
    assert phase(record("Always", done(0))) == "Running"
    assert phase(record("Always", ContainerState("c", "i", reason="CreateContainerConfigError"))) == "Pending"
    assert phase(record("Always", done(0), terminal=True)) == "Succeeded"
    assert phase(record("Always", done(143), terminal=True)) == "Failed"


def test_status_keeps_transition_times_and_the_schedulers_condition():
    scheduled = {"type": "PodScheduled", "status": "True", "lastTransitionTime": "t0"}
    ready_state = ContainerState("c", "i", state="running", started=True, ready=True)
    observed = {"status": {"conditions": [scheduled, {"type": "Ready", "status": "True", "lastTransitionTime": "t1"}],
                           "qosClass": "BestEffort"}}
    status = pod_status(record("Always", ready_state), observed, "t2")
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["PodScheduled"] == scheduled
    assert conditions["Ready"]["status"] == "True" and conditions["Ready"]["lastTransitionTime"] == "t1"
    assert conditions["Initialized"]["lastTransitionTime"] == "t2" and status["qosClass"] == "BestEffort"
    finished = pod_status(record("Never", done(0)), observed, "t3")
    assert {c["type"]: c for c in finished["conditions"]}["Ready"]["reason"] == "PodCompleted"
    assert finished["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
