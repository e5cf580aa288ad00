"""Two operator processes, shards 0 and 1 of 2, on one real control plane: every policy is labelled for its
shard and reconciled, each by exactly the shard `Shard.owns` names, and neither touches the other's (no
finalizer war, no double reconcile)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest

from retrain_contract.api import names
from retrain_operator.core.sharding import LABEL, Shard
from retrain_sandbox.cluster import LocalCluster
from retrain_sandbox.seaweed import SeaweedS3

from .conftest import Scenario, running_cluster
from .operator_metrics import free_port, sample, scrape, serve_args

pytestmark = pytest.mark.integration

COUNT = 2
SELECTOR = "!retrain.test/skip"
POLICIES = [f"p{i:02d}" for i in range(10)]
FAR_FUTURE = {"schedule": {"cron": "0 0 1 1 *"}}


@pytest.fixture(scope="module")
def shards(seaweed: SeaweedS3, tmp_path_factory: pytest.TempPathFactory,
           devcluster: Any) -> Iterator[list[tuple[LocalCluster, int]]]:
    """One LocalCluster (one operator process) per shard, on the session's cluster and SeaweedFS."""
    started: list[tuple[LocalCluster, int]] = []
    runs: list[Iterator[LocalCluster]] = []
    try:
        for index in range(COUNT):
            port = free_port()
            run = running_cluster(seaweed, tmp_path_factory, devcluster, max_requeue=5.0, operator_args=(
                "--shard-index", str(index), "--shard-count", str(COUNT), "--shard-selector", SELECTOR,
                *serve_args(port)))
            started.append((next(run), port))
            runs.append(run)
        yield started
    finally:
        for run in runs:
            next(run, None)  # the generator's finally: stop that operator


def shard_index(label: str) -> int:
    return int(label.split("-of-")[0])


def _reconciled(port: int, namespace: str) -> set[str]:
    text = scrape(port)
    return {name for name in [*POLICIES, "skipped"]
            if (sample(text, "retrain_reconciles_total", namespace=namespace, policy=name) or 0) > 0}


def test_two_shards_split_the_policies_and_each_reconciles_only_its_own(shards: list[tuple[LocalCluster, int]], s3,
                                                                       devcluster: Any):
    cluster = shards[0][0]
    scenario = Scenario(cluster, s3)
    namespace = scenario.namespace
    try:
        spec = scenario.policy_spec(triggers=FAR_FUTURE)
        for name in POLICIES:
            cluster.apply_policy(namespace, name, spec)
        # Outside every shard's selector: no one reconciles it.
        cluster.custom.create_namespaced_custom_object(names.GROUP, names.VERSION, namespace, names.PLURAL, {
            "apiVersion": names.API_VERSION, "kind": names.KIND, "spec": spec,
            "metadata": {"name": "skipped", "namespace": namespace, "labels": {"retrain.test/skip": "yes"}}})

        # Labelled by hand for the wrong shard (copied from another policy's manifest, say).
        wrong = "p-relabelled"
        layout = Shard(0, COUNT, SELECTOR)
        other = f"{1 - shard_index(layout.label_of(namespace, wrong))}-of-{COUNT}"
        cluster.custom.create_namespaced_custom_object(names.GROUP, names.VERSION, namespace, names.PLURAL, {
            "apiVersion": names.API_VERSION, "kind": names.KIND, "spec": spec,
            "metadata": {"name": wrong, "namespace": namespace, "labels": {LABEL: other}}})
        everyone = [*POLICIES, wrong]

        for name in everyone:
            scenario.wait_status(name, lambda s: s.get("nextRunAt"), f"{name} to get a status", timeout=120)
        labels = {name: cluster.policy(namespace, name)["metadata"].get("labels", {}) for name in everyone}
        assert {name: found.get(LABEL) for name, found in labels.items()} == {
            name: layout.label_of(namespace, name) for name in everyone}
        owners = {index: {name for name in POLICIES if Shard(index, COUNT, SELECTOR).owns(namespace, name, {})}
                  for index in range(COUNT)}
        assert all(owners.values()), f"a test of two shards needs policies on both: {owners}"
        seen = {index: _reconciled(port, namespace) for index, (_, port) in enumerate(shards)}
        assert seen == owners
        assert seen[0].isdisjoint(seen[1]) and seen[0] | seen[1] == set(POLICIES)
        assert scenario.status("skipped") == {}
        assert LABEL not in (cluster.policy(namespace, "skipped")["metadata"].get("labels") or {})
        owner_of_wrong = shard_index(layout.label_of(namespace, wrong))
        assert (sample(scrape(shards[owner_of_wrong][1]), "retrain_reconciles_total", namespace=namespace,
                       policy=wrong) or 0) > 0
        assert (sample(scrape(shards[1 - owner_of_wrong][1]), "retrain_reconciles_total", namespace=namespace,
                       policy=wrong) or 0) == 0

        # Each shard asked the API server for its own policies only (so its memory follows them).
        asked = {unquote(record.uri.partition("labelSelector=")[2].split("&")[0])
                 for record in devcluster.plane.audit()
                 if record.resource == names.PLURAL and record.verb in ("list", "watch")
                 and "labelSelector=" in record.uri}
        assert {f"{LABEL}={index}-of-{COUNT}" for index in range(COUNT)} <= asked

        # Settled: nothing rewrites the policies (two shards fighting over kopf's finalizer would).
        before = {name: cluster.policy(namespace, name)["metadata"] for name in POLICIES}
        assert all(f"{names.GROUP}/finalizer" in meta.get("finalizers", []) for meta in before.values())
        time.sleep(6)
        after = {name: cluster.policy(namespace, name)["metadata"]["resourceVersion"] for name in POLICIES}
        assert after == {name: meta["resourceVersion"] for name, meta in before.items()}
        assert {index: _reconciled(port, namespace) for index, (_, port) in enumerate(shards)} == owners

        # Deleting a policy of either shard completes (the finalizer step runs in any shard).
        for index in range(COUNT):
            victim = sorted(owners[index])[0]
            cluster.custom.delete_namespaced_custom_object(names.GROUP, names.VERSION, namespace, names.PLURAL,
                                                           victim)
            cluster.wait(lambda v=victim: not cluster._exists(lambda: cluster.policy(namespace, v)), 60,
                         f"{victim} to be deleted")
        for other, _ in shards[1:]:
            assert other.operator is not None and other.operator.poll() is None, other.log_tail()
    finally:
        cluster.delete_namespace(namespace)
