"""Undo, retry, pause and resume as a user runs them: `kubectl retrain ...` through the real kubectl against a
running operator. An earlier version serves again only once its artifacts in S3 still verify."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from retrain_contract.api import names
from retrain_sandbox import dataset

from .conftest import Scenario
from .test_kubectl_plugin import Kubectl, table

pytestmark = pytest.mark.integration
STEPS = [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]  # the empty pause waits for `promote`


def stable_version(scenario: Scenario) -> str:
    deployment = scenario.cluster.apps.read_namespaced_deployment("churn-model-stable", scenario.namespace)
    return deployment.spec.template.metadata.labels[names.LABEL_MODEL_VERSION]


def test_undo_retry_pause_and_resume_through_kubectl(scenario: Scenario, tmp_path: Path):
    ns, name = scenario.namespace, "churn"
    kubectl = Kubectl(scenario.cluster, tmp_path)
    scenario.load_history(rows=3000)
    scenario.cluster.apply_policy(ns, name, scenario.policy_spec(
        serving={"replicas": 1, "router": {"type": "replicas"}},
        promotion={"canary": {"steps": STEPS, "analysis": {"interval": "2s", "minRequests": 10}}}))

    def paused(version: str):
        return lambda s: (s.get("rollout") or {}).get("version") == version and s["rollout"]["phase"] == "Paused"

    def current(version: str):
        return lambda s: (s.get("currentModel") or {}).get("version") == version and not (
            s.get("rollout") or {}).get("phase", "").startswith(("Progress", "Paus", "Promot"))

    kubectl("retrain", "trigger", name, "-n", ns)
    scenario.wait_status(name, current("v1"), "v1 to serve", timeout=120)
    for batch, version in ((1, "v2"), (2, "v3")):
        scenario.put(f"churn/incoming/batch-{batch}.parquet",
                     dataset.to_parquet(dataset.churn_table(1500, seed=4 + batch)))
        kubectl("retrain", "trigger", name, "-n", ns)
        scenario.wait_status(name, paused(version), f"the {version} canary to pause", timeout=120)
        if version == "v2":
            kubectl("retrain", "promote", name, "-n", ns)
            scenario.wait_status(name, current("v2"), "v2 to be promoted")
    kubectl("retrain", "abort", name, "-n", ns)
    scenario.wait_status(name, lambda s: s["rollout"]["phase"] == "Aborted", "v3 to be aborted")

    # retry: the aborted canary goes through the steps again, as `status -w` shows while it happens.
    watcher = subprocess.Popen([kubectl.kubectl, "retrain", "status", name, "-n", ns, "-w", "--timeout", "30"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=kubectl.env)
    try:
        assert watcher.stdout is not None
        first = "".join(iter(watcher.stdout.readline, "\n"))  # the first table, then an empty line
        assert "v3 Aborted" in first, first
        assert "retry of v3: canary rollout started" in kubectl("retrain", "retry", name, "-n", ns).stdout
        scenario.wait_status(name, paused("v3"), "the retried v3 canary to pause")
        watched, errors = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, errors
    print(f"$ kubectl retrain status {name} -n {ns} -w\n{first}\n{watched}")
    blocks = [block.split("\n", 1)[1] for block in watched.strip().split("\n\n")]  # a time, then a table
    canaries = [table(block)[0]["CANARY"] for block in blocks]
    assert "v3 50% Paused" in canaries and len(set(canaries)) >= 2, watched
    assert "has no aborted or rolled-back rollout" in kubectl("retrain", "retry", name, "-n", ns, ok=False).stderr
    kubectl("retrain", "abort", name, "-n", ns)
    scenario.wait_status(name, lambda s: s["rollout"]["phase"] == "Aborted", "v3 to be aborted again")

    # undo to a named version, at once: the stable Deployment runs it.
    said = kubectl("retrain", "undo", name, "--to-version", "v1", "--immediate", "-n", ns).stdout
    assert "undo to v1: it serves all traffic now (was v2)" in said
    assert scenario.status(name)["currentModel"]["version"] == "v1"
    scenario.cluster.wait(lambda: stable_version(scenario) == "v1", 30, "the stable Deployment to run v1")

    # undo to the previous version that served (v2), through the canary, then promoted.
    assert "undo to v2: canary rollout started; v1 keeps serving" in kubectl("retrain", "undo", name, "-n", ns).stdout
    scenario.wait_status(name, paused("v2"), "the v2 undo canary to pause")
    # pause / resume a canary: the pause annotation (held even past the step's own pause).
    assert "canary v2 paused at 50%" in kubectl("retrain", "pause", name, "-n", ns).stdout
    assert scenario.cluster.policy(ns, name)["metadata"]["annotations"][names.ANNOTATION_PAUSE] == "true"
    assert "canary v2 resumed at 50%" in kubectl("retrain", "resume", name, "-n", ns).stdout
    assert names.ANNOTATION_PAUSE not in scenario.cluster.policy(ns, name)["metadata"]["annotations"]
    kubectl("retrain", "promote", name, "-n", ns)
    scenario.wait_status(name, current("v2"), "v2 to serve again")

    # Refusals: one line, exit 1, nothing changes.
    refused = kubectl("retrain", "undo", name, "--to-version", "v9", "-n", ns, ok=False)
    assert refused.returncode == 1 and "v9 is not in status.history (kept: v3, v2, v1)" in refused.stderr
    key = scenario.model_prefix(name, "v1") + "manifest.json"
    manifest = scenario.s3.get_object(Bucket=scenario.model_bucket, Key=key)["Body"].read()
    scenario.s3.put_object(Bucket=scenario.model_bucket, Key=key, Body=manifest.replace(b"{", b"{ ", 1))
    changed = kubectl("retrain", "undo", name, "--to-version", "v1", "-n", ns, ok=False)
    assert changed.returncode == 1 and "v1 at s3://" in changed.stderr and "changed since it was recorded" in \
        changed.stderr
    assert scenario.status(name)["currentModel"]["version"] == "v2" and stable_version(scenario) == "v2"
    events = {e.get("reason") for e in scenario.cluster.events(ns, name)}
    assert {"RetryStarted", "UndoApplied", "UndoStarted", "UndoRefused"} <= events

    # pause / resume runs: spec.suspend, as the policy's phase shows.
    assert "runs paused" in kubectl("retrain", "pause", name, "--runs", "-n", ns).stdout
    scenario.wait_status(name, lambda s: s.get("phase") == "Suspended", "the policy to be suspended")
    kubectl("retrain", "resume", name, "-n", ns)
    scenario.wait_status(name, lambda s: s.get("phase") != "Suspended", "the policy to resume")
    assert scenario.cluster.policy(ns, name)["spec"]["suspend"] is False
