"""Faults a real API server does not produce on cue, injected by a proxy in front of it: the operator
rides out 500s and 429s on its writes, cut watch streams and slow answers, and loses nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retrain_contract.api import names
from retrain_devcluster.faultproxy import Fault, FaultProxy
from retrain_sandbox.cluster import LocalCluster
from retrain_sandbox.seaweed import SeaweedS3

from .conftest import Scenario, running_cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(seaweed: SeaweedS3, tmp_path_factory: pytest.TempPathFactory, devcluster: Any,
            proxy: FaultProxy) -> Iterator[LocalCluster]:
    """This module's operator talks to the API server only through the proxy."""
    yield from running_cluster(seaweed, tmp_path_factory, devcluster, operator_server=proxy.url)


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
    slow_secret = proxy.add(Fault(method="GET", path=rf"/namespaces/{ns}/secrets/", delay=2.0))
    scenario.load_history()
    scenario.cluster.apply_policy(ns, "churn", scenario.policy_spec(), annotations={names.ANNOTATION_TRIGGER: "1"})
    status = scenario.wait_recorded("churn", "v1", timeout=150)

    # The Secret is read once, when the policy first names it; then its watch keeps it (adapters/caches.py).
    assert (job_refused.hits, status_failed.hits, slow_secret.hits) == (2, 3, 1)
    assert status["currentModel"]["version"] == "v1"
    assert [job["metadata"]["name"] for job in scenario.cluster.jobs(ns)] == ["churn-v1"]  # no duplicate Job
    assert [entry["version"] for entry in status.get("history") or []] == ["v1"]


def test_cut_watch_streams_do_not_lose_a_trigger(scenario: Scenario, proxy: FaultProxy):
    ns = scenario.namespace
    scenario.load_history()
    scenario.cluster.apply_policy(ns, "churn", scenario.policy_spec(), annotations={names.ANNOTATION_TRIGGER: "1"})
    scenario.wait_recorded("churn", "v1", timeout=120)
    # From now on every watch of policies and Jobs ends after one event, as a flaky load balancer would. The
    # operator's watches are long-lived: a restarted operator opens its watches through the fault.
    cut = proxy.add(Fault(method="GET", path=r"/(retrainpolicies|jobs)$", cut_watch_after=1))
    scenario.cluster.restart_operator()
    scenario.cluster.trigger(ns, "churn", "2")
    scenario.wait_recorded("churn", "v2", timeout=150)
    assert cut.hits > 2  # both kinds' watches were cut, and opened again
    assert sorted(job["metadata"]["name"] for job in scenario.cluster.jobs(ns)) == ["churn-v1", "churn-v2"]


def test_an_event_the_server_fails_to_take_is_posted_again_and_only_once(scenario: Scenario, proxy: FaultProxy):
    """Events go before the status they belong to: a failed post holds the status write back, the next
    reconcile makes the same decision, and the Event's name (derived from it) keeps it single."""
    ns = scenario.namespace
    refused = proxy.add(Fault(method="POST", path=rf"/api/v1/namespaces/{ns}/events$", status=500, times=1))
    scenario.load_history()
    scenario.cluster.apply_policy(ns, "churn", scenario.policy_spec(), annotations={names.ANNOTATION_TRIGGER: "1"})
    scenario.wait_recorded("churn", "v1", timeout=150)
    assert refused.hits == 1
    started = [e for e in scenario.cluster.events(ns, "churn") if e["reason"] == "RunStarted"]
    assert len(started) == 1, started
    assert "v1 started by manual" in started[0]["message"]
    assert [job["metadata"]["name"] for job in scenario.cluster.jobs(ns)] == ["churn-v1"]
