"""One real control plane and node per session; the operator (a real subprocess) per test module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from retrain_contract.artifacts.layout import version_prefix
from retrain_sandbox import dataset
from retrain_sandbox.cluster import LocalCluster
from retrain_sandbox.seaweed import SeaweedS3

from ..s3relay import S3Relay
from .operator_metrics import free_port


@pytest.fixture(scope="module")
def clock_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clock") / "now"
    path.write_text("")  # empty: the operator uses the system clock
    return path


@pytest.fixture(scope="session")
def s3_relay(seaweed: SeaweedS3) -> Iterator[S3Relay]:
    """A second way to SeaweedFS's S3 that tests can stop and start (see tests/s3relay.py)."""
    relay = S3Relay(seaweed.ports["s3"])
    yield relay
    relay.close()


@pytest.fixture(scope="session")
def devcluster(seaweed: SeaweedS3, s3_relay: S3Relay, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """kube-apiserver, etcd, the controller manager, the scheduler and a process-kubelet node, for the session."""
    from retrain_devcluster.cluster import DevCluster

    with DevCluster(tmp_path_factory.mktemp("devcluster"), forward_ports=[seaweed.ports["s3"], s3_relay.port]) \
            as cluster:
        yield cluster


@pytest.fixture(scope="module")
def metrics_port() -> int:
    """The port of a module's operator that serves its metrics (`serve_args(metrics_port)`), on 127.0.0.1."""
    return free_port()


@pytest.fixture(scope="module")
def proxy(devcluster: Any) -> Iterator[Any]:
    """A fault-injecting proxy in front of the API server, for modules whose operator talks through it."""
    from retrain_devcluster.faultproxy import FaultProxy

    started = FaultProxy(devcluster.plane).start()
    yield started
    started.stop()


def running_cluster(seaweed: SeaweedS3, tmp_path_factory: pytest.TempPathFactory, dev: Any, max_requeue: float = 1.0,
                    **options: Any) -> Iterator[LocalCluster]:
    """The operator on the session's cluster and SeaweedFS, stopped after the module."""
    local = LocalCluster(tmp_path_factory.mktemp("cluster"), seaweed=seaweed, max_requeue=max_requeue, dev=dev,
                         **options)
    local.start()
    try:
        yield local
    finally:
        local.stop()


def scratch_namespace(devcluster: Any, name: str) -> Iterator[str]:
    """A namespace of the test's own on the session's cluster, deleted after it (for a fixture to yield from)."""
    core = kubernetes.client.CoreV1Api(devcluster.client)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="module")
def cluster(seaweed: SeaweedS3, tmp_path_factory: pytest.TempPathFactory, clock_file: Path,
            devcluster: Any) -> Iterator[LocalCluster]:
    yield from running_cluster(seaweed, tmp_path_factory, devcluster, clock_file=clock_file)


class Scenario:
    """One namespace with its own buckets, Secret and data: tests never see each other's objects."""

    def __init__(self, cluster: LocalCluster, s3: Any):
        self.cluster = cluster
        self.s3 = s3
        suffix = uuid.uuid4().hex[:8]
        self.namespace = f"it-{suffix}"
        self.data_bucket = f"data-{suffix}"
        self.model_bucket = f"models-{suffix}"
        for bucket in (self.data_bucket, self.model_bucket):
            s3.create_bucket(Bucket=bucket)
        cluster.ensure_namespace(self.namespace)
        cluster.create_s3_secret(self.namespace, "s3-credentials")

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.data_bucket, Key=key, Body=body)

    def load_history(self, rows: int = 1500, seed: int = 1) -> None:
        self.put("churn/history/part-000.parquet", dataset.to_parquet(dataset.churn_table(rows, seed=seed)))

    def policy_spec(self, **overrides: Any) -> dict[str, Any]:
        assert self.cluster.seaweed is not None
        spec: dict[str, Any] = {
            "model": {"estimator": "SGDClassifier", "task": "classification", "target": dataset.TARGET,
                      "features": dataset.FEATURES, "params": {"loss": "log_loss", "random_state": 0}},
            "data": {"history": f"s3://{self.data_bucket}/churn/history/",
                     "incoming": f"s3://{self.data_bucket}/churn/incoming/",
                     "validation": {"minRows": 50}},
            "storage": {"bucket": self.model_bucket, "prefix": "models", "endpoint": self.cluster.seaweed.endpoint,
                        "credentialsSecret": {"name": "s3-credentials"}},
            "training": {"strategy": "full", "backoffLimit": 0},
        }
        for key, value in overrides.items():
            if isinstance(value, dict):  # merged one level deep; a None value removes the field
                merged = {**spec.get(key, {}), **value}
                spec[key] = {k: v for k, v in merged.items() if v is not None}
            else:
                spec[key] = value
        return spec

    def status(self, name: str) -> dict[str, Any]:
        return self.cluster.policy(self.namespace, name).get("status") or {}

    def model_prefix(self, name: str, version: str) -> str:
        """The key prefix of a version the operator's run of policy `name` writes (under its incarnation's uid)."""
        uid = self.cluster.policy(self.namespace, name)["metadata"]["uid"]
        return version_prefix("models", self.namespace, name, version, uid=uid)

    def wait_status(self, name: str, predicate, what: str, timeout: float = 90.0) -> dict[str, Any]:
        return self.cluster.wait(lambda: (lambda s: s if predicate(s) else None)(self.status(name)), timeout, what)

    def wait_recorded(self, name: str, version: str, timeout: float = 90.0) -> dict[str, Any]:
        return self.wait_status(
            name, lambda s: (s.get("lastRun") or {}).get("version") == version and not s.get("activeRun"),
            f"{name} to record {version}", timeout)


@pytest.fixture()
def scenario(cluster: LocalCluster, s3: Any) -> Iterator[Scenario]:
    made = Scenario(cluster, s3)
    yield made
    cluster.delete_namespace(made.namespace)
