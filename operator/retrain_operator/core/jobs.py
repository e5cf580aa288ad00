"""The trainer Job of a run, as a manifest: pure, so every field can be unit-tested.

The run configuration travels as JSON in one environment variable; credentials and the signing
key only as `secretKeyRef`s to the Secrets the policy names, never as values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from retrain_contract import failures
from retrain_contract.api import names
from retrain_contract.api.schema import GPU
from retrain_contract.api.spec import DriftSpec, PodTemplate, PolicySpec

from ..api import kubenames
from . import pods
from .runs import Trigger, job_name, version_index

# Exit codes of the trainer contract that no retry can fix: config (2), data (3) errors and a
# version that exists but is not this run's (5, VersionConflict).
NON_RETRYABLE_EXIT_CODES = list(failures.NON_RETRYABLE_EXIT_CODES)  # podFailurePolicy: no retry
DEFAULT_COMMAND = ["retrain-trainer"]
DEFAULT_ARGS = ["train"]
ANNOTATION_RUN = f"{names.GROUP}/run-record"
ANNOTATION_DRIFT = f"{names.GROUP}/drift-check"
LABEL_DRIFT_CHECK = f"{names.GROUP}/drift-check"


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
    parent_uri: str | None = None  # where the parent really is (status.currentModel.uri), whatever the layout


def run_config(policy: PolicyRef, spec: PolicySpec, run: RunRequest) -> dict[str, Any]:
    """The trainer's input, as documented in docs/trainer-contract.md.

    The policy uid places the run's files under this incarnation of the policy; the parent's
    recorded URI lets a run continue from a version of an older layout.
    """
    data = spec.data
    training = spec.training
    config: dict[str, Any] = {
        "apiVersion": names.API_VERSION,
        "kind": "RunConfig",
        "policy": {"namespace": policy.namespace, "name": policy.name, "uid": policy.uid},
        "version": run.version,
        "parentVersion": run.parent_version,
        "parentUri": run.parent_uri if run.parent_version else None,
        "trigger": {"type": run.trigger.type, "reason": run.trigger.reason, "at": run.trigger.at},
        "model": {
            "estimator": spec.model.estimator,
            "params": spec.model.params,
            "task": spec.model.task,
            "target": spec.model.target,
            "features": list(spec.model.features) if spec.model.features else None,
            # Only when declared: the run configuration (and its digest) of a policy without it is unchanged.
            **({"format": spec.model.format} if spec.model.format else {}),
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
    gpus = training_gpus(spec)
    if gpus:  # only then: a CPU policy's configuration (and its digest) stays as it was
        config["training"]["gpus"] = gpus
    if spec.signing is not None and spec.signing.private_key is not None:
        # Only where the key is: the key itself reaches the trainer by secretKeyRef (signing_env).
        config["signing"] = {"keyEnv": names.ENV_SIGNING_KEY}
    return config


def training_gpus(spec: PolicySpec) -> int:
    """The GPUs the training Job gets (a whole number, the schema's CEL rule): XGBoost trains on one."""
    limits = (spec.training.resources or {}).get("limits") or {}
    return int(str(limits.get(GPU, 0) or 0))


def signing_env(spec: PolicySpec) -> list[dict[str, Any]]:
    """The trainer's private key, by reference to its Secret; [] when the trainer does not sign."""
    if spec.signing is None or spec.signing.private_key is None:
        return []
    ref = spec.signing.private_key
    return [{"name": names.ENV_SIGNING_KEY, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}]


def credential_env(spec: PolicySpec) -> list[dict[str, Any]]:
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
        names.LABEL_POLICY: kubenames.policy_label(policy),
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


def _job(policy: PolicyRef, spec: PolicySpec, *, name: str, labels: dict[str, str], config: dict[str, Any],
         image: str, command: list[str], args: list[str], resources: dict[str, Any], check: DriftSpec | None,
         annotations: dict[str, str], backoff_limit: int, deadline: int | None, template: PodTemplate,
         secret_env: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A Job running one container with the run configuration and the S3 credentials (by reference), fitted
    into the cluster by the policy's pod section `template` (core/pods.py); placed as training is, or for a drift
    `check` by its own placement fields."""
    training = spec.training
    env: list[dict[str, Any]] = [
        {"name": names.ENV_RUN_CONFIG, "value": json.dumps(config, sort_keys=True)},
        *credential_env(spec),
        {"name": "AWS_DEFAULT_REGION", "value": spec.storage.region},
    ]
    if spec.storage.endpoint:
        env.append({"name": "AWS_ENDPOINT_URL", "value": spec.storage.endpoint})
    env.extend({"name": item["name"], "value": str(item.get("value", ""))} for item in training.env)

    container: dict[str, Any] = {
        "name": "trainer",
        "image": image,
        "command": command,
        "args": args,
        "env": env,
        "resources": resources,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": names.VOLUME_TMP, "mountPath": names.TMP_DIR}],
    }
    if training.image_pull_policy:
        container["imagePullPolicy"] = training.image_pull_policy

    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [{"name": names.VOLUME_TMP, "emptyDir": {}}],
        "automountServiceAccountToken": False,
    }
    pods.fit(pod_spec, container, template)  # env, envFrom, volumes, mounts, security contexts, pull secrets
    container["env"].extend(secret_env or ())  # last: no variable of the same name replaces it
    optional = {
        "serviceAccountName": training.service_account_name,
        "priorityClassName": training.priority_class_name,
    }
    if check is None:  # where training runs: GPU nodes, their taints, their runtime
        optional.update({
            "nodeSelector": training.node_selector or None,
            "tolerations": list(training.tolerations) or None,
            "affinity": training.affinity,
            "runtimeClassName": training.runtime_class_name,
        })
    else:  # a drift check's own
        optional.update({"nodeSelector": check.node_selector or None,
                         "tolerations": list(check.tolerations) or None, "affinity": check.affinity})
    pod_spec.update({key: value for key, value in optional.items() if value is not None})

    job_spec: dict[str, Any] = {
        "backoffLimit": backoff_limit,
        "podFailurePolicy": {"rules": [
            {"action": "FailJob", "onExitCodes": {
                "containerName": "trainer", "operator": "In", "values": NON_RETRYABLE_EXIT_CODES}},
            # A node drained or a pod preempted is not the trainer's fault: do not count it.
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        ]},
        "template": {"metadata": _pod_metadata(policy, template, labels), "spec": pod_spec},
    }
    if deadline is not None:
        job_spec["activeDeadlineSeconds"] = int(deadline)
    if training.ttl_seconds_after_finished is not None:
        job_spec["ttlSecondsAfterFinished"] = int(training.ttl_seconds_after_finished)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": policy.namespace,
            # The pod section's labels on the Job too: Kueue reads its queue there, cost tools either.
            "labels": pods.labels(template, labels),
            "annotations": pods.annotations(template, {**kubenames.policy_annotations(policy.name), **annotations}),
            "ownerReferences": [owner_reference(policy)],
        },
        "spec": job_spec,
    }


def _pod_metadata(policy: PolicyRef, template: PodTemplate, labels: dict[str, str]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"labels": pods.labels(template, labels)}
    extra = pods.annotations(template, kubenames.policy_annotations(policy.name))
    if extra:
        metadata["annotations"] = extra
    return metadata


def trainer_job(policy: PolicyRef, spec: PolicySpec, run: RunRequest, default_image: str) -> dict[str, Any]:
    """The batch/v1 Job that trains one version."""
    training = spec.training
    labels = {**labels_for(policy.name, run.version), f"{names.GROUP}/run-index": str(version_index(run.version))}
    record = {"version": run.version, "parentVersion": run.parent_version, "trigger": run.trigger.as_dict()}
    return _job(
        policy, spec, name=job_name(policy.name, run.version), labels=labels,
        config=run_config(policy, spec, run), image=training.image or default_image,
        command=list(training.command or DEFAULT_COMMAND),
        args=list(training.args if training.args is not None else DEFAULT_ARGS),
        resources=training.resources, check=None,
        annotations={ANNOTATION_RUN: json.dumps(record, sort_keys=True)},
        backoff_limit=training.backoff_limit, deadline=training.active_deadline_seconds,
        template=training.pod, secret_env=signing_env(spec),
    )


@dataclass(frozen=True)
class DriftRequest:
    check_id: str
    model_version: str
    now: str  # RFC 3339: the window ends here (the operator's clock, so tests can move it)
    model_uri: str | None = None  # the checked model's recorded URI (status.currentModel.uri)


DRIFT_RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}
DRIFT_DEADLINE_SECONDS = 1800


def drift_config(policy: PolicyRef, spec: PolicySpec, check: DriftRequest) -> dict[str, Any]:
    drift = spec.triggers.drift
    assert drift is not None
    performance = drift.performance
    return {
        "apiVersion": names.API_VERSION,
        "kind": "DriftCheckConfig",
        "policy": {"namespace": policy.namespace, "name": policy.name, "uid": policy.uid},
        "checkId": check.check_id,
        "modelVersion": check.model_version,
        "modelUri": check.model_uri,
        "now": check.now,
        "data": drift.data,
        "windowSeconds": drift.window.total_seconds(),
        "features": list(drift.features) if drift.features else None,
        "keyFeatures": list(drift.key_features),
        "minRows": drift.min_rows,
        "thresholds": drift.thresholds,
        "performance": {"metric": performance.metric, "floor": performance.floor, "maxDrop": performance.max_drop,
                        "pValue": performance.p_value, "minDrop": performance.min_drop,
                        "minRows": performance.min_rows} if performance else None,
        "target": spec.model.target,
        "task": spec.model.task,
        "storage": {"bucket": spec.storage.bucket, "prefix": spec.storage.prefix,
                    "endpoint": spec.storage.endpoint, "region": spec.storage.region},
    }


def drift_job(policy: PolicyRef, spec: PolicySpec, check: DriftRequest, default_image: str) -> dict[str, Any]:
    """A short Job of the project's trainer image (it has the drift engine), without GPUs or training's placement;
    its pod section is triggers.drift.pod, or training.pod when the policy has none."""
    drift = spec.triggers.drift
    assert drift is not None
    labels = {**labels_for(policy.name, purpose="drift"), LABEL_DRIFT_CHECK: check.check_id}
    return _job(
        policy, spec, name=job_name(policy.name, check.check_id), labels=labels,
        config=drift_config(policy, spec, check), image=default_image, command=list(DEFAULT_COMMAND),
        args=["drift"], resources=DRIFT_RESOURCES, check=drift,
        annotations={ANNOTATION_DRIFT: json.dumps({"checkId": check.check_id, "modelVersion": check.model_version})},
        backoff_limit=1, deadline=DRIFT_DEADLINE_SECONDS, template=pods.drift_template(spec.training.pod, drift.pod),
    )
