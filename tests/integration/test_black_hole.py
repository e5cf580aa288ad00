"""S3 endpoints that accept connections and never answer stall only their own policies.

Eight policies point their storage at black holes (TCP listeners on 127.0.0.1 that accept and
never answer; the operator is a local process, so it reaches them); ten healthy policies on the
real SeaweedFS are triggered one after another meanwhile. Each healthy trigger must become a
trainer Job within 2 s (before the bulkheads, with every blocking call on asyncio's shared
pool, it took up to two minutes), and each black-holed policy must say which endpoint did not
answer instead of waiting out botocore's retries.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.rest import ApiException

from retrain_contract.api import names
from retrain_operator.core.conditions import get_condition
from retrain_operator.core.runs import job_name
from retrain_sandbox.cluster import LocalCluster
from retrain_sandbox.seaweed import SeaweedS3

from ..blackhole import BlackHole
from .conftest import Scenario, running_cluster

# It measures latency: `make test` runs it alone, after the parallel part of the suite.
pytestmark = [pytest.mark.integration, pytest.mark.exclusive]

HOLES = 8
HEALTHY = 10
BASELINE = 3
BOUND = 2.0  # seconds from the trigger annotation to the trainer Job, for every healthy trigger
GIVE_UP = 30.0  # a sample this slow has failed already; stop waiting for it
# Trainer pods of the healthy runs stay Pending: no node has this label (spares the 2 cores).
NOWHERE = {"retrain.test/no-such-node": "true"}


@pytest.fixture(scope="module")
def cluster(seaweed: SeaweedS3, tmp_path_factory: pytest.TempPathFactory, devcluster: Any
            ) -> Iterator[LocalCluster]:
    """Policies looked at every 10 s when nothing happens, not every second as elsewhere in the tests:
    a trigger is a watch event and wakes its policy at once, and 18 policies polled every second
    would measure the operator's own CPU on a busy 2-core machine, not the black holes."""
    yield from running_cluster(seaweed, tmp_path_factory, devcluster, max_requeue=10.0)


@pytest.fixture()
def holes(scenario: Scenario) -> Iterator[list[BlackHole]]:
    """Closed before the scenario's namespace goes: the operator's stuck reads end at once."""
    made = [BlackHole() for _ in range(HOLES)]
    try:
        yield made
    finally:
        for hole in made:
            hole.close()


def _job_exists(scenario: Scenario, name: str) -> bool:
    try:
        scenario.cluster.batch.read_namespaced_job(name, scenario.namespace)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def _ready(status: dict) -> dict | None:
    return get_condition(status.get("conditions") or [], "Ready")


def _trigger_to_job(scenario: Scenario, name: str) -> float:
    """Seconds from the trigger annotation to the trainer Job (GIVE_UP and a little: it never came)."""
    started = time.monotonic()
    scenario.cluster.trigger(scenario.namespace, name, "1")
    wanted = job_name(name, "v1")
    while not _job_exists(scenario, wanted):
        if time.monotonic() - started > GIVE_UP:
            break
        time.sleep(0.05)
    return time.monotonic() - started


def _shown(samples: list[float]) -> str:
    return ", ".join(f"{sample:.2f}" for sample in samples) + f" (max {max(samples):.2f})"


def test_black_holed_endpoints_do_not_delay_other_policies_triggers(scenario: Scenario, holes: list[BlackHole]):
    cluster, namespace = scenario.cluster, scenario.namespace
    healthy = [f"healthy-{i}" for i in range(HEALTHY)]
    baseline = [f"baseline-{i}" for i in range(BASELINE)]
    for name in baseline + healthy:
        cluster.apply_policy(namespace, name, scenario.policy_spec(training={"nodeSelector": NOWHERE}))
    for name in baseline + healthy:  # every loop has reconciled once and is idle, waiting for a trigger
        scenario.wait_status(name, _ready, f"{name} to reconcile", timeout=60)
    # The same path before any endpoint hangs: what this machine's load alone costs (shown, not asserted).
    before = [_trigger_to_job(scenario, name) for name in baseline]

    for index, hole in enumerate(holes):
        cluster.apply_policy(namespace, f"stuck-{index}", scenario.policy_spec(storage={"endpoint": hole.endpoint}),
                             annotations={names.ANNOTATION_TRIGGER: "1"})
    # Not "all of them": on one shared pool the first few stuck calls keep the others from even starting.
    cluster.wait(lambda: any(hole.connections for hole in holes), 60, "the operator to call a black hole")
    time.sleep(3)  # the stuck calls pile up: the operator retries them while the samples are taken

    samples: list[float] = []
    for name in healthy:
        samples.append(_trigger_to_job(scenario, name))
        print(f"{name}: trigger to Job {samples[-1]:.2f} s")
        if samples[-1] > GIVE_UP:
            break
        time.sleep(0.7)  # the next trigger lands at another point of the stuck policies' cycles
    report = (f"trigger-to-Job seconds with {HOLES} black-holed endpoints: {_shown(samples)}; "
              f"before they hung: {_shown(before)}; "
              f"connections held by the black holes: {[len(hole.connections) for hole in holes]}")
    print(report)
    assert len(samples) == HEALTHY and max(samples) <= BOUND, report

    # Every stuck policy reached its endpoint, says which one did not answer, and starts no run.
    assert all(hole.connections for hole in holes), [len(hole.connections) for hole in holes]
    for index, hole in enumerate(holes):
        status = scenario.wait_status(
            f"stuck-{index}", lambda s: (_ready(s) or {}).get("reason") == "StorageUnreachable",
            f"stuck-{index} to report its endpoint", timeout=60)
        # The operator's deadline (10 s), not botocore's retries, ended the wait.
        assert _ready(status)["message"] == f"S3 endpoint {hole.endpoint} did not answer within 10s"
        assert not status.get("activeRun")
    assert not any(job["metadata"]["name"].startswith("stuck-") for job in cluster.jobs(namespace))
