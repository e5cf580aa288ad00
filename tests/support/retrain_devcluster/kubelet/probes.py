"""Startup, readiness and liveness probes against the pod's address, with the kubelet's thresholds."""

from __future__ import annotations

import http.client
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]


def _port(value: Any, container: Json) -> int:
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    for port in container.get("ports") or []:
        if port.get("name") == value:
            return int(port["containerPort"])
    raise ValueError(f"no port named {value!r} in container {container.get('name')}")


def check(probe: Json, container: Json, pod_ip: str, netns: str, env: dict[str, str]) -> bool:
    """One attempt: True on success."""
    timeout = float(probe.get("timeoutSeconds", 1))
    try:
        if "httpGet" in probe:
            get = probe["httpGet"]
            connection = http.client.HTTPConnection(pod_ip, _port(get["port"], container), timeout=timeout)
            try:
                connection.request("GET", get.get("path", "/"),
                                   headers={h["name"]: h["value"] for h in get.get("httpHeaders") or []})
                return 200 <= connection.getresponse().status < 400
            finally:
                connection.close()
        if "tcpSocket" in probe:
            with socket.create_connection((pod_ip, _port(probe["tcpSocket"]["port"], container)), timeout=timeout):
                return True
        if "exec" in probe:
            result = subprocess.run(["nsenter", f"--net={netns}", "--", *probe["exec"]["command"]], env=env,
                                    capture_output=True, timeout=timeout)
            return result.returncode == 0
    except (OSError, ValueError, subprocess.TimeoutExpired, http.client.HTTPException):
        return False
    return True  # a probe with no handler: nothing to check


@dataclass
class ProbeState:
    """Consecutive results of one probe and when it runs next."""

    probe: Json
    started: float
    successes: int = 0
    failures: int = 0
    next_at: float = 0.0
    passed: bool = False  # over the success threshold (startup: once; readiness: until it fails)

    def __post_init__(self) -> None:
        self.next_at = self.started + float(self.probe.get("initialDelaySeconds", 0))

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def record(self, ok: bool, now: float) -> None:
        self.next_at = now + float(self.probe.get("periodSeconds", 10))
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= int(self.probe.get("successThreshold", 1)):
                self.passed = True
        else:
            self.successes, self.failures = 0, self.failures + 1
            if self.failures >= int(self.probe.get("failureThreshold", 3)):
                self.passed = False

    @property
    def failed(self) -> bool:
        return self.failures >= int(self.probe.get("failureThreshold", 3))


def new(probe: Json | None) -> ProbeState | None:
    return ProbeState(probe, time.monotonic()) if probe else None
