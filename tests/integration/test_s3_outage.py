"""S3 going away and coming back, and a trainer killed between its uploads, on the real control plane.

The policies here reach SeaweedFS through a relay (tests/s3relay.py) that the test stops for 30 s,
as when the S3 service is restarted or its load balancer drains: new connections are refused and
requests in flight fail, for the operator and the trainer pods alike. Each case asserts the end
state (one Job, the version status records is the finished one in S3 and nothing else is, the
serving model never replaced by anything unverified) and prints how long after S3 came back it
was reached, for docs/reliability.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from retrain_contract.api import names
from retrain_contract.artifacts.uris import parse_s3_uri
from retrain_operator.core import rollout, serving
from retrain_operator.core.conditions import get_condition
from retrain_sandbox import dataset
from retrain_sandbox.traffic import Traffic

from ..s3relay import S3Relay
from .conftest import Scenario
from .test_canary_rollout import ROWS, deployment
from .test_operator_kills import assert_status_matches_s3

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

OUTAGE = 30.0  # seconds S3 is away
STEPS = [{"setWeight": 30}, {"pause": {"duration": "2s"}}, {"setWeight": 100}]
ANALYSIS = {"interval": "2s", "minRequests": 10, "maxLatencyRatio": 20}


@pytest.fixture()
def relay(s3_relay: S3Relay) -> Any:
    yield s3_relay
    s3_relay.rules.clear()
    s3_relay.up()  # a failed case never leaves S3 away for the next one


def through(scenario: Scenario, relay: S3Relay, **overrides: Any) -> dict:
    spec = scenario.policy_spec(**overrides)
    spec["storage"]["endpoint"] = relay.endpoint
    return spec


def ready(scenario: Scenario, name: str) -> dict:
    return get_condition(scenario.status(name).get("conditions"), "Ready") or {}


def outage(relay: S3Relay, seconds: float = OUTAGE) -> threading.Thread:
    """S3 away now, back after `seconds` (in the background); join the thread to wait for its return."""
    relay.down()

    def back() -> None:
        time.sleep(seconds)
        relay.up()
    thread = threading.Thread(target=back, daemon=True)
    thread.start()
    return thread


def kill_pods_processes(pod: str) -> int:
    """SIGKILL every process of a pod on this node (the kubelet sets HOSTNAME to the pod's name), as the
    OOM killer or a node losing power would: the container ends with 137 and nothing runs its handlers."""
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        config = names.ENV_RUN_CONFIG.encode() + b"="
        if f"HOSTNAME={pod}".encode() in environ and any(item.startswith(config) for item in environ):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def files_match_manifest(scenario: Scenario, uri: str) -> None:
    """Every file the manifest lists is in S3 with the checksum it states: the retry's files, not a mix."""
    bucket, key = parse_s3_uri(uri)
    manifest = json.loads(scenario.s3.get_object(Bucket=bucket, Key=key + "manifest.json")["Body"].read())
    for name, described in manifest["files"].items():
        body = scenario.s3.get_object(Bucket=bucket, Key=key + name)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == described["sha256"], name


def changes(status: dict, since: float, seen: list[tuple[float, tuple]]) -> str | None:
    """Note each change of the rollout's phase and weight and of Ready's reason; the rollout's phase."""
    state = status.get("rollout") or {}
    now = (state.get("phase"), state.get("weight"), (get_condition(status.get("conditions"), "Ready") or {})
           .get("reason"))
    if not seen or seen[-1][1] != now:
        seen.append((round(time.monotonic() - since, 1), now))
    return state.get("phase")


def test_a_run_finishes_after_s3_was_away_for_30s(scenario: Scenario, relay: S3Relay):
    """S3 goes away as the trainer reads its data: the trainer fails with a storage error (retryable), the
    Job retries, the operator says StorageUnreachable meanwhile, and the run finishes once S3 is back."""
    name = "churn"
    scenario.load_history(rows=1500)
    went = threading.Event()
    relay.on_request("GET", rf"/{scenario.data_bucket}/churn/history/part-", lambda: (outage(relay), went.set()))
    spec = through(scenario, relay, training={"strategy": "full", "backoffLimit": 4})
    scenario.cluster.apply_policy(scenario.namespace, name, spec, annotations={names.ANNOTATION_TRIGGER: "1"})
    assert went.wait(120), scenario.cluster.log_tail()
    back_at = time.monotonic() + OUTAGE
    scenario.cluster.wait(lambda: ready(scenario, name).get("reason") == "StorageUnreachable", OUTAGE,
                          "Ready to say StorageUnreachable while S3 is away")
    assert not (scenario.status(name).get("lastRun") or {}).get("version")  # nothing recorded while away
    status = scenario.wait_recorded(name, "v1", timeout=240)
    recovered = time.monotonic() - back_at
    print(f"\nRECOVERY s3-away-during-run: v1 recorded {recovered:.1f} s after S3 came back")

    assert status["lastRun"]["phase"] == "Succeeded", status["lastRun"]
    assert status["currentModel"]["version"] == "v1"
    jobs = scenario.cluster.jobs(scenario.namespace)
    assert [job["metadata"]["name"] for job in jobs] == ["churn-v1"]
    assert (jobs[0].get("status") or {}).get("failed", 0) >= 1, jobs[0].get("status")  # it did fail, and retried
    assert assert_status_matches_s3(scenario, name, status) == ["v1"]
    files_match_manifest(scenario, status["currentModel"]["uri"])
    scenario.wait_status(name, lambda s: (get_condition(s.get("conditions"), "Ready") or {}).get("status") == "True",
                         "Ready again", timeout=60)


def test_the_trainer_killed_before_its_manifest_is_never_a_finished_version(scenario: Scenario, relay: S3Relay):
    """The trainer dies after uploading the model, metrics and profile, before the manifest: the half
    version is not recorded; the Job's retry writes a whole one, and the manifest describes its files."""
    name = "churn"
    scenario.load_history(rows=1500)
    killed: list[int] = []

    def kill_trainer() -> None:
        pods = scenario.cluster.pods(scenario.namespace, {"job-name": "churn-v1"})
        running = [p["metadata"]["name"] for p in pods if (p.get("status") or {}).get("phase") == "Running"]
        killed.extend(kill_pods_processes(pod) for pod in running)

    relay.on_request("PUT", r"/v1/manifest\.json", kill_trainer)
    spec = through(scenario, relay, training={"strategy": "full", "backoffLimit": 1})
    scenario.cluster.apply_policy(scenario.namespace, name, spec, annotations={names.ANNOTATION_TRIGGER: "1"})
    scenario.cluster.wait(lambda: killed or None, 120, "the trainer to reach its manifest upload")
    assert sum(killed) >= 1, "no trainer process found to kill"
    prefix = scenario.model_prefix(name, "v1")
    keys = {o["Key"][len(prefix):] for o in scenario.s3.list_objects_v2(
        Bucket=scenario.model_bucket, Prefix=prefix).get("Contents") or []}
    assert "model.joblib" in keys and "manifest.json" not in keys, keys  # a half version, as a crash leaves it

    status = scenario.wait_recorded(name, "v1", timeout=180)
    assert status["lastRun"]["phase"] == "Succeeded", status["lastRun"]
    jobs = scenario.cluster.jobs(scenario.namespace)
    assert [job["metadata"]["name"] for job in jobs] == ["churn-v1"]
    assert jobs[0]["status"].get("failed") == 1 and jobs[0]["status"].get("succeeded") == 1, jobs[0]["status"]
    assert assert_status_matches_s3(scenario, name, status) == ["v1"]
    files_match_manifest(scenario, status["currentModel"]["uri"])


def test_a_canary_holds_while_s3_is_away_and_finishes_after(scenario: Scenario, relay: S3Relay):
    """S3 goes away while v2 is the canary at 30 %: the running servers keep serving what they loaded,
    nothing is rolled back for S3's sake, and the rollout ends with v2 promoted and no weight left."""
    name = "canary"
    spec = through(scenario, relay, serving={"replicas": 1, "router": {"type": "replicas"}},
                   promotion={"canary": {"steps": STEPS, "analysis": ANALYSIS}})
    scenario.load_history(rows=1500)
    scenario.cluster.apply_policy(scenario.namespace, name, spec, annotations={names.ANNOTATION_TRIGGER: "1"})
    scenario.wait_recorded(name, "v1", timeout=180)
    scenario.cluster.wait(lambda: (deployment(scenario, name, serving.STABLE) or {})
                          .get("status", {}).get("readyReplicas") == 1, 120, "the stable model server")
    traffic = Traffic(scenario.cluster, scenario.namespace, name, ROWS, rate=40, router="replicas").start()
    try:
        scenario.put("churn/incoming/batch-1.parquet", dataset.to_parquet(dataset.churn_table(1500, seed=5)))
        scenario.cluster.trigger(scenario.namespace, name, "2")
        scenario.wait_status(name, lambda s: (s.get("rollout") or {}).get("version") == "v2"
                             and (s.get("rollout") or {}).get("weight") == 30, "the v2 canary at 30 %", timeout=240)
        back = outage(relay)
        back_at = time.monotonic() + OUTAGE
        seen: list[tuple[float, tuple]] = []
        while back.is_alive():  # while S3 is away: never rolled back
            assert changes(scenario.status(name), back_at, seen) != rollout.ROLLED_BACK, seen
            time.sleep(0.5)
        status = scenario.wait_status(name, lambda s: changes(s, back_at, seen) in rollout.FINAL,
                                      "the rollout to end", timeout=240)
        recovered = time.monotonic() - back_at
        print(f"\nRECOVERY s3-away-during-canary: rollout ended {recovered:.1f} s after S3 came back; (seconds "
              f"from S3's return, (phase, weight, Ready reason)): {seen}")
    finally:
        traffic.stop()
    assert status["rollout"]["phase"] == rollout.SUCCEEDED, status["rollout"]
    assert status["currentModel"]["version"] == "v2"
    stable = scenario.cluster.wait(
        lambda: (lambda d: d if serving.deployment_version(d) == "v2" and (d.get("status") or {})
                 .get("readyReplicas") == 1 else None)(deployment(scenario, name, serving.STABLE)),
        120, "the stable Deployment to serve v2")
    assert stable["spec"]["replicas"] == 1
    assert deployment(scenario, name, serving.CANARY)["spec"]["replicas"] == 0
    assert assert_status_matches_s3(scenario, name, scenario.status(name)) == ["v2", "v1"]
    assert sorted(job["metadata"]["name"] for job in scenario.cluster.jobs(scenario.namespace)) == \
        ["canary-v1", "canary-v2"]
