"""A stand-in for the Deployment controller and the kubelet, for long-running model servers.

Like the local Job executor, it watches the API (Deployments), runs each pod's container as a
local process, and reports back the way the real controllers do: Pod objects with labels from
the template, owner references and a Ready condition once the container's readiness probe
answers; Deployment status with replicas, updatedReplicas, readyReplicas and observedGeneration.
A template change rolls out surge-first (new pods Ready before old ones go), as the operator's
`maxUnavailable: 0` asks. Each process listens on its own 127.0.0.1 port; the Pod's annotation
PORT_MAP tells the test API server's pod proxy where the container port really is.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
from kubernetes.client.rest import ApiException

from ..core.timeutil import to_rfc3339
from .local_executor import container_env

log = logging.getLogger(__name__)
Json = dict[str, Any]
PORT_MAP = "faithful-kube.local/port-map"  # read by the test API server's pod proxy (faithful_kube.server)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def template_hash(deployment: Json) -> str:
    template = (deployment.get("spec") or {}).get("template") or {}
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def _local_args(container: Json, port: int) -> tuple[list[str], dict[str, int]]:
    """The container's command with its port moved to a free local one; {container port: local port}."""
    command = [*(container.get("command") or []), *(container.get("args") or [])]
    ports = [int(p["containerPort"]) for p in container.get("ports") or []]
    if "--port" in command:
        index = command.index("--port") + 1
        command[index] = str(port)
    else:
        command += ["--port", str(port)]
    if "--host" not in command:
        command += ["--host", "127.0.0.1"]
    return command, {str(p): port for p in ports} or {"http": port}


@dataclass
class _Pod:
    name: str
    namespace: str
    template: str
    port: int
    process: subprocess.Popen[bytes]
    ready: bool = False


@dataclass
class _Deployment:
    pods: list[_Pod] = field(default_factory=list)
    counter: int = 0


class LocalDeployments:
    """Run Deployments from the API as local processes; `run_forever()` until `stop()`."""

    def __init__(self, api_client: kubernetes.client.ApiClient, workdir: Path, namespace: str | None = None,
                 poll_interval: float = 0.3, extra_path: list[str] | None = None):
        self.apps = kubernetes.client.AppsV1Api(api_client)
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.workdir = workdir
        self.namespace = namespace
        self.poll_interval = poll_interval
        self.extra_path = extra_path or [str(Path(sys.executable).parent)]
        self._deployments: dict[tuple[str, str], _Deployment] = {}
        self._stop = threading.Event()

    # -- pods ------------------------------------------------------------------------------

    def _start_pod(self, deployment: Json, state: _Deployment) -> _Pod | None:
        meta = deployment["metadata"]
        namespace, template = meta["namespace"], template_hash(deployment)
        state.counter += 1
        name = f"{meta['name']}-{template[:8]}-{state.counter}"
        pod_template = deployment["spec"]["template"]
        container = pod_template["spec"]["containers"][0]
        port = _free_port()
        command, port_map = _local_args(container, port)
        tmpdir = self.workdir / namespace / name
        tmpdir.mkdir(parents=True, exist_ok=True)
        try:
            env = container_env(self.core, namespace, name, container, self.extra_path, tmpdir)
        except (KeyError, ApiException) as error:
            log.warning("pod %s/%s cannot start: %s", namespace, name, error)
            return None
        pod_object = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": dict((pod_template.get("metadata") or {}).get("labels") or {}),
                         "annotations": {PORT_MAP: json.dumps(port_map)},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                                              "uid": meta.get("uid", ""), "controller": True}]},
            "spec": pod_template["spec"],
        }
        try:
            self.core.create_namespaced_pod(namespace, pod_object, _preload_content=False)
        except ApiException as error:
            log.warning("creating pod %s/%s failed: %s", namespace, name, error)
            return None
        with open(tmpdir / "container.log", "wb") as log_file:
            process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, cwd=tmpdir, start_new_session=True)
        self._patch_pod_status(namespace, name, ready=False)
        return _Pod(name=name, namespace=namespace, template=template, port=port, process=process)

    def _patch_pod_status(self, namespace: str, name: str, ready: bool, phase: str = "Running") -> None:
        now = to_rfc3339(dt.datetime.now(dt.UTC))
        status = {"phase": phase, "podIP": "127.0.0.1",
                  "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now}]}
        with contextlib.suppress(ApiException):
            self.core.patch_namespaced_pod_status(name, namespace, {"status": status})

    def _probe(self, pod: _Pod) -> None:
        if pod.process.poll() is not None:
            if pod.ready:
                pod.ready = False
                self._patch_pod_status(pod.namespace, pod.name, ready=False, phase="Failed")
            return
        if pod.ready:
            return
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{pod.port}/readyz", timeout=1) as response:
                ok = response.status == 200
        except OSError:
            ok = False
        if ok:
            pod.ready = True
            self._patch_pod_status(pod.namespace, pod.name, ready=True)

    def _kill(self, pod: _Pod) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pod.process.pid, signal.SIGTERM)
        try:
            pod.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pod.process.pid, signal.SIGKILL)
            pod.process.wait()
        with contextlib.suppress(ApiException):
            self.core.delete_namespaced_pod(pod.name, pod.namespace, _preload_content=False)

    # -- the control loop ------------------------------------------------------------------------

    def _list(self) -> list[Json]:
        if self.namespace:
            response = self.apps.list_namespaced_deployment(self.namespace, _preload_content=False)
        else:
            response = self.apps.list_deployment_for_all_namespaces(_preload_content=False)
        return list(json.loads(response.data).get("items") or [])

    def _reconcile(self, deployment: Json, state: _Deployment) -> None:
        meta = deployment["metadata"]
        wanted = int((deployment.get("spec") or {}).get("replicas", 1))
        current = template_hash(deployment)
        for pod in state.pods:
            self._probe(pod)
        dead = [pod for pod in state.pods if pod.process.poll() is not None]
        for pod in dead:  # a crashed container: the kubelet restarts it, here a new pod replaces it
            self._kill(pod)
            state.pods.remove(pod)
        new = [pod for pod in state.pods if pod.template == current]
        old = [pod for pod in state.pods if pod.template != current]
        while len(new) < wanted:
            started = self._start_pod(deployment, state)
            if started is None:
                break
            state.pods.append(started)
            new.append(started)
        for pod in new[wanted:]:  # scale down: the newest go first
            self._kill(pod)
            state.pods.remove(pod)
        new = new[:wanted]
        if old and all(pod.ready for pod in new):  # surge first: old pods go once the new ones serve
            for pod in old:
                self._kill(pod)
                state.pods.remove(pod)
        status = {"observedGeneration": meta.get("generation", 1), "replicas": len(state.pods),
                  "updatedReplicas": len(new), "readyReplicas": sum(p.ready for p in state.pods),
                  "availableReplicas": sum(p.ready for p in state.pods)}
        if (deployment.get("status") or {}) != status:
            with contextlib.suppress(ApiException):
                self.apps.patch_namespaced_deployment_status(meta["name"], meta["namespace"], {"status": status})

    def poll_once(self) -> None:
        seen = set()
        for deployment in self._list():
            key = (deployment["metadata"]["namespace"], deployment["metadata"]["name"])
            seen.add(key)
            self._reconcile(deployment, self._deployments.setdefault(key, _Deployment()))
        for key in [key for key in self._deployments if key not in seen]:  # deleted: its pods go too
            for pod in self._deployments.pop(key).pods:
                self._kill(pod)

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("local deployments poll failed")
            self._stop.wait(self.poll_interval)
        for state in self._deployments.values():
            for pod in state.pods:
                self._kill(pod)
        self._deployments.clear()

    def stop(self) -> None:
        self._stop.set()
