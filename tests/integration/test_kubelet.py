"""The dev cluster's node behaves like a kubelet, and the real controllers decide what its reports mean.

The process kubelet (tests/support/retrain_devcluster/kubelet) only runs containers and reports pod
status; the Job, ReplicaSet and Deployment controllers of the real kube-controller-manager, and the
real kube-scheduler, do the rest. Each test here runs real pods on the node and asserts what a real
cluster would show: Job conditions and reasons, container states and exit codes, termination
messages, environment from Secrets and the downward API, readiness, the API server's pod proxy
through the pod's own address, GPU scheduling, graceful deletion and a read-only root file system.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client.rest import ApiException

from retrain_devcluster import processes
from retrain_devcluster.cluster import NODE
from retrain_devcluster.controlplane import free_port

pytestmark = pytest.mark.integration
Json = dict[str, Any]
POD_NETWORK = ipaddress.ip_network("198.18.0.0/15")
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


def _json(response: Any) -> Json:
    return json.loads(response.data)


class Kube:
    """One test's namespace on the dev cluster, through the admin client, read as plain JSON."""

    def __init__(self, devcluster: Any, namespace: str):
        self.devcluster = devcluster
        self.namespace = namespace
        self.core = kubernetes.client.CoreV1Api(devcluster.client)
        self.batch = kubernetes.client.BatchV1Api(devcluster.client)
        self.apps = kubernetes.client.AppsV1Api(devcluster.client)

    # -- reads ---------------------------------------------------------------------------------------

    def pod(self, name: str) -> Json:
        return _json(self.core.read_namespaced_pod(name, self.namespace, _preload_content=False))

    def pods(self, selector: str) -> list[Json]:
        return _json(self.core.list_namespaced_pod(self.namespace, label_selector=selector,
                                                   _preload_content=False))["items"]

    def job(self, name: str) -> Json:
        return _json(self.batch.read_namespaced_job(name, self.namespace, _preload_content=False))

    def deployment(self, name: str) -> Json:
        return _json(self.apps.read_namespaced_deployment(name, self.namespace, _preload_content=False))

    def events(self, name: str) -> list[Json]:
        return _json(self.core.list_namespaced_event(self.namespace, field_selector=f"involvedObject.name={name}",
                                                     _preload_content=False))["items"]

    # -- writes --------------------------------------------------------------------------------------

    def create_pod(self, body: Json) -> Json:
        return _json(self.core.create_namespaced_pod(self.namespace, body, _preload_content=False))

    def create_job(self, body: Json) -> Json:
        return _json(self.batch.create_namespaced_job(self.namespace, body, _preload_content=False))

    def create_deployment(self, body: Json) -> Json:
        return _json(self.apps.create_namespaced_deployment(self.namespace, body, _preload_content=False))

    def create_secret(self, name: str, data: dict[str, str]) -> None:
        self.core.create_namespaced_secret(self.namespace, {"metadata": {"name": name}, "stringData": data},
                                           _preload_content=False)

    # -- waiting -------------------------------------------------------------------------------------

    def wait(self, probe: Callable[[], Any], timeout: float, what: str) -> Any:
        """Poll `probe` until it returns something truthy; fail early if a cluster component died."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            self.devcluster.check_alive()
            try:
                last = probe()
            except ApiException as error:
                if error.status != 404:
                    raise
                last = None
            if last:
                return last
            time.sleep(0.25)
        kubelet_log = processes.tail(self.devcluster.plane.logs / "kubelet.log", 20)
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last}\n{kubelet_log}")

    def job_condition(self, name: str, type_: str, timeout: float = 60) -> Json:
        def done() -> Json | None:
            job = self.job(name)
            for condition in (job.get("status") or {}).get("conditions") or []:
                if condition["type"] == type_ and condition["status"] == "True":
                    return job
            return None
        return self.wait(done, timeout, f"Job {name} to be {type_}")

    def pod_phase(self, name: str, *phases: str, timeout: float = 60) -> Json:
        return self.wait(lambda: (lambda p: p if (p.get("status") or {}).get("phase") in phases else None)(
            self.pod(name)), timeout, f"pod {name} to be {' or '.join(phases)}")


@pytest.fixture()
def kube(devcluster: Any) -> Iterator[Kube]:
    """A namespace of this test's own (with its default ServiceAccount, which pods need), deleted at the end."""
    namespace = f"kubelet-{uuid.uuid4().hex[:8]}"
    made = Kube(devcluster, namespace)
    made.core.create_namespace({"metadata": {"name": namespace}}, _preload_content=False)
    try:
        made.wait(lambda: made.core.read_namespaced_service_account("default", namespace), 30,
                  f"the default ServiceAccount in {namespace}")
        yield made
    finally:
        with contextlib.suppress(ApiException):
            made.core.delete_namespace(namespace, _preload_content=False)


def container(command: list[str], name: str = "main", **extra: Any) -> Json:
    return {"name": name, "image": "busybox:1.36", "command": command, **extra}


def job(name: str, command: list[str], backoff_limit: int = 0, **spec: Any) -> Json:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": backoff_limit, **spec,
                     "template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 5,
                                           "containers": [container(command)]}}}}


def deployment(name: str, pod_spec: Json) -> Json:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod_spec}}}


def terminated(pod: Json) -> Json:
    return pod["status"]["containerStatuses"][0]["state"]["terminated"]


def conditions(obj: Json) -> dict[str, Json]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def status_managers(obj: Json) -> set[str]:
    return {f["manager"] for f in obj["metadata"].get("managedFields") or [] if f.get("subresource") == "status"}


def pid_of(pod: Json) -> int:
    container_id = pod["status"]["containerStatuses"][0]["containerID"]
    assert container_id.startswith("process://"), container_id
    return int(container_id.removeprefix("process://"))


def process_start(pid: int) -> str | None:
    """The start time of `pid` (field 22 of /proc/PID/stat), None when no such process is running."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


# -- Jobs: the Job controller decides -------------------------------------------------------------------


def test_a_job_whose_container_exits_0_completes(kube: Kube):
    kube.create_job(job("ok", ["sh", "-c", "echo working; exit 0"]))
    finished = kube.job_condition("ok", "Complete")
    assert finished["status"]["succeeded"] == 1
    assert not finished["status"].get("failed")
    assert conditions(finished)["SuccessCriteriaMet"]["status"] == "True"
    assert "kube-controller-manager" in status_managers(finished)  # the real Job controller wrote it

    [pod] = kube.pods(f"{JOB_NAME_LABEL}=ok")
    assert pod["spec"]["nodeName"] == NODE
    assert pod["status"]["phase"] == "Succeeded"
    state = terminated(pod)
    assert state["exitCode"] == 0 and state["reason"] == "Completed"
    assert state["startedAt"] <= state["finishedAt"]
    assert conditions(pod)["Ready"]["status"] == "False" and conditions(pod)["Ready"]["reason"] == "PodCompleted"


def test_a_job_over_its_backoff_limit_fails(kube: Kube):
    kube.create_job(job("crash", ["sh", "-c", "echo failing >&2; exit 3"], backoff_limit=1))
    failed = kube.job_condition("crash", "Failed", timeout=90)
    condition = conditions(failed)["Failed"]
    assert condition["reason"] == "BackoffLimitExceeded", condition
    assert failed["status"]["failed"] == 2 and not failed["status"].get("succeeded")
    pods = kube.pods(f"{JOB_NAME_LABEL}=crash")
    assert len(pods) == 2  # the first try and one retry (backoffLimit 1)
    for pod in pods:
        assert pod["status"]["phase"] == "Failed"
        assert terminated(pod)["exitCode"] == 3 and terminated(pod)["reason"] == "Error"


def test_a_pod_failure_policy_fails_the_job_at_once(kube: Kube):
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In",
                                                              "values": [42]}}]}
    kube.create_job(job("fatal", ["sh", "-c", "exit 42"], backoff_limit=6, podFailurePolicy=policy))
    failed = kube.job_condition("fatal", "Failed", timeout=60)
    condition = conditions(failed)["Failed"]
    assert condition["reason"] == "PodFailurePolicy", condition
    assert "exit code 42" in condition["message"] and "FailJob rule at index 0" in condition["message"]
    [pod] = kube.pods(f"{JOB_NAME_LABEL}=fatal")  # no retry, backoffLimit 6 notwithstanding
    assert terminated(pod)["exitCode"] == 42


# -- what reaches the process ------------------------------------------------------------------------------


def test_env_from_a_secret_and_the_downward_api_reach_the_process(kube: Kube):
    kube.create_secret("token", {"value": "s3cr3t-value"})
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "token", "key": "value"}}},
           {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
           {"name": "GREETING", "value": "hello-$(NS)"}]
    script = 'printf "%s %s %s" "$TOKEN" "$NS" "$GREETING" > /dev/termination-log'
    kube.create_pod({"metadata": {"name": "env"},
                     "spec": {"restartPolicy": "Never", "containers": [container(["sh", "-c", script], env=env)]}})
    pod = kube.pod_phase("env", "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Succeeded", pod["status"]
    ns = kube.namespace
    assert terminated(pod)["message"] == f"s3cr3t-value {ns} hello-{ns}"


def test_a_missing_secret_keeps_the_pod_pending_until_it_exists(kube: Kube):
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "value"}}}]
    kube.create_pod({"metadata": {"name": "waiting"}, "spec": {"restartPolicy": "Never", "containers": [
        container(["sh", "-c", 'printf "%s" "$TOKEN" > /dev/termination-log'], env=env)]}})

    def config_error() -> Json | None:
        pod = kube.pod("waiting")
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        waiting = statuses[0]["state"].get("waiting") if statuses else None
        return pod if waiting and waiting["reason"] == "CreateContainerConfigError" else None

    pod = kube.wait(config_error, 30, "CreateContainerConfigError")
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    assert 'secret "absent" not found' in waiting["message"]
    assert pod["status"]["phase"] == "Pending"
    assert "containerID" not in pod["status"]["containerStatuses"][0]  # nothing was started
    time.sleep(2)  # it stays so
    assert kube.pod("waiting")["status"]["phase"] == "Pending"
    assert any(e["reason"] == "Failed" and 'secret "absent" not found' in e["message"]
               for e in kube.events("waiting"))

    kube.create_secret("absent", {"value": "arrived"})  # a kubelet keeps trying
    pod = kube.pod_phase("waiting", "Succeeded", "Failed", timeout=30)
    assert pod["status"]["phase"] == "Succeeded"
    assert terminated(pod)["message"] == "arrived"


def test_a_read_only_root_file_system_with_an_empty_dir_at_tmp(kube: Kube, devcluster: Any):
    marker = f"rtv-{uuid.uuid4().hex[:8]}"
    script = (f"echo data > /tmp/{marker} && tmp=ok || tmp=refused; "
              f"err=$( (echo data > /etc/{marker}) 2>&1 ) && etc=ok || etc=refused; "
              f"err2=$( (echo data > /var/{marker}) 2>&1 ) && var=ok || var=refused; "
              'printf "tmp=%s etc=%s var=%s|%s" "$tmp" "$etc" "$var" "$err" > /dev/termination-log')
    kube.create_pod({"metadata": {"name": "readonly"}, "spec": {
        "restartPolicy": "Never", "volumes": [{"name": "tmp", "emptyDir": {}}],
        "containers": [container(["sh", "-c", script], securityContext={"readOnlyRootFilesystem": True},
                                 volumeMounts=[{"name": "tmp", "mountPath": "/tmp"}])]}})
    try:
        pod = kube.pod_phase("readonly", "Succeeded", "Failed")
        message = terminated(pod)["message"]
        verdict, _, error = message.partition("|")
        assert verdict == "tmp=ok etc=refused var=refused", message
        assert "Read-only file system" in error
        # /tmp was the pod's emptyDir, not the node's /tmp.
        assert not Path(f"/tmp/{marker}").exists()
        written = list((devcluster.workdir / "pods").glob(f"{kube.namespace}_readonly_*/volumes/tmp/{marker}"))
        assert [p.read_text() for p in written] == ["data\n"]
    finally:  # were the root writable, the node's own /etc and /var would have the file now
        for leaked in (Path(f"/etc/{marker}"), Path(f"/var/{marker}"), Path(f"/tmp/{marker}")):
            leaked.unlink(missing_ok=True)


# -- Deployments: readiness, the pod proxy, deletion --------------------------------------------------------


def server_pod_spec(port: int, probe_port: str = "http") -> Json:
    return {"terminationGracePeriodSeconds": 5, "containers": [container(
        [sys.executable, "-m", "http.server", str(port)], name="web",
        ports=[{"name": "http", "containerPort": port}, {"name": "closed", "containerPort": port + 1}],
        readinessProbe={"httpGet": {"path": "/", "port": probe_port}, "periodSeconds": 1, "failureThreshold": 1})]}


def test_a_deployment_becomes_ready_and_the_pod_proxy_reaches_its_own_address(kube: Kube):
    port = free_port()  # free on the node: nothing there answers it but the pod
    kube.create_deployment(deployment("web", server_pod_spec(port)))
    kube.create_deployment(deployment("never-ready", server_pod_spec(port, probe_port="closed")))

    ready = kube.wait(lambda: (lambda d: d if (d.get("status") or {}).get("readyReplicas") == 1 else None)(
        kube.deployment("web")), 60, "Deployment web to have a ready replica")
    assert ready["status"]["availableReplicas"] == 1
    assert conditions(ready)["Available"]["status"] == "True"
    [pod] = kube.pods("app=web")
    assert conditions(pod)["Ready"]["status"] == "True"
    assert pod["status"]["containerStatuses"][0]["ready"] is True

    address = ipaddress.ip_address(pod["status"]["podIP"])
    assert address in POD_NETWORK and not address.is_loopback, address
    assert pod["status"]["hostIP"] == "127.0.0.1"
    # Its own network namespace: nothing listens on the node's loopback at that port.
    pid = pid_of(pod)
    assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass

    # The API server's pod proxy dials the pod's address.
    response = kube.core.connect_get_namespaced_pod_proxy_with_path(
        f"{pod['metadata']['name']}:{port}", kube.namespace, "etc/", _preload_content=False)
    assert response.status == 200
    assert "Directory listing for /etc/" in response.data.decode()

    # The probe is real: the other Deployment's probe dials a closed port, so its running pod is never ready.
    def probed_and_failed() -> Json | None:
        pods = kube.pods("app=never-ready")
        unhealthy = pods and any(e["reason"] == "Unhealthy" for e in kube.events(pods[0]["metadata"]["name"]))
        return pods[0] if unhealthy else None

    unready = kube.wait(probed_and_failed, 30, "a failed readiness probe of never-ready")
    assert unready["status"]["phase"] == "Running"
    assert conditions(unready)["Ready"]["status"] == "False"
    assert not kube.deployment("never-ready")["status"].get("readyReplicas")


def test_deleting_a_running_pod_stops_its_process_and_the_replica_set_replaces_it(kube: Kube):
    kube.create_deployment(deployment("sleeper", {"terminationGracePeriodSeconds": 10, "containers": [
        container(["sleep", "3600"])]}))

    def running_pod() -> Json | None:
        pods = [p for p in kube.pods("app=sleeper") if not p["metadata"].get("deletionTimestamp")]
        running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"
                   and "running" in p["status"]["containerStatuses"][0]["state"]]
        return running[0] if running else None

    first = kube.wait(running_pod, 60, "a running sleeper pod")
    pid = pid_of(first)
    started = process_start(pid)
    assert started is not None, f"no process {pid}"
    # (The containerID is the runner's pid, which execs the command once the mounts are set up.)
    kube.wait(lambda: Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"3600"], 10,
              f"process {pid} to be the container's command")

    kube.core.delete_namespaced_pod(first["metadata"]["name"], kube.namespace, _preload_content=False)
    kube.wait(lambda: process_start(pid) != started, 20, f"process {pid} to stop")

    def gone() -> bool:
        try:
            kube.pod(first["metadata"]["name"])
        except ApiException as error:
            return error.status == 404
        return False
    kube.wait(gone, 30, "the deleted pod to leave the API")  # the kubelet's last word
    replacement = kube.wait(lambda: (lambda p: p if p and p["metadata"]["uid"] != first["metadata"]["uid"]
                                     else None)(running_pod()), 60, "the replacement pod to run")
    owner = replacement["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "ReplicaSet" and owner["name"] == first["metadata"]["ownerReferences"][0]["name"]
    new_pid = pid_of(replacement)
    assert new_pid != pid and process_start(new_pid) is not None
    assert any(e["reason"] == "Killing" for e in kube.events(first["metadata"]["name"]))


# -- scheduling: the real scheduler against the node's capacity --------------------------------------------


def test_gpu_requests_schedule_within_the_nodes_capacity(kube: Kube):
    node = _json(kube.core.read_node(NODE, _preload_content=False))
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "2"

    def gpu_pod(name: str, count: int) -> Json:
        return {"metadata": {"name": name}, "spec": {
            "restartPolicy": "Never", "nodeSelector": {"nvidia.com/gpu.present": "true"},
            "containers": [container(["sh", "-c", "exit 0"], resources={"limits": {"nvidia.com/gpu": count}})]}}

    kube.create_pod(gpu_pod("one-gpu", 1))
    kube.create_pod(gpu_pod("three-gpus", 3))
    done = kube.pod_phase("one-gpu", "Succeeded", "Failed")
    assert done["spec"]["nodeName"] == NODE and done["status"]["phase"] == "Succeeded"
    assert conditions(done)["PodScheduled"]["status"] == "True"

    def failed_scheduling() -> list[Json]:
        return [e for e in kube.events("three-gpus") if e["reason"] == "FailedScheduling"]

    events = kube.wait(failed_scheduling, 30, "a FailedScheduling event")
    assert events[0]["type"] == "Warning"
    assert "default-scheduler" in {events[0].get("reportingComponent"), (events[0].get("source") or {}).get(
        "component")}
    assert "Insufficient nvidia.com/gpu" in events[0]["message"], events[0]["message"]
    pending = kube.pod("three-gpus")
    assert pending["status"]["phase"] == "Pending" and not pending["spec"].get("nodeName")
    scheduled = conditions(pending)["PodScheduled"]
    assert scheduled["status"] == "False" and scheduled["reason"] == "Unschedulable"


# -- graceful deletion: what a deleted pod reports last -----------------------------------------------------


def test_a_deleted_pod_is_stopped_gracefully_and_ends_in_a_terminal_phase(kube: Kube):
    """SIGTERM first, SIGKILL after the grace period; exit codes as a runtime reports them (128 + signal); and
    the last status before the kubelet removes the pod is terminal, even with restartPolicy Always. A
    finalizer of the test keeps the object readable after the kubelet's final delete."""
    hold = "retrain.mlops.dev/test-hold"
    kube.create_pod({"metadata": {"name": "doomed", "finalizers": [hold]}, "spec": {
        "terminationGracePeriodSeconds": 2,  # restartPolicy: Always (the default)
        "containers": [container(["sleep", "3600"], name="polite"),
                       container(["sh", "-c", "trap '' TERM; sleep 3600"], name="stubborn")]}})
    running = kube.wait(lambda: (lambda p: p if conditions(p).get("Ready", {}).get("status") == "True" else None)(
        kube.pod("doomed")), 30, "pod doomed to be ready")
    pids = {s["name"]: int(s["containerID"].removeprefix("process://"))
            for s in running["status"]["containerStatuses"]}

    deleted_at = time.monotonic()
    kube.core.delete_namespaced_pod("doomed", kube.namespace, _preload_content=False)
    final = kube.pod_phase("doomed", "Failed", "Succeeded", timeout=30)
    states = {s["name"]: s["state"]["terminated"] for s in final["status"]["containerStatuses"]}
    assert final["status"]["phase"] == "Failed"
    assert states["polite"]["exitCode"] == 143 and states["polite"]["reason"] == "Error"  # SIGTERM
    assert states["stubborn"]["exitCode"] == 137  # ignored SIGTERM, SIGKILLed after the grace period
    assert all(process_start(pid) is None for pid in pids.values())
    assert time.monotonic() - deleted_at >= 2
    # The kubelet's own delete (grace period 0) went through: only the test's finalizer holds the object.
    kube.wait(lambda: kube.pod("doomed")["metadata"].get("deletionGracePeriodSeconds") == 0, 10,
              "the kubelet's final delete")
    kube.core.patch_namespaced_pod("doomed", kube.namespace, {"metadata": {"finalizers": None}},
                                   _preload_content=False)

    def gone() -> bool:
        try:
            kube.pod("doomed")
        except ApiException as error:
            return error.status == 404
        return False
    kube.wait(gone, 10, "pod doomed to leave the API")


def test_deleting_a_namespace_stops_its_pods_and_the_namespace_goes(kube: Kube):
    kube.create_pod({"metadata": {"name": "resident"}, "spec": {"terminationGracePeriodSeconds": 5,
                                                                "containers": [container(["sleep", "3600"])]}})
    pod = kube.pod_phase("resident", "Running")
    pid = pid_of(pod)
    kube.core.delete_namespace(kube.namespace, _preload_content=False)

    def namespace_gone() -> bool:
        try:
            kube.core.read_namespace(kube.namespace, _preload_content=False)
        except ApiException as error:
            return error.status == 404
        return False
    kube.wait(namespace_gone, 60, f"namespace {kube.namespace} to be deleted")
    assert process_start(pid) is None
