"""Why a Job's pod does not start, read off the pods the kubelet and the scheduler report on.

A trainer pod whose Secret, ConfigMap or image is missing never fails: the kubelet retries for ever
and the Job stays active until its deadline. The run would say "running" for an hour and then
"DeadlineExceeded"; this says what the pod is waiting for while it waits.
"""

from __future__ import annotations

from typing import Any

# Waiting reasons that do not resolve by themselves (a person must create or fix something).
STUCK_REASONS = frozenset({
    "CreateContainerConfigError",  # a Secret, ConfigMap or key the pod names is missing
    "CreateContainerError",
    "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
    "RunContainerError",
})
UNSCHEDULABLE = "Unschedulable"
MAX_MESSAGE = 300


def _short(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 3] + "..."


def pod_problem(pods: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(reason, message) of the first pod that waits on something only a person can fix, or on a node."""
    for pod in sorted(pods, key=lambda p: (p.get("metadata") or {}).get("name", "")):
        name = (pod.get("metadata") or {}).get("name", "")
        status = pod.get("status") or {}
        for container in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in STUCK_REASONS:
                detail = waiting.get("message") or waiting["reason"]
                return waiting["reason"], _short(f"pod {name}, container {container.get('name')}: {detail}")
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False" \
                    and condition.get("reason") == UNSCHEDULABLE:
                return UNSCHEDULABLE, _short(f"pod {name}: {condition.get('message') or 'no node fits it'}")
    return None
