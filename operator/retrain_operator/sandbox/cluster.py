"""A whole retraining setup on one machine: test API server, SeaweedFS, local Job executor, operator.

The sandbox command and the integration tests drive the same harness, so what a newcomer
sees in `make sandbox` is what the tests check. The operator runs as a real subprocess
(`retrain-operator run`), so it can be killed and restarted like a pod.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import kubernetes
from kubernetes.client.rest import ApiException

from ..api import names
from ..api.crd import crd
from .local_deployments import LocalDeployments
from .local_executor import LocalExecutor
from .seaweed import SeaweedS3

T = TypeVar("T")
Json = dict[str, Any]


def _route_crd(group: str, version: str, kind: str, plural: str) -> Json:
    """A minimal stand-in for the Gateway API / Istio CRDs: the resource served, its schema open."""
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
                     "versions": [{"name": version, "served": True, "storage": True, "subresources": {"status": {}},
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}}}]}}


ROUTE_CRDS = [_route_crd("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"),
              _route_crd("networking.istio.io", "v1", "VirtualService", "virtualservices")]


OPERATOR_TOKEN = "retrain-operator"


class LocalCluster:
    def __init__(self, workdir: Path, seaweed: SeaweedS3 | None = None, clock_file: Path | None = None,
                 max_requeue: float = 1.0, operator_args: tuple[str, ...] = ()):
        self.workdir = workdir
        self.seaweed = seaweed
        self._own_seaweed = seaweed is None
        self.clock_file = clock_file
        self.max_requeue = max_requeue
        self.operator_args = operator_args
        self.api: Any = None
        self.kubeconfig = workdir / "kubeconfig"
        # The operator gets a kubeconfig of its own, so its requests can be told apart (RBAC tests).
        self.operator_kubeconfig = workdir / "operator.kubeconfig"
        self.operator: subprocess.Popen[bytes] | None = None
        self.operator_log = workdir / "operator.log"
        self.executor: LocalExecutor | None = None
        self._executor_thread: threading.Thread | None = None
        self.deployments: LocalDeployments | None = None
        self._deployments_thread: threading.Thread | None = None
        self.api_client: kubernetes.client.ApiClient | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> LocalCluster:
        from faithful_kube import ApiServerThread  # the test API server ships in tests/support

        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.seaweed is None:
            self.seaweed = SeaweedS3(self.workdir / "seaweedfs").start()
        self.api = ApiServerThread(port=0)
        self.api.start()
        self.api.register_crd(crd())
        for route_crd in ROUTE_CRDS:  # installed in a real cluster with Gateway API or Istio
            self.api.register_crd(route_crd)
        self.api.write_kubeconfig(self.kubeconfig)
        self.api.write_kubeconfig(self.operator_kubeconfig, token=OPERATOR_TOKEN)
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=configuration)
        self.api_client = kubernetes.client.ApiClient(configuration)
        self.executor = LocalExecutor(self.api_client, self.workdir / "jobs")
        self._executor_thread = threading.Thread(target=self.executor.run_forever, name="local-executor",
                                                 daemon=True)
        self._executor_thread.start()
        self.deployments = LocalDeployments(self.api_client, self.workdir / "pods")
        self._deployments_thread = threading.Thread(target=self.deployments.run_forever, name="local-deployments",
                                                    daemon=True)
        self._deployments_thread.start()
        self.start_operator()
        return self

    def start_operator(self) -> None:
        command = [sys.executable, "-m", "retrain_operator.cli", "run", "--kubeconfig", str(self.operator_kubeconfig),
                   "--max-requeue", str(self.max_requeue), *self.operator_args]
        if self.clock_file is not None:
            command += ["--clock-file", str(self.clock_file)]
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        with open(self.operator_log, "ab") as log:
            self.operator = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=env, start_new_session=True)

    def stop_operator(self, kill: bool = False) -> None:
        process, self.operator = self.operator, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def stop(self) -> None:
        self.stop_operator()
        if self.executor is not None:
            self.executor.stop()
        if self._executor_thread is not None:
            self._executor_thread.join(timeout=15)
        if self.deployments is not None:
            self.deployments.stop()
        if self._deployments_thread is not None:
            self._deployments_thread.join(timeout=30)
        if self.api is not None:
            self.api.stop()
        if self._own_seaweed and self.seaweed is not None:
            self.seaweed.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the API, as a user would use it ---------------------------------------------------

    @property
    def custom(self) -> kubernetes.client.CustomObjectsApi:
        return kubernetes.client.CustomObjectsApi(self.api_client)

    @property
    def core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.api_client)

    @property
    def batch(self) -> kubernetes.client.BatchV1Api:
        return kubernetes.client.BatchV1Api(self.api_client)

    @property
    def apps(self) -> kubernetes.client.AppsV1Api:
        return kubernetes.client.AppsV1Api(self.api_client)

    def deployment(self, namespace: str, name: str) -> Json | None:
        try:
            return json.loads(self.apps.read_namespaced_deployment(name, namespace, _preload_content=False).data)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def pods(self, namespace: str, selector: dict[str, str]) -> list[Json]:
        text = ",".join(f"{k}={v}" for k, v in selector.items())
        return list(json.loads(self.core.list_namespaced_pod(namespace, label_selector=text,
                                                             _preload_content=False).data)["items"])

    def ensure_namespace(self, namespace: str) -> None:
        with contextlib.suppress(ApiException):
            self.core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})

    def create_s3_secret(self, namespace: str, name: str) -> None:
        assert self.seaweed is not None
        data = {"AWS_ACCESS_KEY_ID": self.seaweed.access_key, "AWS_SECRET_ACCESS_KEY": self.seaweed.secret_key}
        self.core.create_namespaced_secret(namespace, {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque",
            "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
        })

    def apply_policy(self, namespace: str, name: str, spec: Json, annotations: dict[str, str] | None = None) -> Json:
        body = {"apiVersion": names.API_VERSION, "kind": names.KIND,
                "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
                "spec": spec}
        return self.custom.create_namespaced_custom_object(names.GROUP, names.VERSION, namespace, names.PLURAL,
                                                           body)

    def patch_policy(self, namespace: str, name: str, patch: Json) -> Json:
        return self.custom.patch_namespaced_custom_object(names.GROUP, names.VERSION, namespace, names.PLURAL,
                                                          name, patch)

    def trigger(self, namespace: str, name: str, value: str) -> None:
        """What a user does: `kubectl annotate rtp NAME retrain.mlops.dev/trigger=VALUE --overwrite`."""
        self.patch_policy(namespace, name, {"metadata": {"annotations": {names.ANNOTATION_TRIGGER: value}}})

    def policy(self, namespace: str, name: str) -> Json:
        return json.loads(self.custom.get_namespaced_custom_object(
            names.GROUP, names.VERSION, namespace, names.PLURAL, name, _preload_content=False).data)

    def jobs(self, namespace: str) -> list[Json]:
        return list(json.loads(self.batch.list_namespaced_job(namespace, _preload_content=False).data)["items"])

    def events(self, namespace: str, name: str | None = None) -> list[Json]:
        items = json.loads(self.core.list_namespaced_event(namespace, _preload_content=False).data)["items"]
        return [e for e in items if name is None or (e.get("involvedObject") or {}).get("name") == name]

    def wait(self, probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25) -> T:
        """Poll until `probe` returns something truthy; fail with the operator's log tail otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = probe()
            if value:
                return value
            if self.operator is not None and self.operator.poll() is not None:
                raise RuntimeError(f"the operator exited ({self.operator.returncode}) while waiting for {what}\n"
                                   + self.log_tail())
            time.sleep(interval)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}\n{self.log_tail()}")

    def operator_requests(self) -> list[Any]:
        """Every request the operator made to the API server (the audit log, by its token)."""
        return [record for record in self.api.audit if record.user == OPERATOR_TOKEN]

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.operator_log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no operator log)"
