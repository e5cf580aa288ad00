"""A process kubelet: one Node whose pods run as local processes (dev tooling, never shipped).

It registers a Node (with `nvidia.com/gpu` capacity if asked, so GPU requests schedule as on a
GPU node), keeps its Lease and Ready condition fresh, and runs every pod the scheduler binds to
it: a sandbox process owning the pod's network namespace and address (network.py, pause.py),
each container through runner.py with its environment, volumes and termination message,
startup/readiness/liveness probes, restarts by `restartPolicy` with back-off, graceful
deletion. It reports pod status as a kubelet does (status.py) and nothing more: whether a
failed pod fails its Job, or a Deployment is available, the real controllers decide.

It runs as the node's identity (`system:node:NAME` in `system:nodes`), so the Node authorizer
and NodeRestriction limit it exactly as they limit a kubelet.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
from kubernetes.client.rest import ApiException

from .. import processes
from . import containers, probes
from .network import PodNetwork
from .status import ContainerState, PodRecord, pod_status

log = logging.getLogger("kubelet")
Json = dict[str, Any]
HEARTBEAT = 10.0
BACKOFF_START, BACKOFF_MAX = 10.0, 300.0
LOG_TAIL_LINES, LOG_TAIL_BYTES = 80, 2048


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(response: Any) -> Json:
    return json.loads(response.data)


@dataclass
class _Container:
    spec: Json
    state: ContainerState
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    restart_at: float = 0.0
    backoff: float = BACKOFF_START
    kill_deadline: float | None = None
    startup: probes.ProbeState | None = None
    readiness: probes.ProbeState | None = None
    liveness: probes.ProbeState | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def termination_file(self) -> Path:
        return self.directory / "termination-log"


@dataclass
class _Pod:
    namespace: str
    name: str
    record: PodRecord
    directory: Path
    containers: list[_Container]
    sandbox: subprocess.Popen[bytes] | None = None
    terminating: bool = False
    finalized: bool = False
    written: Json | None = None

    @property
    def netns(self) -> str:
        assert self.sandbox is not None
        return f"/proc/{self.sandbox.pid}/ns/net"


class Kubelet:
    def __init__(self, api_client: kubernetes.client.ApiClient, node: str, workdir: Path,
                 capacity: dict[str, str], forward_ports: list[int], image_paths: list[str],
                 labels: dict[str, str] | None = None, interval: float = 0.25):
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.coordination = kubernetes.client.CoordinationV1Api(api_client)
        self.node = node
        self.workdir = workdir
        self.capacity = capacity
        self.forward_ports = forward_ports
        self.image_paths = image_paths
        self.interval = interval
        self.labels = labels or {}
        self.network = PodNetwork()
        self.pods: dict[str, _Pod] = {}
        self._stopping = False
        self._next_heartbeat = 0.0
        self.base_env = {"PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                                 os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")]),
                         "HOME": "/", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8"}
        if os.environ.get("PYTHONPATH"):  # the images are this machine: pods run the source the tests run
            self.base_env["PYTHONPATH"] = os.environ["PYTHONPATH"]

    # -- the node ----------------------------------------------------------------------------------

    def _node_status(self) -> Json:
        stamp = now_rfc3339()

        def condition(type_: str, status: str, reason: str, message: str) -> Json:
            return {"type": type_, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": stamp, "lastTransitionTime": self._started}

        return {
            "capacity": self.capacity, "allocatable": self.capacity,
            "conditions": [condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "ok"),
                           condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "ok"),
                           condition("PIDPressure", "False", "KubeletHasSufficientPID", "ok"),
                           condition("Ready", "True", "KubeletReady", "process kubelet is posting ready status")],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": self.node}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": platform.release(),
                         "osImage": "retrain-devcluster process node", "containerRuntimeVersion": "process://1",
                         "kubeletVersion": os.environ.get("RETRAIN_DEVCLUSTER_VERSION", "v0.0.0"),
                         "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"},
        }

    def register(self) -> None:
        self._started = now_rfc3339()
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node, "labels": {"kubernetes.io/hostname": self.node,
                                                           "kubernetes.io/os": "linux",
                                                           "kubernetes.io/arch": "amd64", **self.labels}},
                "status": self._node_status()}
        try:
            self.core.create_node(body, _preload_content=False)
        except ApiException as error:
            if error.status != 409:
                raise
        self.heartbeat()
        self._next_heartbeat = time.monotonic() + HEARTBEAT

    def heartbeat(self) -> None:
        self.core.patch_node_status(self.node, {"status": self._node_status()}, _preload_content=False)
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": self.node, "namespace": "kube-node-lease"},
                 "spec": {"holderIdentity": self.node, "leaseDurationSeconds": 40,
                          "renewTime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}
        try:
            self.coordination.patch_namespaced_lease(self.node, "kube-node-lease", {"spec": lease["spec"]},
                                                     _preload_content=False)
        except ApiException as error:
            if error.status != 404:
                raise
            self.coordination.create_namespaced_lease("kube-node-lease", lease, _preload_content=False)

    # -- the loop ------------------------------------------------------------------------------------

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "_stopping", True))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "_stopping", True))
        self.register()
        while not self._stopping:
            try:
                self.sync_once()
            except Exception:
                log.exception("sync failed")
            time.sleep(self.interval)
        for pod in list(self.pods.values()):
            self._teardown(pod)

    def sync_once(self) -> None:
        if time.monotonic() >= self._next_heartbeat:
            self._next_heartbeat = time.monotonic() + HEARTBEAT
            try:
                self.heartbeat()
            except ApiException as error:  # pods keep running; the next heartbeat may get through
                log.warning("heartbeat failed: %s %s", error.status, error.reason)
        listed = _json(self.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={self.node}",
                                                             _preload_content=False))["items"]
        seen = set()
        for pod in listed:
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            try:
                self._sync(pod)
            except Exception:
                log.exception("pod %s/%s", pod["metadata"]["namespace"], pod["metadata"]["name"])
        for uid in [uid for uid in self.pods if uid not in seen]:  # removed from the API: stop what is left
            self._teardown(self.pods.pop(uid))

    # -- one pod -------------------------------------------------------------------------------------

    def _sync(self, pod: Json) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        local = self.pods.get(meta["uid"])
        if local is None:
            if (pod.get("status") or {}).get("phase") in {"Succeeded", "Failed"}:
                return  # finished before this kubelet started: nothing to run
            if meta.get("deletionTimestamp"):
                self._finalize(pod)
                return
            local = self._admit(pod)
            self.pods[meta["uid"]] = local
        if meta.get("deletionTimestamp") and not local.terminating:
            local.terminating = True
            grace = float(spec.get("terminationGracePeriodSeconds", 30))
            for container in local.containers:
                self._signal(container, grace)
                self._event(pod, "Normal", "Killing", f"Stopping container {container.spec['name']}")
        for container in local.containers:
            self._step(pod, local, container)
        if local.terminating and all(c.process is None for c in local.containers) and not local.finalized:
            # A deleted pod ends in a terminal phase before it leaves the API (kubelets since 1.27).
            self._terminal(local)
            self._write_status(pod, local)
            self._teardown(local)
            self._finalize(pod)
            local.finalized = True
        else:
            self._write_status(pod, local)

    def _admit(self, pod: Json) -> _Pod:
        meta, spec = pod["metadata"], pod["spec"]
        directory = self.workdir / f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"
        directory.mkdir(parents=True, exist_ok=True)
        record = PodRecord(uid=meta["uid"], restart_policy=spec.get("restartPolicy", "Always"),
                           host_ip="127.0.0.1", start_time=now_rfc3339())
        record.containers = [ContainerState(name=c["name"], image=c.get("image", "")) for c in spec["containers"]]
        local = _Pod(meta["namespace"], meta["name"], record, directory,
                     [_Container(c, state, directory / c["name"])
                      for c, state in zip(spec["containers"], record.containers, strict=True)])
        for volume in spec.get("volumes") or []:
            (directory / "volumes" / volume["name"]).mkdir(parents=True, exist_ok=True)
        ready = directory / "sandbox.ready"
        ready.unlink(missing_ok=True)
        command = [sys.executable, "-m", "retrain_devcluster.kubelet.pause", "--ready", str(ready)]
        for port in self.forward_ports:
            command += ["--forward", str(port)]
        local.sandbox = processes.spawn(command, directory / "sandbox.log")
        try:
            processes.wait_until(ready.exists, 15, f"the sandbox of {meta['name']}", local.sandbox,
                                 directory / "sandbox.log", interval=0.05)
            record.pod_ip = self.network.attach(meta["uid"], local.sandbox.pid)
        except BaseException:  # no half-made sandbox stays behind; the next sync starts over
            processes.stop(local.sandbox, grace=2)
            raise
        record.sandbox_ready = True
        return local

    def _lookup(self, namespace: str):
        def lookup(kind: str, name: str) -> Json | None:
            try:
                if kind == "Secret":
                    return _json(self.core.read_namespaced_secret(name, namespace, _preload_content=False))
                return _json(self.core.read_namespaced_config_map(name, namespace, _preload_content=False))
            except ApiException as error:
                if error.status == 404:
                    return None
                raise containers.ConfigError(f"{kind} {name}: {error.status} {error.reason}") from error
        return lookup

    def _volumes(self, pod: Json, local: _Pod, container: Json) -> list[Json]:
        """Bind mounts for the container's volumeMounts: emptyDir, Secret and ConfigMap volumes."""
        lookup = self._lookup(local.namespace)
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        mounts = []
        for mount in container.get("volumeMounts") or []:
            volume = volumes[mount["name"]]
            source = local.directory / "volumes" / volume["name"]
            for kind, key in (("Secret", "secret"), ("ConfigMap", "configMap")):
                if key in volume:
                    ref = volume[key].get("secretName") or volume[key].get("name")
                    obj = lookup(kind, ref)
                    if obj is None:
                        if volume[key].get("optional"):
                            continue
                        raise containers.ConfigError(f'{kind.lower()} "{ref}" not found')
                    data = containers.data_of(obj, kind)
                    items = volume[key].get("items")  # only these keys, each at its path, as a kubelet does
                    for name, path in ((i["key"], i["path"]) for i in items) if items else ((n, n) for n in data):
                        if name not in data:
                            raise containers.ConfigError(f'{kind.lower()} "{ref}" has no key "{name}"')
                        (source / path).parent.mkdir(parents=True, exist_ok=True)
                        (source / path).write_text(data[name])
            if mount.get("subPath"):
                source = source / mount["subPath"]
            mounts.append({"source": str(source), "target": mount["mountPath"],
                           "readOnly": bool(mount.get("readOnly")) or "secret" in volume or "configMap" in volume})
        return mounts

    def _start(self, pod: Json, local: _Pod, container: _Container) -> None:
        spec = container.spec
        env = containers.environment(pod, spec, self._lookup(local.namespace), self.base_env)
        command = containers.command(spec, env)
        mounts = self._volumes(pod, local, spec)
        container.directory.mkdir(parents=True, exist_ok=True)
        container.termination_file.write_text("")
        run_spec = {"netns": local.netns, "command": command, "env": env, "workingDir": spec.get("workingDir"),
                    "mounts": mounts, "imagePaths": self.image_paths,
                    "readOnlyRoot": bool((spec.get("securityContext") or {}).get("readOnlyRootFilesystem")),
                    "terminationLog": {"source": str(container.termination_file),
                                       "target": spec.get("terminationMessagePath", "/dev/termination-log")}}
        spec_file = container.directory / "run.json"
        spec_file.write_text(json.dumps(run_spec))
        state = container.state
        log_file = container.directory / f"{state.restart_count}.log"
        container.process = processes.spawn([sys.executable, "-m", "retrain_devcluster.kubelet.runner",
                                             str(spec_file)], log_file, env={**os.environ, **env})
        container.env = env
        state.state, state.reason, state.message = "running", "", ""
        state.started_at, state.finished_at, state.exit_code = now_rfc3339(), None, None
        state.container_id = f"process://{container.process.pid}"
        state.ready = False
        container.startup = probes.new(spec.get("startupProbe"))
        container.readiness = probes.new(spec.get("readinessProbe"))
        container.liveness = probes.new(spec.get("livenessProbe"))
        state.started = container.startup is None
        container.kill_deadline = None
        self._event(pod, "Normal", "Started", f"Started container {spec['name']}")

    def _signal(self, container: _Container, grace: float) -> None:
        if container.process is not None and container.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(container.process.pid, signal.SIGTERM)
            container.kill_deadline = time.monotonic() + grace

    def _step(self, pod: Json, local: _Pod, container: _Container) -> None:
        state, now = container.state, time.monotonic()
        if container.process is None:
            if local.terminating or (state.state == "terminated" and not self._restarts(local, state)):
                return
            if state.state == "waiting" and state.reason == "CrashLoopBackOff" and now < container.restart_at:
                return
            try:
                self._start(pod, local, container)
            except containers.ConfigError as error:
                if state.message != str(error):
                    self._event(pod, "Warning", "Failed", f"Error: {error}")
                state.state, state.reason, state.message = "waiting", "CreateContainerConfigError", str(error)
            return
        code = container.process.poll()
        if code is None:
            if container.kill_deadline is not None and now >= container.kill_deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(container.process.pid, signal.SIGKILL)
            elif container.kill_deadline is None:
                self._probe(pod, local, container, now)
            return
        self._exited(local, container, code)

    def _probe(self, pod: Json, local: _Pod, container: _Container, now: float) -> None:
        state, spec = container.state, container.spec
        grace = float(pod["spec"].get("terminationGracePeriodSeconds", 30))
        checks = [("Startup", container.startup)] if not state.started else [
            ("Readiness", container.readiness), ("Liveness", container.liveness)]
        for kind, probe in checks:
            if probe is None or not probe.due(now):
                continue
            ok = probes.check(probe.probe, spec, local.record.pod_ip, local.netns, container.env)
            probe.record(ok, now)
            if not ok:
                self._event(pod, "Warning", "Unhealthy", f"{kind} probe failed")
            if kind == "Startup" and probe.passed:
                state.started = True
            if kind in {"Startup", "Liveness"} and probe.failed:
                self._event(pod, "Normal", "Killing", f"Container {spec['name']} failed {kind.lower()} probe, "
                                                      "will be restarted")
                self._signal(container, grace)
                return
        state.ready = state.started and (container.readiness.passed if container.readiness else True)

    def _exited(self, local: _Pod, container: _Container, code: int) -> None:
        state, spec = container.state, container.spec
        container.process = None
        if code < 0:  # killed by a signal: a runtime reports 128 + the signal (143 for SIGTERM, 137 for SIGKILL)
            code = 128 - code
        message = container.termination_file.read_text(errors="replace").strip()
        if not message and code != 0 and spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            message = _log_tail(container.directory / f"{state.restart_count}.log")
        state.state, state.exit_code, state.finished_at = "terminated", code, now_rfc3339()
        state.reason = "Completed" if code == 0 else ("StartError" if code == 128 else "Error")
        state.message, state.ready = message[-4096:], False
        if not local.terminating and self._restarts(local, state):
            state.last_terminated = state.terminated()
            state.restart_count += 1
            container.restart_at = time.monotonic() + container.backoff
            container.backoff = min(container.backoff * 2, BACKOFF_MAX)
            state.state, state.reason, state.message = "waiting", "CrashLoopBackOff", (
                f"back-off {container.backoff / 2:.0f}s restarting failed container={spec['name']}")

    @staticmethod
    def _terminal(local: _Pod) -> None:
        """What the kubelet's TerminatePod does: once a container ran, any not terminated is reported failed."""
        record = local.record
        record.terminal = True
        if any(c.state in {"running", "terminated"} or c.last_terminated for c in record.containers):
            for state in record.containers:
                if state.state != "terminated":
                    state.state, state.exit_code, state.ready = "terminated", 137, False
                    state.reason = "ContainerStatusUnknown"
                    state.message = "The container could not be located when the pod was terminated"
                    state.finished_at = state.finished_at or now_rfc3339()

    @staticmethod
    def _restarts(local: _Pod, state: ContainerState) -> bool:
        policy = local.record.restart_policy
        return policy == "Always" or (policy == "OnFailure" and state.exit_code != 0)

    def _write_status(self, pod: Json, local: _Pod) -> None:
        status = pod_status(local.record, pod, now_rfc3339())
        comparable = {k: v for k, v in status.items() if k != "conditions"}, [
            (c["type"], c["status"]) for c in status["conditions"]]
        if comparable == local.written:
            return
        try:
            self.core.patch_namespaced_pod_status(local.name, local.namespace, {"status": status},
                                                  _preload_content=False)
            local.written = comparable
        except ApiException as error:
            if error.status != 404:
                log.warning("pod %s/%s status: %s", local.namespace, local.name, error.reason)

    def _teardown(self, local: _Pod) -> None:
        """Stop everything of the pod and give its address back, once (a later call finds nothing to do)."""
        for container in local.containers:
            processes.stop(container.process, grace=5)
            container.process = None
        processes.stop(local.sandbox, grace=2)
        if local.sandbox is not None:
            self.network.release(local.record.pod_ip, local.record.uid)
            local.sandbox = None

    def _finalize(self, pod: Json) -> None:
        """The kubelet's last word on a deleted pod: remove it now that nothing runs."""
        meta = pod["metadata"]
        with contextlib.suppress(ApiException):
            # Grace period in the body: with a body, the API server ignores the query's gracePeriodSeconds, and
            # the pod would stay Terminating (with its namespace) for good.
            self.core.delete_namespaced_pod(meta["name"], meta["namespace"],
                                            body={"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
                                            _preload_content=False)

    def _event(self, pod: Json, type_: str, reason: str, message: str) -> None:
        meta, stamp = pod["metadata"], now_rfc3339()
        body = {"apiVersion": "v1", "kind": "Event",
                "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                   "namespace": meta["namespace"], "uid": meta["uid"]},
                "type": type_, "reason": reason, "message": message, "source": {"component": "kubelet",
                                                                                 "host": self.node},
                "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1, "reportingComponent": "kubelet",
                "reportingInstance": self.node}
        with contextlib.suppress(ApiException):
            self.core.create_namespaced_event(meta["namespace"], body, _preload_content=False)


def _log_tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-LOG_TAIL_LINES:])[-LOG_TAIL_BYTES:]
