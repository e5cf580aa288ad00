"""Every PromQL query of the Grafana dashboard, run by a real Prometheus that scrapes the real operator
and its real model servers after a short story, and the alert rules evaluated beside them.

Prometheus (Debian's `prometheus`, see tests/prometheus_bin.py) scrapes, every second, the operator's
--metrics-port as the job the alerts expect, and the model-server pods of the dev cluster with the
`namespace` and `pod` target labels a PodMonitor gives them (the dashboard joins on those).
The story: v1 trained and served, a drift check, a manual trigger skipped by minNewSamples, v2 rolled
out by a canary a person promotes, v3's canary paused at 50 %, traffic throughout and a batch the
servers capture. Then each dashboard query, its variables substituted (the story's namespace and
policy, and Grafana's All), must parse and return data, and the variables' own label queries must
list the story's namespace and policy; no alert fires until a second policy's run fails.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrain_contract.api import names
from retrain_devcluster import processes
from retrain_operator.adapters.kube import pod_ready
from retrain_operator.core import serving
from retrain_sandbox import dataset
from retrain_sandbox.cluster import LocalCluster
from retrain_sandbox.seaweed import SeaweedS3
from retrain_sandbox.traffic import Traffic

from ..prometheus_bin import binary
from ..unit.test_alert_rules import chart_rule, write_rules
from ..unit.test_grafana_dashboard import dashboard
from .conftest import Scenario, running_cluster
from .operator_metrics import free_port, serve_args

pytestmark = pytest.mark.integration
OPERATOR_JOB = "retrain-operator-metrics"  # the job the alerts select (prometheusRule.operatorJob)
STEPS = [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]  # the empty pause waits for `promote`
ANALYSIS = {"interval": "2s", "minRequests": 10, "maxLatencyRatio": 20}
ROWS = [{k: v for k, v in row.items() if k in dataset.FEATURES}
        for row in dataset.churn_table(200, seed=9).to_pylist()]
# Grafana's own variables, as it would set them for the default 24 h range and a 1 s scrape interval.
GRAFANA = {"$__rate_interval": "1m", "$__range": "86400s"}


@pytest.fixture(scope="module")
def cluster(seaweed: SeaweedS3, tmp_path_factory: pytest.TempPathFactory, metrics_port: int,
            devcluster: Any) -> Iterator[LocalCluster]:
    yield from running_cluster(seaweed, tmp_path_factory, devcluster, operator_args=serve_args(metrics_port))


class Prometheus:
    """`prometheus` on 127.0.0.1, in a session of its own that dies with this process (PDEATHSIG)."""

    def __init__(self, workdir: Path, config: dict[str, Any]):
        self.workdir, self.port = workdir, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.log = workdir / "prometheus.log"
        self.process = processes.spawn([
            binary("prometheus"), "--config.file", str(workdir / "prometheus.yml"),
            "--storage.tsdb.path", str(workdir / "data"), "--web.listen-address", f"127.0.0.1:{self.port}",
            "--log.level", "warn"], self.log, cwd=workdir)

    def get(self, path: str, **params: str | list[str]) -> dict[str, Any]:
        query = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:  # a query Prometheus refuses: 400 with the reason
            return json.loads(error.read())

    def query(self, expr: str) -> dict[str, Any]:
        return self.get("/api/v1/query", query=expr)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"prometheus exited:\n{self.log.read_text()}"
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus was not ready in {timeout} s:\n{self.log.read_text()}")

    def wait_for(self, expr: str, what: str, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.query(expr)
            if answer["status"] == "success" and answer["data"]["result"]:
                return answer["data"]["result"]
            time.sleep(0.5)
        raise AssertionError(f"no {what} in Prometheus after {timeout} s ({expr}): {self.query(expr)}\n"
                             f"targets: {json.dumps(self.get('/api/v1/targets')['data']['activeTargets'])}")

    def stop(self) -> None:
        processes.stop(self.process)


class PodTargets:
    """The model-server pods as a PodMonitor would have Prometheus scrape them: each Running pod's
    `http` port, with `namespace` and `pod` target labels. Debian's Prometheus is built without
    Kubernetes discovery, so a thread lists the pods every half second into a file_sd file."""

    def __init__(self, cluster: LocalCluster, namespace: str, policy: str, path: Path):
        self.cluster, self.namespace, self.policy, self.path = cluster, namespace, policy, path
        self._stop = threading.Event()
        self.write()
        self._thread = threading.Thread(target=self._run, name="pod-targets", daemon=True)
        self._thread.start()

    def write(self) -> None:
        groups = []
        for pod in self.cluster.pods(self.namespace, {names.LABEL_POLICY: self.policy}):
            ip = pod["status"].get("podIP")
            ports = [p for c in pod["spec"]["containers"] for p in c.get("ports") or [] if p.get("name") == "http"]
            if names.LABEL_ROLE in pod["metadata"]["labels"] and ip and ports \
                    and pod["status"].get("phase") == "Running":
                groups.append({"targets": [f"{ip}:{ports[0]['containerPort']}"],
                               "labels": {"namespace": self.namespace, "pod": pod["metadata"]["name"]}})
        staged = self.path.with_suffix(".tmp")
        staged.write_text(json.dumps(groups))
        staged.replace(self.path)  # Prometheus never reads half a file

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(Exception):  # the API server is busy: the next look will do
                self.write()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def scrape_config(metrics_port: int, pods: Path, rules: Path) -> dict[str, Any]:
    """The operator as the job the alerts select; the model servers from the pod list."""
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": OPERATOR_JOB, "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]},
            {"job_name": "model-servers", "file_sd_configs": [{"files": [str(pods)], "refresh_interval": "1s"}]}],
    }


def substitute(expr: str, namespace: str, policy: str) -> str:
    for variable, value in {**GRAFANA, "$namespace": namespace, "$policy": policy}.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr
    return expr


def targets() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in dashboard()["panels"] for target in panel.get("targets", [])]


def post_rows(address: str, rows: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(f"http://{address}/predict", data=json.dumps({"rows": rows}).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def serve_v1(scenario: Scenario, name: str) -> None:
    """v1 trained and served, and its drift check."""
    ns = scenario.namespace
    scenario.load_history(rows=3000)
    scenario.put("recent/batch-1.parquet", dataset.to_parquet(dataset.churn_table(1000, seed=21)))
    spec = scenario.policy_spec(
        serving={"replicas": 1, "router": {"type": "replicas"},
                 "capture": {"uri": f"s3://{scenario.data_bucket}/captured/", "fraction": 1.0}},
        promotion={"canary": {"steps": STEPS, "analysis": ANALYSIS}},
        triggers={"drift": {"data": f"s3://{scenario.data_bucket}/recent/", "window": "24h", "interval": "1h"},
                  "minNewSamples": 1000})
    scenario.cluster.apply_policy(ns, name, spec, annotations={names.ANNOTATION_TRIGGER: "1"})
    scenario.wait_recorded(name, "v1")
    scenario.cluster.wait(lambda: (scenario.cluster.deployment(ns, serving.deployment_name(name, serving.STABLE))
                                   or {}).get("status", {}).get("readyReplicas") == 1, 60, "the v1 model server")
    scenario.wait_status(name, lambda s: (s.get("drift") or {}).get("checkId") == "d1", "the first drift check")


def roll_out(scenario: Scenario, name: str) -> None:
    """A trigger minNewSamples skips, v2 rolled out and promoted by hand, v3's canary paused at 50 %."""
    ns = scenario.namespace
    scenario.cluster.trigger(ns, name, "2")  # no new rows since v1: minNewSamples skips it
    scenario.wait_status(name, lambda s: s.get("lastManualTrigger") == "2", "the skipped trigger")

    scenario.put("churn/incoming/batch-1.parquet", dataset.to_parquet(dataset.churn_table(1500, seed=5)))
    scenario.cluster.trigger(ns, name, "3")
    scenario.wait_status(name, lambda s: (s.get("rollout") or {}).get("reason") == "AwaitingPromotion",
                         "the v2 canary to wait for a person", timeout=120)
    scenario.cluster.patch_policy(ns, name, {"metadata": {"annotations": {names.ANNOTATION_PROMOTE: "v2"}}})
    scenario.wait_status(name, lambda s: (s.get("rollout") or {}).get("phase") == "Succeeded", "v2's promotion",
                         timeout=90)

    scenario.put("churn/incoming/batch-2.parquet", dataset.to_parquet(dataset.churn_table(1500, seed=6)))
    scenario.cluster.trigger(ns, name, "4")
    scenario.wait_status(name, lambda s: (s.get("rollout") or {}).get("version") == "v3"
                         and s["rollout"].get("reason") == "AwaitingPromotion", "the v3 canary to pause", timeout=120)


@pytest.mark.timeout(900)
def test_every_dashboard_query_runs_in_prometheus_and_returns_data(scenario: Scenario, metrics_port: int,
                                                                   tmp_path: Path):
    ns, name = scenario.namespace, "churn"
    rules = write_rules(chart_rule(), tmp_path)
    pods = PodTargets(scenario.cluster, ns, name, tmp_path / "model-servers.json")
    prometheus = Prometheus(tmp_path, scrape_config(metrics_port, pods.path, rules))
    traffic: Traffic | None = None
    try:
        prometheus.wait_ready()
        prometheus.wait_for(f'up{{job="{OPERATOR_JOB}"}} == 1', "scrape of the operator")
        serve_v1(scenario, name)
        traffic = Traffic(scenario.cluster, ns, name, ROWS, rate=40, router="replicas").start()
        roll_out(scenario, name)
        # A batch each server captures at once (1,000 rows: its flush size), so the capture counters move.
        servers = [pod for pod in scenario.cluster.pods(ns, {names.LABEL_POLICY: name})
                   if names.LABEL_ROLE in pod["metadata"]["labels"] and pod_ready(pod)
                   and not pod["metadata"].get("deletionTimestamp")]
        assert len(servers) == 2, [pod["metadata"]["name"] for pod in servers]  # stable v2, canary v3
        for pod in servers:
            post_rows(f"{pod['status']['podIP']}:8080", [ROWS[i % len(ROWS)] for i in range(1000)])
        prometheus.wait_for(f'sum by (version) (retrain_serving_captured_rows_total{{namespace="{ns}"}}) >= 1000',
                            "captured rows")
        prometheus.wait_for(f'retrain_canary_weight_ratio{{namespace="{ns}", policy="{name}"}} == 0.5',
                            "the v3 canary at 50 %")
        prometheus.wait_for(f'count(sum by (pod) (rate(retrain_serving_requests_total{{namespace="{ns}"}}[1m])) > 0)'
                            ' >= 2', "traffic to both model servers")

        # The variables: Grafana's label_values(metric, label) is Prometheus' label values API.
        namespaces = prometheus.get("/api/v1/label/namespace/values", **{"match[]": "retrain_policy_phase"})
        assert ns in namespaces["data"]
        policies = prometheus.get("/api/v1/label/policy/values",
                                  **{"match[]": f'retrain_policy_phase{{namespace=~"{ns}"}}'})
        assert policies["data"] == [name]

        empty, failed = [], []
        for title, expr in targets():
            for namespace, policy in ((ns, name), (".*", ".*")):
                answer = prometheus.query(substitute(expr, namespace, policy))
                if answer["status"] != "success":
                    failed.append((title, expr, answer.get("error")))
                elif not answer["data"]["result"]:
                    empty.append((title, namespace))
                elif namespace == ns:  # the panel joined and filtered to the story's policy
                    found = {r["metric"].get("policy") for r in answer["data"]["result"]} - {None}
                    assert found <= {name}, (title, found)
        assert failed == [], failed
        assert empty == [], f"panels without data: {empty}"

        weight = prometheus.query(substitute(next(e for t, e in targets() if t == "Canary weight"), ns, name))
        assert float(weight["data"]["result"][0]["value"][1]) == 0.5
        # v2's rollout ended while Prometheus watched: counted from 0, so increase() sees it.
        ended = prometheus.query(substitute(next(e for t, e in targets() if t.startswith("Rollouts in")), ns, name))
        assert {r["metric"]["outcome"]: round(float(r["value"][1])) for r in ended["data"]["result"]} == {
            "Succeeded": 1, "RolledBack": 0, "Aborted": 0}, ended
        duration = prometheus.query(substitute(next(e for t, e in targets() if t.startswith("Training duration")),
                                               ns, name))
        assert all(math.isfinite(float(r["value"][1])) for r in duration["data"]["result"]), duration

        # The alert rules loaded and evaluate against these series without an error, and a healthy story
        # fires none of them.
        groups = prometheus.get("/api/v1/rules")["data"]["groups"]
        evaluated = [rule for group in groups for rule in group["rules"]]
        assert len(evaluated) == 7 and all(r["health"] == "ok" for r in evaluated), evaluated
        firing = [a for a in prometheus.get("/api/v1/alerts")["data"]["alerts"] if a["state"] == "firing"]
        assert firing == []

        # A run that fails (the data has no column `loyalty_tier`) fires RetrainRunFailed for its policy alone,
        # with the summary and runbook a person reads (README "Alerts" shows this output).
        broken = scenario.policy_spec()
        broken["model"]["features"] = [*dataset.FEATURES, "loyalty_tier"]
        scenario.cluster.apply_policy(ns, "broken", broken, annotations={names.ANNOTATION_TRIGGER: "1"})
        scenario.wait_status("broken", lambda s: (s.get("lastRun") or {}).get("phase") == "Failed", "the failed run",
                             timeout=120)
        prometheus.wait_for(f'ALERTS{{alertname="RetrainRunFailed", alertstate="firing", namespace="{ns}", '
                            'policy="broken"}', "the RetrainRunFailed alert", timeout=60)
        alerts = [a for a in prometheus.get("/api/v1/alerts")["data"]["alerts"] if a["state"] == "firing"]
        print(json.dumps(alerts, indent=2))
        assert [(a["labels"]["alertname"], a["labels"]["policy"]) for a in alerts] == [("RetrainRunFailed", "broken")]
        assert alerts[0]["labels"]["severity"] and alerts[0]["annotations"]["runbook_url"].endswith("#retrainrunfailed")
    finally:
        if traffic is not None:
            traffic.stop()
        prometheus.stop()
        pods.stop()

