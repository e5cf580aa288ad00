"""A pod's status as a kubelet reports it, from what the node knows about its containers (pure).

The Job, ReplicaSet and Deployment controllers read only this: the phase, the conditions and
each container's state with its exit code. They, not the kubelet, decide what a failure means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]


@dataclass
class ContainerState:
    name: str
    image: str
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"
    message: str = ""
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    container_id: str = ""
    last_terminated: Json | None = None

    def terminated(self) -> Json:
        body: Json = {"exitCode": self.exit_code, "reason": self.reason, "startedAt": self.started_at,
                      "finishedAt": self.finished_at, "containerID": self.container_id}
        if self.message:
            body["message"] = self.message
        return body

    def to_status(self) -> Json:
        if self.state == "running":
            state: Json = {"running": {"startedAt": self.started_at}}
        elif self.state == "terminated":
            state = {"terminated": self.terminated()}
        else:
            state = {"waiting": {"reason": self.reason, **({"message": self.message} if self.message else {})}}
        status: Json = {"name": self.name, "image": self.image, "imageID": "", "ready": self.ready,
                        "started": self.started, "restartCount": self.restart_count, "state": state,
                        "lastState": {"terminated": self.last_terminated} if self.last_terminated else {}}
        if self.container_id:
            status["containerID"] = self.container_id
        return status


@dataclass
class PodRecord:
    """What the node knows about one pod."""

    uid: str
    restart_policy: str
    containers: list[ContainerState] = field(default_factory=list)
    pod_ip: str = ""
    host_ip: str = ""
    start_time: str = ""
    sandbox_ready: bool = False
    terminal: bool = False  # deleted and stopped: no container restarts, whatever the restart policy


def phase(record: PodRecord) -> str:
    states = record.containers
    if record.terminal:
        succeeded = all(c.state == "terminated" and c.exit_code == 0 for c in states)
        return "Succeeded" if succeeded else "Failed"
    if not record.sandbox_ready or any(c.state == "waiting" and not c.started and c.restart_count == 0
                                       for c in states):
        return "Pending"
    if all(c.state == "terminated" for c in states):
        failed = any(c.exit_code != 0 for c in states)
        if record.restart_policy == "Never" or (record.restart_policy == "OnFailure" and not failed):
            return "Failed" if failed else "Succeeded"
    return "Running"


def _condition(previous: dict[str, Json], type_: str, value: bool, now: str, reason: str = "") -> Json:
    status = "True" if value else "False"
    old = previous.get(type_) or {}
    condition: Json = {"type": type_, "status": status,
                       "lastTransitionTime": old.get("lastTransitionTime") if old.get("status") == status else now,
                       "lastProbeTime": None}
    if reason and not value:
        condition["reason"] = reason
    return condition


def pod_status(record: PodRecord, observed: Json, now: str) -> Json:
    """The whole status to write: conditions keep their transition times, PodScheduled is the scheduler's."""
    previous = {c["type"]: c for c in (observed.get("status") or {}).get("conditions") or []}
    current = phase(record)
    ready = bool(record.containers) and all(c.ready for c in record.containers) and current == "Running"
    not_ready = "PodCompleted" if current in {"Succeeded", "Failed"} else "ContainersNotReady"
    conditions = [c for c in previous.values() if c["type"] == "PodScheduled"]
    conditions += [_condition(previous, "PodReadyToStartContainers", record.sandbox_ready, now),
                   _condition(previous, "Initialized", True, now),
                   _condition(previous, "ContainersReady", ready, now, not_ready),
                   _condition(previous, "Ready", ready, now, not_ready)]
    status: Json = {"phase": current, "conditions": conditions,
                    "containerStatuses": [c.to_status() for c in record.containers]}
    if record.host_ip:
        status.update(hostIP=record.host_ip, hostIPs=[{"ip": record.host_ip}])
    if record.pod_ip:
        status.update(podIP=record.pod_ip, podIPs=[{"ip": record.pod_ip}])
    if record.start_time:
        status["startTime"] = record.start_time
    qos = (observed.get("status") or {}).get("qosClass")
    if qos:
        status["qosClass"] = qos
    return status
