"""A whole retraining setup on one machine: a real control plane, a process-kubelet node, SeaweedFS, the operator.

The sandbox command and the integration tests drive the same harness, so what a newcomer
sees in `make sandbox` is what the tests check. The control plane is Kubernetes' own
kube-apiserver, controller manager and scheduler (tests/support/retrain_devcluster); the
operator runs as a real subprocess (`retrain-operator run`) with a token of the
`retrain-operator` ServiceAccount, so it has exactly the shipped RBAC and can be killed and
restarted like a pod.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import kubernetes
from kubernetes.client.rest import ApiException

from retrain_contract.api import names

from .seaweed import SeaweedS3

T = TypeVar("T")
Json = dict[str, Any]


class LocalCluster:
    """The operator on a dev cluster: its own cluster (the sandbox), or a shared one (`dev`, the tests)."""

    def __init__(self, workdir: Path, seaweed: SeaweedS3 | None = None, clock_file: Path | None = None,
                 max_requeue: float = 1.0, operator_args: tuple[str, ...] = (), dev: Any = None,
                 say: Callable[[str], None] = print, operator_server: str | None = None):
        self.workdir = workdir
        self.seaweed = seaweed
        self._own_seaweed = seaweed is None
        self.clock_file = clock_file
        self.max_requeue = max_requeue
        self.operator_args = operator_args
        self.dev = dev
        self._own_dev = dev is None
        self.operator_server = operator_server  # e.g. a fault-injecting proxy in front of the API server
        self.say = say
        self.kubeconfig = workdir / "kubeconfig"
        self.operator_kubeconfig = workdir / "operator.kubeconfig"
        self.operator: subprocess.Popen[bytes] | None = None
        self.operator_log = workdir / "operator.log"
        self.api_client: kubernetes.client.ApiClient | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> LocalCluster:
        from retrain_devcluster.cluster import DevCluster  # dev tooling: tests/support

        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            if self.seaweed is None:
                self.seaweed = SeaweedS3(self.workdir / "seaweedfs").start()
            if self.dev is None:
                self.dev = DevCluster(self.workdir / "devcluster", forward_ports=[self.seaweed.ports["s3"]],
                                      say=self.say).start()
            self.kubeconfig.write_text(self.dev.admin_kubeconfig.read_text())
            self.kubeconfig.chmod(0o600)
            self.dev.operator_kubeconfig(self.operator_kubeconfig)
            if self.operator_server:
                config = self.operator_kubeconfig.read_text().replace(self.dev.url, self.operator_server)
                self.operator_kubeconfig.write_text(config)
            configuration = kubernetes.client.Configuration()
            kubernetes.config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=configuration)
            self.api_client = kubernetes.client.ApiClient(configuration)
            self.start_operator()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def url(self) -> str:
        return str(self.dev.url)

    def start_operator(self) -> None:
        self.operator = self.spawn_operator()

    def spawn_operator(self, *extra: str, log: Path | None = None) -> subprocess.Popen[bytes]:
        """An operator process on this cluster: its own (start_operator), or one more beside it (another shard)."""
        from retrain_devcluster import processes

        command = [sys.executable, "-m", "retrain_operator.cli", "run", "--kubeconfig", str(self.operator_kubeconfig),
                   "--max-requeue", str(self.max_requeue), *self.operator_args, *extra]
        if self.clock_file is not None:
            command += ["--clock-file", str(self.clock_file)]
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        return processes.spawn(command, log or self.operator_log, env=env)

    def stop_operator(self, kill: bool = False) -> None:
        process, self.operator = self.operator, None
        stop_process(process, kill)

    def kill_operator(self) -> None:
        """SIGKILL the operator now, as a lost node would: no grace, no wait, so safe from any thread."""
        process = self.operator
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def restart_operator(self) -> None:
        """A new operator process, as a restarted pod: what the old one held in memory is gone."""
        self.stop_operator(kill=True)
        self.start_operator()

    def stop(self) -> None:
        self.stop_operator()
        if self._own_dev and self.dev is not None:
            self.dev.stop()
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
        """Create it and wait for its `default` ServiceAccount (the controller manager adds it; pods need it)."""
        with contextlib.suppress(ApiException):
            self.core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        self.wait(lambda: self._exists(lambda: self.core.read_namespaced_service_account("default", namespace)),
                  30, f"the default ServiceAccount in {namespace}", interval=0.1)

    def delete_namespace(self, namespace: str) -> None:
        """What a test leaves behind goes: the namespace controller deletes everything in it."""
        with contextlib.suppress(ApiException):
            self.core.delete_namespace(namespace, _preload_content=False)

    @staticmethod
    def _exists(read: Callable[[], Any]) -> bool:
        try:
            read()
            return True
        except ApiException as error:
            if error.status == 404:
                return False
            raise

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
            if self.dev is not None:
                self.dev.check_alive()
            time.sleep(interval)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}\n{self.log_tail()}")

    def operator_requests(self) -> Iterator[Any]:
        """Every request the operator's ServiceAccount made, from the API server's audit log."""
        from retrain_devcluster.cluster import OPERATOR_USER

        return (record for record in self.dev.plane.audit() if record.user == OPERATOR_USER)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.operator_log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no operator log)"


def stop_process(process: subprocess.Popen[bytes] | None, kill: bool = False) -> None:
    """Stop an operator process and its group: SIGTERM (SIGKILL with `kill`), then SIGKILL after 20 s."""
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
