"""The local executor behaves like the Job controller + kubelet for the Job fields the operator sets."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from faithful_kube import ApiServerThread
from retrain_operator.sandbox.local_executor import LocalExecutor, failure_rule_action

NS = "exec"


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[kubernetes.client.BatchV1Api, Path]]:
    api = ApiServerThread()
    api.start()
    workdir = tmp_path_factory.mktemp("executor")
    kubeconfig = api.write_kubeconfig(workdir / "kubeconfig")
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    client = kubernetes.client.ApiClient(configuration)
    core = kubernetes.client.CoreV1Api(client)
    core.create_namespace({"metadata": {"name": NS}})
    core.create_namespaced_secret(NS, {"metadata": {"name": "creds"},
                                       "data": {"token": base64.b64encode(b"s3cr3t").decode()}})
    executor = LocalExecutor(client, workdir / "jobs", poll_interval=0.1)
    thread = threading.Thread(target=executor.run_forever, daemon=True)
    thread.start()
    try:
        yield kubernetes.client.BatchV1Api(client), workdir / "jobs"
    finally:
        executor.stop()
        thread.join(15)
        api.stop()


def job(name: str, script: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NS},
            "spec": {"backoffLimit": 0, **spec, "template": {"spec": {"restartPolicy": "Never", "containers": [{
                "name": "trainer", "image": "ignored", "command": ["sh", "-c", script],
                "env": [{"name": "PLAIN", "value": "hello"},
                        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
                        {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
            }]}}}}


def finished(batch: kubernetes.client.BatchV1Api, name: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = json.loads(batch.read_namespaced_job(name, NS, _preload_content=False).data)
        conditions = {c["type"]: c for c in (body.get("status") or {}).get("conditions") or []}
        if "Complete" in conditions or "Failed" in conditions:
            return body
        time.sleep(0.1)
    raise AssertionError(f"Job {name} did not finish")


def conditions(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in body["status"].get("conditions") or []}


def test_a_succeeding_job_completes_with_the_pods_environment(harness):
    batch, workdir = harness
    batch.create_namespaced_job(NS, job("ok", 'echo "$PLAIN $TOKEN $POD_NS"'))
    body = finished(batch, "ok")
    assert body["status"]["succeeded"] == 1 and body["status"]["startTime"] and body["status"]["completionTime"]
    assert {"SuccessCriteriaMet", "Complete"} <= set(conditions(body))
    assert (workdir / NS / "ok" / "attempt-1.log").read_text().strip() == "hello s3cr3t exec"


def test_an_exit_code_in_a_failjob_rule_fails_at_once(harness):
    batch, _ = harness
    rules = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [2, 3]}}]}
    batch.create_namespaced_job(NS, job("fatal", "exit 3", backoffLimit=5, podFailurePolicy=rules))
    body = finished(batch, "fatal")
    assert conditions(body)["Failed"]["reason"] == "PodFailurePolicy"
    assert body["status"]["failed"] == 1


def test_other_failures_are_retried_up_to_the_backoff_limit(harness):
    batch, workdir = harness
    batch.create_namespaced_job(NS, job("flaky", "exit 1", backoffLimit=1))
    body = finished(batch, "flaky")
    assert conditions(body)["Failed"]["reason"] == "BackoffLimitExceeded"
    assert body["status"]["failed"] == 2
    assert (workdir / NS / "flaky" / "attempt-2.log").exists()


def test_the_active_deadline_kills_a_long_run(harness):
    batch, _ = harness
    started = time.monotonic()
    batch.create_namespaced_job(NS, job("slow", "sleep 30", activeDeadlineSeconds=1))
    body = finished(batch, "slow")
    assert conditions(body)["Failed"]["reason"] == "DeadlineExceeded"
    assert time.monotonic() - started < 15


def test_finished_jobs_expire_after_their_ttl(harness):
    batch, _ = harness
    batch.create_namespaced_job(NS, job("brief", "true", ttlSecondsAfterFinished=0))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if "brief" not in {j.metadata.name for j in batch.list_namespaced_job(NS).items}:
            return
        time.sleep(0.1)
    raise AssertionError("the finished Job was not deleted after its TTL")


def test_a_missing_command_fails_like_a_missing_executable(harness):
    batch, _ = harness
    body = job("nocmd", "")
    body["spec"]["template"]["spec"]["containers"][0]["command"] = ["definitely-not-installed-anywhere"]
    batch.create_namespaced_job(NS, body)
    assert conditions(finished(batch, "nocmd"))["Failed"]["reason"] == "BackoffLimitExceeded"


def test_failure_rules_match_exit_codes():
    rules = {"spec": {"podFailurePolicy": {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [2, 3]}},
        {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [0, 2, 3]}},
    ]}}}
    assert failure_rule_action(rules, 3) == "FailJob"
    assert failure_rule_action(rules, 1) == "Count"
    assert failure_rule_action({"spec": {}}, 1) is None
