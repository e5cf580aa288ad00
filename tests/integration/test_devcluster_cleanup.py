"""A killed test run leaves nothing behind: SIGKILL the process that started a dev cluster with a
running pod, and the control plane, the kubelet, the pod's processes and its network go with it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retrain_devcluster import processes

pytestmark = pytest.mark.integration

STARTER = r'''
import json, sys, time
from pathlib import Path
import kubernetes
from retrain_devcluster.cluster import DevCluster

cluster = DevCluster(Path(sys.argv[1]), say=lambda _: None).start()
core = kubernetes.client.CoreV1Api(cluster.client)
core.create_namespace({"metadata": {"name": "doomed"}})
while True:
    try:
        core.read_namespaced_service_account("default", "doomed")
        break
    except kubernetes.client.rest.ApiException:
        time.sleep(0.2)
core.create_namespaced_pod("doomed", {"metadata": {"name": "sleeper"}, "spec": {"containers": [
    {"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}})
while True:
    pod = json.loads(core.read_namespaced_pod("sleeper", "doomed", _preload_content=False).data)
    if (pod.get("status") or {}).get("phase") == "Running":
        break
    time.sleep(0.2)
print(json.dumps({"ip": pod["status"]["podIP"], "pid": int(pod["status"]["containerStatuses"][0]["containerID"]
                                                          .removeprefix("process://"))}), flush=True)
time.sleep(3600)
'''


def test_sigkill_of_the_starter_takes_everything_down(tmp_path: Path):
    workdir = tmp_path / "doomed-cluster"
    starter = subprocess.Popen([sys.executable, "-c", STARTER, str(workdir)], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        line = starter.stdout.readline() if starter.stdout else ""
        assert line, "the starter died before its pod ran"
        pod = json.loads(line)
        assert processes.mentioning(str(workdir)), "nothing of the cluster is running"
        os.kill(pod["pid"], 0)  # the pod's process is alive
        assert subprocess.run(["ip", "route", "show", f"{pod['ip']}/32"], capture_output=True,
                              text=True).stdout.strip()
    finally:
        os.killpg(starter.pid, signal.SIGKILL)  # like a CI runner killing the test run, no clean-up code runs
        starter.wait()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (processes.mentioning(str(workdir)) or _alive(pod["pid"])):
        time.sleep(0.5)
    assert processes.mentioning(str(workdir)) == []
    assert not _alive(pod["pid"])
    deadline = time.monotonic() + 30  # the kernel removes a dead namespace's veth (and route) asynchronously
    while time.monotonic() < deadline and _route(pod["ip"]):
        time.sleep(0.5)
    assert _route(pod["ip"]) == ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")


def _route(ip: str) -> str:
    return subprocess.run(["ip", "route", "show", f"{ip}/32"], capture_output=True, text=True).stdout.strip()
