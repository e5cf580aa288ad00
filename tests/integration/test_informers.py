"""The operator's informers on the real API server, with the operator's own ServiceAccount (so the shipped
RBAC is what lets them list and watch): what they hold, whom they wake, and where they step aside."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from retrain_contract.api import names
from retrain_devcluster.cluster import api_client
from retrain_operator.adapters.caches import Caches
from retrain_operator.adapters.informer import Informer
from retrain_operator.core.references import SECRET

from .conftest import scratch_namespace

pytestmark = pytest.mark.integration


def _eventually(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class _Wakes:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, namespace: str, name: str) -> None:
        self.seen.append((namespace, name))


@pytest.fixture()
def namespace(devcluster: Any) -> Iterator[str]:
    yield from scratch_namespace(devcluster, f"inf-{uuid.uuid4().hex[:8]}")


@pytest.fixture()
def caches(devcluster: Any, namespace: str, tmp_path: Path) -> Iterator[tuple[Caches, _Wakes]]:
    made = Caches(api_client(devcluster.operator_kubeconfig(tmp_path / "operator.kubeconfig")), [namespace])
    wakes = _Wakes()
    made.start(wakes)
    assert all(informer.wait_synced(10) for informer in made.informers())
    yield made, wakes
    assert made.stop(timeout=5.0) == []  # a blocked watch read ends at once (it would hold a shutdown 300 s)


def _job(namespace: str, name: str, policy: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace,
                         "labels": {names.LABEL_MANAGED_BY: names.MANAGED_BY, names.LABEL_POLICY: policy}},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "nodeSelector": {"no-such-node": "x"},
                                           "containers": [{"name": "c", "image": "busybox"}]}}}}


def _policy(namespace: str, name: str, secret: str) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name, "resourceVersion": "1"},
            "spec": {"storage": {"credentialsSecret": {"name": secret}}}}


def test_jobs_are_held_per_policy_and_wake_it(devcluster: Any, namespace: str, caches: tuple[Caches, _Wakes]):
    made, wakes = caches
    batch = kubernetes.client.BatchV1Api(devcluster.client)
    batch.create_namespaced_job(namespace, _job(namespace, "a-1", "a"))
    batch.create_namespaced_job(namespace, _job(namespace, "b-1", "b"))
    unlabelled = _job(namespace, "c-1", "c")
    del unlabelled["metadata"]["labels"][names.LABEL_MANAGED_BY]
    batch.create_namespaced_job(namespace, unlabelled)
    _eventually(lambda: (namespace, "b") in wakes.seen, "policy b to be woken")
    assert [job["metadata"]["name"] for job in made.jobs_of(namespace, "a")] == ["a-1"]
    assert made.jobs_of(namespace, "c") == []  # not ours: not watched
    assert "managedFields" not in made.jobs_of(namespace, "a")[0]["metadata"]
    batch.delete_namespaced_job("a-1", namespace, propagation_policy="Background")
    _eventually(lambda: made.jobs_of(namespace, "a") == [], "the deleted Job to go")


def test_a_job_we_created_stands_in_until_the_informer_has_it(namespace: str, caches: tuple[Caches, _Wakes]):
    made, _ = caches
    created = _job(namespace, "d-1", "d")
    created["metadata"]["uid"] = "not-yet-watched"
    made.created_jobs.put(created)
    assert [job["metadata"]["name"] for job in made.jobs_of(namespace, "d")] == ["d-1"]


def test_only_named_secrets_are_kept_and_their_changes_wake_who_names_them(
        devcluster: Any, namespace: str, caches: tuple[Caches, _Wakes]):
    made, wakes = caches
    core = kubernetes.client.CoreV1Api(devcluster.client)
    made.policy_event(None, _policy(namespace, "p", "creds"))
    core.create_namespaced_secret(namespace, {"metadata": {"name": "creds"}, "stringData": {"k": "one"}})
    core.create_namespaced_secret(namespace, {"metadata": {"name": "unnamed"}, "stringData": {"k": "x"}})
    secrets = made.secrets.informer(namespace)
    assert secrets is not None
    _eventually(lambda: secrets.get(namespace, "creds"), "the named Secret")
    assert (namespace, "p") in wakes.seen
    time.sleep(0.3)
    assert secrets.get(namespace, "unnamed") is None  # nobody names it: not held
    assert set(secrets.get(namespace, "creds")) == {"metadata", "type", "data"}
    core.patch_namespaced_secret("creds", namespace, {"stringData": {"k": "two"}})
    _eventually(lambda: secrets.get(namespace, "creds")["data"]["k"] == "dHdv", "the rotated value")
    core.delete_namespaced_secret("creds", namespace)
    _eventually(lambda: secrets.get(namespace, "creds") is None, "the deleted Secret to go")


def test_a_secret_named_after_it_was_listed_is_read_once(devcluster: Any, namespace: str,
                                                         caches: tuple[Caches, _Wakes]):
    made, _ = caches
    core = kubernetes.client.CoreV1Api(devcluster.client)
    core.create_namespaced_secret(namespace, {"metadata": {"name": "early"}, "stringData": {"k": "v"}})
    time.sleep(0.3)  # listed or watched while nobody named it
    made.policy_event(None, _policy(namespace, "q", "early"))
    reads: list[str] = []

    def read(name: str) -> Callable[[], Any]:
        def direct() -> Any:
            reads.append(name)
            try:
                return kubernetes.client.ApiClient().sanitize_for_serialization(
                    core.read_namespaced_secret(name, namespace))
            except kubernetes.client.rest.ApiException as error:
                if error.status == 404:
                    return None
                raise
        return direct

    assert made.referenced(SECRET, namespace, "early", read("early"))["data"] == {"k": "dg=="}
    assert made.referenced(SECRET, namespace, "early", read("early"))["data"] == {"k": "dg=="}
    assert reads == ["early"]
    # Named but absent: read once; its creation is then seen by the watch, not by reading again.
    made.policy_event(None, _policy(namespace, "q", "later"))
    assert made.referenced(SECRET, namespace, "later", read("later")) is None
    assert made.referenced(SECRET, namespace, "later", read("later")) is None
    assert reads == ["early", "later"]
    core.create_namespaced_secret(namespace, {"metadata": {"name": "later"}, "stringData": {"k": "w"}})
    _eventually(lambda: made.referenced(SECRET, namespace, "later", read("later")), "the created Secret")
    assert reads == ["early", "later"]


def test_a_kind_the_server_does_not_serve_is_read_directly(devcluster: Any, namespace: str):
    """A route CRD that is not installed: the informer says it cannot answer, and reads go to the API server.

    As the admin (404): the operator's ServiceAccount would be refused (403, the same path), and that refusal
    would stand in the audit log test_rbac.py checks."""
    custom = kubernetes.client.CustomObjectsApi(devcluster.client)
    informer = Informer("nothings", lambda **kw: custom.list_namespaced_custom_object(
        "example.invalid", "v1", namespace, "nothings", **kw)).start()
    try:
        assert informer.wait_synced(10) and not informer.available
    finally:
        informer.stop()


def test_a_relist_drops_what_was_deleted_while_the_watch_was_down(devcluster: Any, namespace: str, tmp_path: Path):
    """The watch that missed a deletion (410, a dropped connection) lists again and the Job is gone."""
    batch = kubernetes.client.BatchV1Api(devcluster.client)
    client = api_client(devcluster.operator_kubeconfig(tmp_path / "operator.kubeconfig"))
    changes: list[tuple[str, str]] = []
    informer = Informer("Jobs", lambda **kw: kubernetes.client.BatchV1Api(client).list_namespaced_job(namespace, **kw),
                        on_change=lambda kind, old, new: changes.append((kind, (new or old)["metadata"]["name"])))
    batch.create_namespaced_job(namespace, _job(namespace, "gone-1", "g"))
    informer._relist()  # what the thread does first; here without a watch after it
    assert informer.get(namespace, "gone-1") is not None
    batch.delete_namespaced_job("gone-1", namespace, propagation_policy="Background")
    _eventually(lambda: not batch.list_namespaced_job(namespace).items, "the Job to be deleted")
    informer._relist()
    assert informer.get(namespace, "gone-1") is None
    assert changes == [("ADDED", "gone-1"), ("DELETED", "gone-1")]
