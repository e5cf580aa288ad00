"""A policy's pod section (`spec.training.pod`, `spec.triggers.drift.pod`, `spec.serving.pod`) merged into
the pods the operator makes: pure, and deterministic (the same spec gives the same manifest, so a model
server Deployment never rolls for nothing).

The operator's own fields always win: its labels and annotations over the user's (the schema refuses
the keys anyway), its environment variables before the user's (the schema refuses their names), its
volumes and mounts first, its hardening under the user's security context (which the schema keeps within
the Pod Security Standard restricted), with ALL capabilities always dropped.
"""

from __future__ import annotations

import copy
from typing import Any

from retrain_contract.api import names
from retrain_contract.api.spec import PodTemplate

Json = dict[str, Any]

POD_SECURITY_CONTEXT: Json = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY_CONTEXT: Json = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}}


def drift_template(training: PodTemplate, drift: PodTemplate | None) -> PodTemplate:
    """The drift check's pod section: its own when the policy has one (even empty), else training's."""
    return drift if drift is not None else training


def _users(mapping: dict[str, str]) -> dict[str, str]:
    """The user's keys, sorted, without any in the operator's namespace (the schema refuses them; a policy that
    was never validated by the API server must not get them through either)."""
    return {key: value for key, value in sorted(mapping.items())
            if not key.startswith(names.OPERATOR_LABEL_PREFIXES) and key not in names.OPERATOR_LABELS}


def labels(template: PodTemplate, ours: dict[str, str]) -> dict[str, str]:
    """The user's labels with the operator's over them."""
    return {**_users(template.labels), **ours}


def annotations(template: PodTemplate, ours: dict[str, str]) -> dict[str, str]:
    return {**_users(template.annotations), **ours}


def pod_security_context(template: PodTemplate) -> Json:
    return {**copy.deepcopy(POD_SECURITY_CONTEXT), **copy.deepcopy(template.security_context)}


def container_security_context(template: PodTemplate) -> Json:
    """The operator's hardening with the user's fields over it; capabilities: ALL dropped whatever is asked."""
    user = copy.deepcopy(template.container_security_context)
    asked = user.pop("capabilities", None) or {}
    capabilities: Json = {}
    if asked.get("add"):
        capabilities["add"] = list(asked["add"])
    capabilities["drop"] = ["ALL", *(name for name in asked.get("drop") or () if name != "ALL")]
    return {**copy.deepcopy(CONTAINER_SECURITY_CONTEXT), **user, "capabilities": capabilities}


def fit(pod_spec: Json, container: Json, template: PodTemplate) -> None:
    """Add the pod section to a pod spec and its one container (both the caller's fresh dicts)."""
    container["env"] = [*container.get("env", []), *copy.deepcopy(list(template.env))]
    if template.env_from:
        container["envFrom"] = copy.deepcopy(list(template.env_from))
    container["volumeMounts"] = [*container.get("volumeMounts", []), *copy.deepcopy(list(template.volume_mounts))]
    container["securityContext"] = container_security_context(template)
    pod_spec["volumes"] = [*pod_spec.get("volumes", []), *copy.deepcopy(list(template.volumes))]
    pod_spec["securityContext"] = pod_security_context(template)
    if template.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": name} for name in template.image_pull_secrets]
