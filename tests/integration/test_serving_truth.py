"""Ready means served, and served means what was recorded: the manifest digest pinned in status and
passed to the model servers, the servers' readiness in Ready, and the scheduled re-verification.

An artifact rewritten in S3 consistently with its manifest (valid checksums, another model) passes
every checksum; only the digest recorded when the version was trained tells it apart."""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import joblib
import pytest

from retrain_contract.api import names
from retrain_contract.artifacts.store import ArtifactStore
from retrain_contract.artifacts.uris import parse_s3_uri
from retrain_operator.core import serving
from retrain_operator.core.conditions import get_condition
from retrain_sandbox import dataset
from retrain_sandbox.cluster import LocalCluster
from retrain_sandbox.seaweed import SeaweedS3

from .conftest import Scenario, running_cluster
from .test_model_server import Server
from .test_trainer_entrypoint import config, prefix, train

pytestmark = pytest.mark.integration

GRACE = 8.0  # seconds without a Ready server before Ready turns False (the default is 2 minutes)
VERIFY = 4.0  # seconds between re-verifications (the default is 10 minutes)


@pytest.fixture(scope="module")
def cluster(seaweed: SeaweedS3, tmp_path_factory: pytest.TempPathFactory, devcluster: Any) -> Iterator[LocalCluster]:
    """This module's operator waits briefly for servers and re-reads the current version often."""
    yield from running_cluster(seaweed, tmp_path_factory, devcluster, operator_args=(
        "--serving-grace", str(GRACE), "--verify-interval", str(VERIFY)))


def rewrite_consistently(s3: Any, uri: str) -> str:
    """What someone with write access to the bucket can do: another model.joblib and a manifest whose
    checksums match it. Returns the new manifest's sha256."""
    bucket, key = parse_s3_uri(uri)
    store = ArtifactStore(s3, bucket)
    manifest = store.read_manifest(key)
    name = manifest["model"].get("file", "model.joblib")
    model = joblib.load(io.BytesIO(store.get_bytes(key + name)))
    model.tampered_with = True  # any other model: the server would load it, checksums and all
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    data = buffer.getvalue()
    manifest["files"][name] = {**manifest["files"][name], "sha256": hashlib.sha256(data).hexdigest(),
                               "size": len(data)}
    body = json.dumps(manifest, indent=2, sort_keys=True).encode()
    store.put_bytes(key + name, data)
    store.put_bytes(key + "manifest.json", body, "application/json")
    return hashlib.sha256(body).hexdigest()


def ready(status: dict) -> dict:
    return get_condition(status.get("conditions"), "Ready") or {}


def reasons(scenario: Scenario, name: str) -> list[tuple[str, str]]:
    return [(e.get("type"), e.get("reason")) for e in scenario.cluster.events(scenario.namespace, name)]


def test_a_rewritten_version_is_refused_by_restarted_servers_and_ready_says_so(scenario: Scenario, seaweed):
    name = "truth"
    scenario.load_history()
    spec = scenario.policy_spec(serving={"replicas": 1})
    scenario.cluster.apply_policy(scenario.namespace, name, spec, annotations={names.ANNOTATION_TRIGGER: "1"})
    scenario.wait_recorded(name, "v1")
    stable = serving.deployment_name(name, serving.STABLE)
    scenario.cluster.wait(lambda: (scenario.cluster.deployment(scenario.namespace, stable) or {})
                          .get("status", {}).get("readyReplicas") == 1, 90, "the stable model server")
    status = scenario.wait_status(name, lambda s: ready(s).get("status") == "True", "Ready")
    current = status["currentModel"]
    uri, pinned = current["uri"], current["manifestSha256"]
    bucket, key = parse_s3_uri(uri)
    assert pinned == hashlib.sha256(scenario.s3.get_object(Bucket=bucket, Key=key + "manifest.json")["Body"]
                                    .read()).hexdigest()
    args = scenario.cluster.deployment(scenario.namespace, stable)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--manifest-sha256") + 1] == pinned

    rewritten = rewrite_consistently(scenario.s3, uri)
    assert rewritten != pinned

    # (b) The scheduled re-verification notices, while the running server still serves what it verified.
    status = scenario.wait_status(name, lambda s: ready(s).get("reason") == "ArtifactsChanged",
                                  "the re-verification to notice the rewrite", timeout=60)
    assert ready(status)["status"] == "False" and status["phase"] == "Degraded"
    assert f"not the pinned {pinned}" in status["currentModel"]["artifactProblem"]
    assert status["currentModel"]["manifestSha256"] == pinned and status["currentModel"]["version"] == "v1"
    assert ("Warning", "ArtifactsChanged") in reasons(scenario, name)
    assert scenario.cluster.deployment(scenario.namespace, stable)["status"].get("readyReplicas") == 1

    # (a) A restarted server refuses the rewritten version; Ready turns to ModelUnavailable after the grace.
    for pod in scenario.cluster.pods(scenario.namespace, serving.selector(name, serving.STABLE)):
        scenario.cluster.core.delete_namespaced_pod(pod["metadata"]["name"], scenario.namespace,
                                                    grace_period_seconds=0)
    started = time.monotonic()
    status = scenario.wait_status(name, lambda s: ready(s).get("reason") == "ModelUnavailable",
                                  "Ready False ModelUnavailable", timeout=GRACE + 60)
    took = time.monotonic() - started
    assert ready(status)["status"] == "False" and status["phase"] == "Degraded", status
    assert "no stable model server of v1 has been Ready" in ready(status)["message"]
    assert "changed since it was recorded" in ready(status)["message"]  # both findings are told
    assert took >= GRACE - 2, f"Ready turned False after {took:.1f}s, before the {GRACE}s grace period"
    assert ("Warning", "ModelUnavailable") in reasons(scenario, name)

    def refused() -> dict | None:
        for pod in scenario.cluster.pods(scenario.namespace, serving.selector(name, serving.STABLE)):
            for container in (pod.get("status") or {}).get("containerStatuses") or []:
                terminated = (container.get("lastState") or {}).get("terminated") or \
                             (container.get("state") or {}).get("terminated")
                if terminated:
                    return terminated
        return None

    terminated = scenario.cluster.wait(refused, 60, "the restarted server to exit")
    assert terminated["exitCode"] == 3, terminated
    assert "refusing to serve" in terminated.get("message", "") and f"not the pinned {pinned}" in \
        terminated["message"], terminated
    # The serving target never followed S3: still v1 with the digest recorded when it was trained.
    deployment = scenario.cluster.deployment(scenario.namespace, stable)
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--manifest-sha256") + 1] == pinned
    assert deployment["spec"]["template"]["metadata"]["labels"][names.LABEL_MODEL_VERSION] == "v1"
    assert scenario.status(name)["currentModel"]["manifestSha256"] == pinned


def test_the_server_serves_a_consistent_rewrite_only_when_no_digest_is_pinned(seaweed, s3, bucket):
    """Why the digest has to be pinned: the manifest's checksums alone accept a consistent rewrite."""
    s3.put_object(Bucket=bucket, Key="history/a.parquet", Body=dataset.to_parquet(dataset.churn_table(600, 1)))
    result = train(seaweed, config(bucket))
    assert result.returncode == 0, result.stderr
    uri = f"s3://{bucket}/{prefix('v1')}"
    pinned = hashlib.sha256(s3.get_object(Bucket=bucket, Key=prefix("v1") + "manifest.json")["Body"].read()) \
        .hexdigest()
    server = Server(seaweed, uri, "--manifest-sha256", pinned)
    try:
        server.wait_ready()  # the recorded version, with its own digest: served
    finally:
        server.stop()
    rewrite_consistently(s3, uri)
    unpinned = Server(seaweed, uri)
    try:
        unpinned.wait_ready()  # integrity only: the rewritten model is served
    finally:
        unpinned.stop()
    pinned_server = Server(seaweed, uri, "--manifest-sha256", pinned)
    assert pinned_server.process.wait(timeout=30) == 3
    stderr = pinned_server.stop()
    assert "refusing to serve" in stderr and f"not the pinned {pinned}" in stderr


def test_a_damaged_or_missing_artifact_turns_ready_false_and_its_repair_turns_it_back(scenario: Scenario):
    """Two more ways the current version changes under the operator: model bytes overwritten (no longer
    what the manifest lists) and manifest.json deleted. Each is reported at the next re-verification,
    the serving Deployment is left as it is, and putting the recorded bytes back is noticed too."""
    name = "damage"
    scenario.load_history()
    scenario.cluster.apply_policy(scenario.namespace, name, scenario.policy_spec(serving={"replicas": 1}),
                                  annotations={names.ANNOTATION_TRIGGER: "1"})
    scenario.wait_recorded(name, "v1")
    status = scenario.wait_status(name, lambda s: ready(s).get("status") == "True", "Ready", timeout=120)
    pinned = status["currentModel"]["manifestSha256"]
    bucket, key = parse_s3_uri(status["currentModel"]["uri"])
    stable = serving.deployment_name(name, serving.STABLE)
    # A server that starts while the bytes are damaged refuses them (and backs off): the damage is done to a
    # version that is served, as the docstring says, not to one whose server is still starting.
    scenario.cluster.wait(lambda: ((scenario.cluster.deployment(scenario.namespace, stable) or {}).get("status") or {})
                          .get("readyReplicas") == 1, 120, "the stable model server")
    template = scenario.cluster.deployment(scenario.namespace, stable)["spec"]["template"]

    def damaged(path: str, body: bytes | None, finding: str) -> None:
        original = scenario.s3.get_object(Bucket=bucket, Key=key + path)["Body"].read()
        if body is None:
            scenario.s3.delete_object(Bucket=bucket, Key=key + path)
        else:
            scenario.s3.put_object(Bucket=bucket, Key=key + path, Body=body)
        found = scenario.wait_status(name, lambda s: ready(s).get("reason") == "ArtifactsChanged",
                                     f"the re-verification to notice {finding}", timeout=60)
        assert ready(found)["status"] == "False" and found["phase"] == "Degraded", found
        assert finding in found["currentModel"]["artifactProblem"], found["currentModel"]
        assert found["currentModel"]["version"] == "v1" and found["currentModel"]["manifestSha256"] == pinned
        scenario.s3.put_object(Bucket=bucket, Key=key + path, Body=original)  # the repair
        repaired = scenario.wait_status(name, lambda s: ready(s).get("status") == "True",
                                        f"Ready again after {path} was put back", timeout=60)
        assert not repaired["currentModel"].get("artifactProblem"), repaired["currentModel"]
        # Neither the damage nor the repair touched what serves: same version, digest and pods' template.
        assert scenario.cluster.deployment(scenario.namespace, stable)["spec"]["template"] == template

    damaged("model.joblib", b"not a model", "model.joblib")
    damaged("manifest.json", None, "manifest.json is missing")
    warnings = [r for kind, r in reasons(scenario, name) if kind == "Warning"]
    assert warnings.count("ArtifactsChanged") == 2, warnings
    assert [r for kind, r in reasons(scenario, name) if r == "ArtifactsVerified"] == ["ArtifactsVerified"] * 2
