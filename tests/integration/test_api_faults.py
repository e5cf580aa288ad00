"""Faults a real API server does not produce on cue, injected by a proxy in front of it: the operator
rides out 500s and 429s on its writes, cut watch streams and slow answers, and loses nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retrain_devcluster.faultproxy import Fault, FaultProxy
from retrain_operator.api import names
from retrain_operator.sandbox.cluster import LocalCluster
from retrain_operator.sandbox.seaweed import SeaweedS3

from .conftest import Scenario

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def proxy(devcluster: Any) -> Iterator[FaultProxy]:
    started = FaultProxy(devcluster.plane).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def cluster(seaweed: SeaweedS3, tmp_path_factory: pytest.TempPathFactory, devcluster: Any,
            proxy: FaultProxy) -> Iterator[LocalCluster]:
    """This module's operator talks to the API server only through the proxy."""
    local = LocalCluster(tmp_path_factory.mktemp("cluster"), seaweed=seaweed, max_requeue=1.0, dev=devcluster,
                         operator_server=proxy.url)
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture()
def scenario(cluster: LocalCluster, s3: Any, proxy: FaultProxy) -> Iterator[Scenario]:
    made = Scenario(cluster, s3)
    yield made
    proxy.faults.clear()
    cluster.delete_namespace(made.namespace)


def test_errors_on_writes_are_retried_and_the_run_recorded_once(scenario: Scenario, proxy: FaultProxy,
                                                                 tmp_path: Path):
    ns = scenario.namespace
    job_refused = proxy.add(Fault(method="POST", path=rf"/namespaces/{ns}/jobs$", status=429, retry_after=1, times=2))
    status_failed = proxy.add(Fault(method="PATCH", path=rf"/namespaces/{ns}/retrainpolicies/[^/]+/status$",
                                    status=500, times=3))
    slow_secret = proxy.add(Fault(method="GET", path=rf"/namespaces/{ns}/secrets/", delay=2.0, times=2))
    scenario.load_history()
    scenario.cluster.apply_policy(ns, "churn", scenario.policy_spec(), annotations={names.ANNOTATION_TRIGGER: "1"})
    status = scenario.wait_recorded("churn", "v1", timeout=150)

    assert (job_refused.hits, status_failed.hits, slow_secret.hits) == (2, 3, 2)
    assert status["currentModel"]["version"] == "v1"
    assert [job["metadata"]["name"] for job in scenario.cluster.jobs(ns)] == ["churn-v1"]  # no duplicate Job
    assert [entry["version"] for entry in status.get("history") or []] == ["v1"]


def test_cut_watch_streams_do_not_lose_a_trigger(scenario: Scenario, proxy: FaultProxy):
    ns = scenario.namespace
    scenario.load_history()
    scenario.cluster.apply_policy(ns, "churn", scenario.policy_spec(), annotations={names.ANNOTATION_TRIGGER: "1"})
    scenario.wait_recorded("churn", "v1", timeout=120)
    # From now on every watch of policies and Jobs ends after one event, as a flaky load balancer would.
    cut = proxy.add(Fault(method="GET", path=r"/(retrainpolicies|jobs)$", cut_watch_after=1))
    scenario.cluster.trigger(ns, "churn", "2")
    scenario.wait_recorded("churn", "v2", timeout=150)
    assert cut.hits > 0
    assert sorted(job["metadata"]["name"] for job in scenario.cluster.jobs(ns)) == ["churn-v1", "churn-v2"]
