"""The trainer Job of a run, as a manifest: pure, so every field can be unit-tested.

The run configuration travels as JSON in one environment variable; credentials only as
`secretKeyRef`s to the Secret the policy names, never as values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..api import names
from ..api.spec import PolicySpec
from .runs import Trigger, job_name, version_index

# Exit codes of the trainer contract that no retry can fix: config (2) and data (3) errors.
NON_RETRYABLE_EXIT_CODES = [2, 3]
DEFAULT_COMMAND = ["retrain-trainer"]
DEFAULT_ARGS = ["train"]
ANNOTATION_RUN = f"{names.GROUP}/run-record"


@dataclass(frozen=True)
class PolicyRef:
    name: str
    namespace: str
    uid: str


@dataclass(frozen=True)
class RunRequest:
    version: str
    parent_version: str | None
    trigger: Trigger


def run_config(policy: PolicyRef, spec: PolicySpec, run: RunRequest) -> dict[str, Any]:
    """The trainer's input, as documented in docs/trainer-contract.md."""
    data = spec.data
    training = spec.training
    return {
        "apiVersion": names.API_VERSION,
        "kind": "RunConfig",
        "policy": {"namespace": policy.namespace, "name": policy.name},
        "version": run.version,
        "parentVersion": run.parent_version,
        "trigger": {"type": run.trigger.type, "reason": run.trigger.reason, "at": run.trigger.at},
        "model": {
            "estimator": spec.model.estimator,
            "params": spec.model.params,
            "task": spec.model.task,
            "target": spec.model.target,
            "features": list(spec.model.features) if spec.model.features else None,
        },
        "data": {
            "history": data.history,
            "incoming": data.incoming,
            "format": data.format,
            "timestampColumn": data.timestamp_column,
            "validation": {
                "minRows": data.validation.min_rows,
                "maxNullFraction": data.validation.max_null_fraction,
                "labels": list(data.validation.labels) if data.validation.labels else None,
            },
        },
        "training": {
            "strategy": training.strategy,
            "replayFraction": training.replay_fraction,
            "window": {"duration": training.window.duration, "halfLife": training.window.half_life},
            "testFraction": training.test_fraction,
            "randomSeed": training.random_seed,
        },
        "storage": {
            "bucket": spec.storage.bucket,
            "prefix": spec.storage.prefix,
            "endpoint": spec.storage.endpoint,
            "region": spec.storage.region,
        },
    }


def _credential_env(spec: PolicySpec) -> list[dict[str, Any]]:
    creds = spec.storage.credentials

    def from_secret(env_name: str, key: str) -> dict[str, Any]:
        return {"name": env_name, "valueFrom": {"secretKeyRef": {"name": creds.name, "key": key}}}

    env = [
        from_secret("AWS_ACCESS_KEY_ID", creds.access_key_id_key),
        from_secret("AWS_SECRET_ACCESS_KEY", creds.secret_access_key_key),
    ]
    if creds.session_token_key:
        env.append(from_secret("AWS_SESSION_TOKEN", creds.session_token_key))
    return env


def labels_for(policy: str, version: str | None = None, purpose: str = "train") -> dict[str, str]:
    labels = {
        names.LABEL_POLICY: policy,
        names.LABEL_PURPOSE: purpose,
        names.LABEL_MANAGED_BY: names.MANAGED_BY,
    }
    if version:
        labels[names.LABEL_RUN] = version
    return labels


def owner_reference(policy: PolicyRef) -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND,
        "name": policy.name,
        "uid": policy.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def trainer_job(policy: PolicyRef, spec: PolicySpec, run: RunRequest, default_image: str) -> dict[str, Any]:
    """The batch/v1 Job that trains one version."""
    training = spec.training
    labels = labels_for(policy.name, run.version)
    env: list[dict[str, Any]] = [
        {"name": names.ENV_RUN_CONFIG, "value": json.dumps(run_config(policy, spec, run), sort_keys=True)},
        *_credential_env(spec),
        {"name": "AWS_DEFAULT_REGION", "value": spec.storage.region},
    ]
    if spec.storage.endpoint:
        env.append({"name": "AWS_ENDPOINT_URL", "value": spec.storage.endpoint})
    env.extend({"name": item["name"], "value": str(item.get("value", ""))} for item in training.env)

    container: dict[str, Any] = {
        "name": "trainer",
        "image": training.image or default_image,
        "command": list(training.command or DEFAULT_COMMAND),
        "args": list(training.args if training.args is not None else DEFAULT_ARGS),
        "env": env,
        "resources": training.resources,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if training.image_pull_policy:
        container["imagePullPolicy"] = training.image_pull_policy

    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "automountServiceAccountToken": False,
    }
    optional = {
        "nodeSelector": training.node_selector or None,
        "tolerations": list(training.tolerations) or None,
        "affinity": training.affinity,
        "runtimeClassName": training.runtime_class_name,
        "serviceAccountName": training.service_account_name,
        "priorityClassName": training.priority_class_name,
    }
    pod_spec.update({key: value for key, value in optional.items() if value is not None})

    job_spec: dict[str, Any] = {
        "backoffLimit": training.backoff_limit,
        "podFailurePolicy": {"rules": [
            {"action": "FailJob", "onExitCodes": {
                "containerName": "trainer", "operator": "In", "values": NON_RETRYABLE_EXIT_CODES}},
            # A node drained or a pod preempted is not the trainer's fault: do not count it.
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        ]},
        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
    }
    if training.active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = int(training.active_deadline_seconds)
    if training.ttl_seconds_after_finished is not None:
        job_spec["ttlSecondsAfterFinished"] = int(training.ttl_seconds_after_finished)

    record = {"version": run.version, "parentVersion": run.parent_version, "trigger": run.trigger.as_dict()}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(policy.name, run.version),
            "namespace": policy.namespace,
            "labels": {**labels, f"{names.GROUP}/run-index": str(version_index(run.version))},
            "annotations": {ANNOTATION_RUN: json.dumps(record, sort_keys=True)},
            "ownerReferences": [owner_reference(policy)],
        },
        "spec": job_spec,
    }
