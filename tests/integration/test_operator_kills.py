"""The operator SIGKILLed at each named API request of a run and of a rollout, and started again.

A proxy in front of the real API server kills the operator's process group either just before a
request is forwarded (it never reaches the server) or just after the server answered it (the
write happened; the operator never learned it). A new operator then starts from what the cluster
and S3 hold, with nothing of the old one's memory. Each case asserts the end state: exactly the
expected Jobs, every version status records has its own manifest in S3 (and every manifest there
is recorded), a history without duplicates, no weight left on a canary, and prints how long the
recovery took (restart to end state) for docs/reliability.md.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pytest

from retrain_contract.api import names
from retrain_devcluster.faultproxy import Fault, FaultProxy
from retrain_operator.core import rollout, serving
from retrain_sandbox import dataset
from retrain_sandbox.cluster import LocalCluster
from retrain_sandbox.seaweed import SeaweedS3
from retrain_sandbox.traffic import Traffic

from .conftest import Scenario, running_cluster
from .operator_metrics import free_port, sample, scrape, serve_args
from .test_canary_rollout import ROWS, deployment, failing_prometheus, http_route, route_weights  # noqa: F401

pytestmark = pytest.mark.integration

STATUS = r"/namespaces/{ns}/retrainpolicies/{name}/status$"
JOBS = r"/namespaces/{ns}/jobs$"
EVENTS = r"/namespaces/{ns}/events$"
# Bodies are matched by regex, so a merge patch and a JSON patch `add /status` both match.
RUN_STARTED = r'"activeRun":\s*\{'  # a status write that records a running Job
RUN_RECORDED = r'"reason":\s*"TrainingSucceeded"'  # the write that records the finished run
STEPS = [{"setWeight": 30}, {"pause": {"duration": "2s"}}, {"setWeight": 100}]
ANALYSIS = {"interval": "2s", "minRequests": 10, "maxLatencyRatio": 20}
RECOVERY: dict[str, float] = {}  # case -> seconds from the restart to the end state
# A rollout case trains twice and starts model servers: minutes on a loaded 2-core machine.
ROLLOUT_TIMEOUT = pytest.mark.timeout(600)
METRICS_PORT = free_port()  # each restarted operator serves its metrics here


@dataclass(frozen=True)
class Kill:
    """Where the operator dies: the request (method, path regex, optional body regex), before or after."""

    method: str
    path: str
    when: str
    body: str | None = None


@pytest.fixture(scope="module")
def cluster(seaweed: SeaweedS3, tmp_path_factory: pytest.TempPathFactory, devcluster: Any,
            proxy: FaultProxy) -> Iterator[LocalCluster]:
    """This module's operator talks to the API server only through the proxy, across its restarts."""
    try:
        yield from running_cluster(seaweed, tmp_path_factory, devcluster, operator_server=proxy.url,
                                   operator_args=serve_args(METRICS_PORT))
    finally:
        if RECOVERY:
            print("\nrecovery after SIGKILL (restart -> end state):")
            for case, seconds in RECOVERY.items():
                print(f"  {case}: {seconds:.1f} s")


@pytest.fixture()
def scenario(cluster: LocalCluster, s3: Any, proxy: FaultProxy) -> Iterator[Scenario]:
    made = Scenario(cluster, s3)
    yield made
    proxy.faults.clear()
    if cluster.operator is None or cluster.operator.poll() is not None:
        cluster.restart_operator()  # a case that failed before its restart leaves the next one an operator
    cluster.delete_namespace(made.namespace)


def arm(proxy: FaultProxy, cluster: LocalCluster, kill: Kill, namespace: str, name: str) -> threading.Event:
    """One SIGKILL of the operator at the first request that matches; the Event is set once it was sent."""
    fired = threading.Event()

    def action() -> None:
        cluster.kill_operator()
        fired.set()

    path = kill.path.format(ns=re.escape(namespace), name=re.escape(name))
    proxy.add(Fault(method=kill.method, path=path, body=kill.body, action=action, when=kill.when, times=1))
    return fired


def restart_after(fired: threading.Event, proxy: FaultProxy, cluster: LocalCluster, timeout: float) -> float:
    """Wait for the kill, start a new operator on the same proxy with no faults; when it started."""
    if not fired.wait(timeout):
        raise TimeoutError(f"the kill did not fire within {timeout}s\n{cluster.log_tail()}")
    proxy.faults.clear()
    cluster.restart_operator()
    return time.monotonic()


def settle_then_jobs(scenario: Scenario, name: str) -> list[str]:
    """Job names once the (new) operator has reconciled the policy twice more: a late duplicate would show.

    The operator counts its reconciles per policy (retrain_reconciles_total); its reads come from watches."""
    def reconciles() -> tuple[float] | None:
        try:
            text = scrape(METRICS_PORT)
        except OSError:  # a just restarted operator does not serve its metrics yet
            return None
        return (sample(text, "retrain_reconciles_total", namespace=scenario.namespace, policy=name) or 0.0,)

    (before,) = scenario.cluster.wait(reconciles, 60, "the operator's metrics")
    scenario.cluster.wait(lambda: (reconciles() or (0.0,))[0] >= before + 2, 60, "two more reconciles")
    return sorted(job["metadata"]["name"] for job in scenario.cluster.jobs(scenario.namespace))


def assert_status_matches_s3(scenario: Scenario, name: str, status: dict[str, Any]) -> list[str]:
    """Every version status records (history, currentModel) is this policy's own, finished version in S3,
    with the digest status pinned; every finished version in S3 is recorded. Returns history's versions."""
    uid = scenario.cluster.policy(scenario.namespace, name)["metadata"]["uid"]
    history = status.get("history") or []
    versions = [entry["version"] for entry in history]
    assert len(versions) == len(set(versions)), f"duplicate versions in history: {versions}"
    recorded = [*history, *([status["currentModel"]] if status.get("currentModel") else [])]
    parents = set()
    for entry in recorded:
        uri = urlparse(entry["uri"])  # as status says: the layout is the operator's business
        assert uri.scheme == "s3" and uri.path.endswith(f"/{entry['version']}/"), entry
        key = uri.path.lstrip("/") + "manifest.json"
        body = scenario.s3.get_object(Bucket=uri.netloc, Key=key)["Body"].read()
        manifest = json.loads(body)
        assert manifest["version"] == entry["version"], (key, manifest["version"])
        assert (manifest.get("policy") or {}).get("uid") in (None, uid), f"foreign version at {key}"
        assert entry.get("manifestSha256") == hashlib.sha256(body).hexdigest(), f"{key} differs from its pin"
        parents.add((uri.netloc, uri.path.lstrip("/").removesuffix(f"{entry['version']}/")))
    in_s3 = set()
    for bucket, prefix in parents:  # the folder of the recorded versions: what else finished there
        listed = scenario.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents") or []
        in_s3 |= {key[len(prefix):].split("/")[0] for key in (o["Key"] for o in listed)
                  if re.fullmatch(re.escape(prefix) + r"[^/]+/manifest\.json", key)}
    assert in_s3 == set(versions), f"S3 holds {sorted(in_s3)}, status records {versions}"
    return versions


def events_about(scenario: Scenario, name: str, reason: str, version: str) -> int:
    return sum(1 for e in scenario.cluster.events(scenario.namespace, name)
               if e.get("reason") == reason and re.match(rf"{version}\b", e.get("message", "")))


def record(case: str, started: float, record_property: Any) -> float:
    seconds = time.monotonic() - started
    RECOVERY[case] = seconds
    record_property("recovery_seconds", round(seconds, 2))
    print(f"\nRECOVERY {case}: {seconds:.1f} s from restart to end state")
    return seconds


# -- a run ----------------------------------------------------------------------------------------

def job_exists(scenario: Scenario) -> bool:
    return "churn-v1" in [job["metadata"]["name"] for job in scenario.cluster.jobs(scenario.namespace)]


def run_started(scenario: Scenario) -> bool:
    return (scenario.status("churn").get("activeRun") or {}).get("version") == "v1"


def run_recorded(scenario: Scenario) -> bool:
    return (scenario.status("churn").get("lastRun") or {}).get("version") == "v1"


def started_event(scenario: Scenario) -> bool:
    return events_about(scenario, "churn", "RunStarted", "v1") > 0


# Each kill, with what shows whether the killed request's write landed: it did after, not before.
RUN_KILLS = {
    "before-job-post": (Kill("POST", JOBS, "before"), job_exists),
    "after-job-post": (Kill("POST", JOBS, "after"), job_exists),
    "after-run-started-status": (Kill("PATCH", STATUS, "after", RUN_STARTED), run_started),
    "before-run-recorded-status": (Kill("PATCH", STATUS, "before", RUN_RECORDED), run_recorded),
    "after-run-recorded-status": (Kill("PATCH", STATUS, "after", RUN_RECORDED), run_recorded),
    "after-run-started-event": (Kill("POST", EVENTS, "after", r'"reason":\s*"RunStarted"'), started_event),
}


@pytest.mark.parametrize("case", list(RUN_KILLS))
def test_a_run_survives_a_kill(case: str, scenario: Scenario, proxy: FaultProxy, record_property: Any):
    ns, name = scenario.namespace, "churn"
    kill, landed = RUN_KILLS[case]
    fired = arm(proxy, scenario.cluster, kill, ns, name)
    scenario.load_history(rows=1500)
    scenario.cluster.apply_policy(ns, name, scenario.policy_spec(), annotations={names.ANNOTATION_TRIGGER: "1"})
    if not fired.wait(180):
        raise TimeoutError(f"the kill did not fire within 180s\n{scenario.cluster.log_tail()}")
    assert landed(scenario) == (kill.when == "after")  # the operator is dead: nothing moves meanwhile
    started = restart_after(fired, proxy, scenario.cluster, timeout=1)
    status = scenario.wait_recorded(name, "v1", timeout=180)
    record(case, started, record_property)

    assert status["lastRun"]["phase"] == "Succeeded", status["lastRun"]
    assert status["currentModel"]["version"] == "v1"
    assert status.get("runCounter") == 1, status.get("runCounter")  # no second run started by the restart
    assert settle_then_jobs(scenario, name) == ["churn-v1"]  # no duplicate Job
    assert assert_status_matches_s3(scenario, name, scenario.status(name)) == ["v1"]
    # Events go before the status write and are named by the decision: a repeat does not double them.
    assert events_about(scenario, name, "RunStarted", "v1") == 1
    assert events_about(scenario, name, "RunSucceeded", "v1") == 1


# -- a rollout ------------------------------------------------------------------------------------


def serve_v1(scenario: Scenario, name: str, spec: dict) -> None:
    scenario.load_history(rows=1500)
    scenario.cluster.apply_policy(scenario.namespace, name, spec, annotations={names.ANNOTATION_TRIGGER: "1"})
    scenario.wait_recorded(name, "v1", timeout=180)
    scenario.cluster.wait(lambda: (deployment(scenario, name, serving.STABLE) or {})
                          .get("status", {}).get("readyReplicas") == 1, 120, "the stable model server")


def train_v2(scenario: Scenario, name: str) -> None:
    scenario.put("churn/incoming/batch-1.parquet", dataset.to_parquet(dataset.churn_table(1500, seed=5)))
    scenario.cluster.trigger(scenario.namespace, name, "2")


def rollout_spec(scenario: Scenario, router: dict, analysis: dict | None = None) -> dict:
    return scenario.policy_spec(serving={"replicas": 1, "router": router},
                                promotion={"canary": {"steps": STEPS, "analysis": {**ANALYSIS, **(analysis or {})}}})


def wait_rollout_end(scenario: Scenario, name: str) -> dict:
    return scenario.wait_status(name, lambda s: (s.get("rollout") or {}).get("version") == "v2"
                                and (s.get("rollout") or {}).get("phase") in rollout.FINAL,
                                "the v2 rollout to end", timeout=240)


def assert_serving(scenario: Scenario, name: str, version: str) -> None:
    """The stable Deployment serves `version` with all its pods; the canary has none left."""
    stable = scenario.cluster.wait(
        lambda: (lambda d: d if serving.deployment_version(d) == version else None)(
            deployment(scenario, name, serving.STABLE)), 120, f"the stable Deployment to serve {version}")
    assert stable["spec"]["replicas"] == 1
    assert deployment(scenario, name, serving.CANARY)["spec"]["replicas"] == 0


def assert_promoted_v2(scenario: Scenario, proxy: FaultProxy, name: str, status: dict) -> None:
    """The end state of a rollout of v2 that survived a kill: v2 serves, two Jobs, status matching S3."""
    assert status["rollout"]["phase"] == "Succeeded", status["rollout"]
    assert status["currentModel"]["version"] == "v2"
    assert_serving(scenario, name, "v2")
    assert settle_then_jobs(scenario, name) == [f"{name}-v1", f"{name}-v2"]
    assert assert_status_matches_s3(scenario, name, scenario.status(name)) == ["v2", "v1"]


@ROLLOUT_TIMEOUT
def test_a_rollout_survives_a_kill_after_a_route_weight_change(scenario: Scenario, proxy: FaultProxy,
                                                               record_property: Any):
    """The route says 70/30, status still says 0: the new operator continues from the route as it is."""
    ns, name = scenario.namespace, "canary"
    http_route(scenario, name)
    serve_v1(scenario, name, rollout_spec(scenario, {"type": "gatewayAPI", "httpRoute": name}))
    fired = arm(proxy, scenario.cluster, Kill("PATCH", r"/namespaces/{ns}/httproutes/{name}$", "after",
                                              r'"weight":\s*30\b'), ns, name)
    traffic = Traffic(scenario.cluster, ns, name, ROWS, rate=40, router="gatewayAPI", route=name).start()
    try:
        train_v2(scenario, name)
        started = restart_after(fired, proxy, scenario.cluster, timeout=240)
        assert route_weights(scenario, name) == (70, 30)  # the write the old operator never heard back about
        status = wait_rollout_end(scenario, name)
        record("after-route-weight-30", started, record_property)
    finally:
        traffic.stop()
    assert route_weights(scenario, name) == (100, 0)
    assert_promoted_v2(scenario, proxy, name, status)
    assert events_about(scenario, name, "ModelPromoted", "v2") == 1


@ROLLOUT_TIMEOUT
def test_a_rollback_survives_a_kill_after_the_canary_is_scaled_down(scenario: Scenario, proxy: FaultProxy,
                                                                    failing_prometheus: str,  # noqa: F811
                                                                    record_property: Any):
    """The analysis failed and the canary went to zero pods, but status still says Progressing."""
    ns, name = scenario.namespace, "rollback"
    spec = rollout_spec(scenario, {"type": "replicas"}, analysis={
        "prometheusUrl": failing_prometheus,
        "prometheus": [{"name": "business-errors", "query": 'sum(rate(errors{version="{{canaryVersion}}"}[1m]))',
                        "successCondition": "result < 0.1"}]})
    serve_v1(scenario, name, spec)
    canary = re.escape(serving.deployment_name(name, serving.CANARY))
    fired = arm(proxy, scenario.cluster, Kill("PATCH", rf"/namespaces/{{ns}}/deployments/{canary}$", "after",
                                              r'"replicas":\s*0\b'), ns, name)
    traffic = Traffic(scenario.cluster, ns, name, ROWS, rate=40, router="replicas").start()
    try:
        train_v2(scenario, name)
        started = restart_after(fired, proxy, scenario.cluster, timeout=240)
        assert (scenario.status(name).get("rollout") or {}).get("phase") not in rollout.FINAL  # not recorded
        status = wait_rollout_end(scenario, name)
        record("after-rollback-canary-scale-down", started, record_property)
    finally:
        traffic.stop()
    assert status["rollout"]["phase"] == "RolledBack", status["rollout"]
    assert status["rollout"]["reason"] == "AnalysisFailed"
    assert status["currentModel"]["version"] == "v1"
    assert status["history"][0]["version"] == "v2" and status["history"][0]["rejected"] == "AnalysisFailed"
    scenario.cluster.wait(lambda: (deployment(scenario, name, serving.CANARY) or {})
                          .get("status", {}).get("replicas", 0) == 0, 30, "the canary to scale to zero")
    assert_serving(scenario, name, "v1")
    assert settle_then_jobs(scenario, name) == ["rollback-v1", "rollback-v2"]
    assert assert_status_matches_s3(scenario, name, scenario.status(name)) == ["v2", "v1"]


@ROLLOUT_TIMEOUT
def test_a_promotion_survives_a_kill_after_stable_is_switched(scenario: Scenario, proxy: FaultProxy,
                                                              record_property: Any):
    """The stable Deployment was patched to v2 (the last canary step), status not yet: the new operator
    finishes the promotion once, without a second one or a canary left with weight."""
    ns, name = scenario.namespace, "promote"
    http_route(scenario, name)
    serve_v1(scenario, name, rollout_spec(scenario, {"type": "gatewayAPI", "httpRoute": name}))
    stable = re.escape(serving.deployment_name(name, serving.STABLE))
    label = re.escape(json.dumps({names.LABEL_MODEL_VERSION: "v2"})[1:-1])
    fired = arm(proxy, scenario.cluster, Kill("PATCH", rf"/namespaces/{{ns}}/deployments/{stable}$", "after",
                                              label.replace(r"\ ", r"\s*")), ns, name)
    traffic = Traffic(scenario.cluster, ns, name, ROWS, rate=40, router="gatewayAPI", route=name).start()
    try:
        train_v2(scenario, name)
        started = restart_after(fired, proxy, scenario.cluster, timeout=240)
        status = wait_rollout_end(scenario, name)
        record("after-stable-switched-to-v2", started, record_property)
    finally:
        traffic.stop()
    assert route_weights(scenario, name) == (100, 0)
    assert_promoted_v2(scenario, proxy, name, status)
    assert events_about(scenario, name, "ModelPromoted", "v2") == 1


@ROLLOUT_TIMEOUT
def test_a_rollout_start_survives_a_kill_before_its_status_write(scenario: Scenario, proxy: FaultProxy,
                                                                 record_property: Any):
    """v2 verified, its Events posted and the canary Deployment created, but status never heard of the
    rollout: the new operator decides the same again, once (no second rollout, Event or Job)."""
    ns, name = scenario.namespace, "restart"
    serve_v1(scenario, name, rollout_spec(scenario, {"type": "replicas"}))
    fired = arm(proxy, scenario.cluster, Kill("PATCH", STATUS, "before", r'"message":\s*"v2 passed the gates'),
                ns, name)
    traffic = Traffic(scenario.cluster, ns, name, ROWS, rate=40, router="replicas").start()
    try:
        train_v2(scenario, name)
        if not fired.wait(240):
            raise TimeoutError(f"the kill did not fire within 240s\n{scenario.cluster.log_tail()}")
        assert not scenario.status(name).get("rollout")  # the write never landed
        assert deployment(scenario, name, serving.CANARY) is not None  # what came before it did
        started = restart_after(fired, proxy, scenario.cluster, timeout=1)
        status = wait_rollout_end(scenario, name)
        record("before-rollout-started-status", started, record_property)
    finally:
        traffic.stop()
    assert status.get("runCounter") == 2
    assert_promoted_v2(scenario, proxy, name, status)
    for reason in ("RunSucceeded", "RolloutStarted", "ModelPromoted"):
        assert events_about(scenario, name, reason, "v2") == 1, reason
