"""What serving looks like in the cluster, as manifests and patches: pure, so every field is tested.

Per policy: two Deployments of the model server (`<policy>-model-stable`, `<policy>-model-canary`),
each labelled with the version its pods serve; a Service over both (`<policy>-model`: the
`replicas` router splits traffic by pod counts) and one per role (`-stable`, `-canary`: the
backends a Gateway API HTTPRoute or an Istio VirtualService weighs; the weights themselves are
core/routes.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from retrain_contract.api import names
from retrain_contract.api.spec import PolicySpec

from ..api import kubenames
from . import pods
from .jobs import PolicyRef, credential_env, owner_reference
from .timeutil import from_rfc3339

STABLE, CANARY = "stable", "canary"
SERVER_LABEL = {"app.kubernetes.io/name": "model-server"}
# With spec.signing: the public key, mounted read-only from its Secret, that every manifest must verify with.
PUBLIC_KEY_VOLUME = names.VOLUME_SIGNING_PUBLIC_KEY
PUBLIC_KEY_DIR = names.SIGNING_PUBLIC_KEY_DIR
PUBLIC_KEY_PATH = f"{PUBLIC_KEY_DIR}/public.pem"
# On each model server Deployment: a digest of the pod template it was given. The comparison with what
# is in the cluster only sees fields added or changed (the server adds its defaults); a field the policy
# dropped (a label, an annotation, an env variable, a volume) changes the digest, and so is written too.
ANNOTATION_TEMPLATE_HASH = f"{names.GROUP}/pod-template-hash"
Json = dict[str, Any]


def template_hash(template: Json) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def deployment_name(policy: str, role: str) -> str:
    """`<policy>-model-<role>`, shortened with a hash when that is no valid DNS-1123 label."""
    return kubenames.deployment_name(policy, role)


def service_name(policy: str, role: str | None = None) -> str:
    """`<policy>-model[-<role>]`, shortened with a hash when that is no valid DNS-1035 label."""
    return kubenames.service_name(policy, role)


def selector(policy: str, role: str | None = None) -> dict[str, str]:
    labels = {**SERVER_LABEL, names.LABEL_POLICY: kubenames.policy_label(policy)}
    if role:
        labels[names.LABEL_ROLE] = role
    return labels


@dataclass(frozen=True)
class Served:
    """One Deployment's target: which version, from where, how many pods."""

    version: str
    uri: str
    replicas: int
    manifest_sha256: str | None = None  # the digest recorded with the version: the server refuses any other


def model_deployment(policy: PolicyRef, spec: PolicySpec, role: str, served: Served, default_image: str) -> Json:
    serving = spec.serving
    assert serving is not None
    args = ["serve", "--model-uri", served.uri, "--port", str(serving.port), "--policy", policy.name]
    if served.manifest_sha256:
        args += ["--manifest-sha256", served.manifest_sha256]
    if spec.signing is not None:
        args += ["--public-key-file", PUBLIC_KEY_PATH]
    if serving.capture_uri and serving.capture_fraction > 0:
        args += ["--capture-uri", serving.capture_uri, "--capture-fraction", str(serving.capture_fraction)]
    env = [*credential_env(spec), {"name": "AWS_DEFAULT_REGION", "value": spec.storage.region}]
    if spec.storage.endpoint:
        env.append({"name": "AWS_ENDPOINT_URL", "value": spec.storage.endpoint})
    template = serving.pod
    pod_labels = pods.labels(template, {**selector(policy.name, role), names.LABEL_MODEL_VERSION: served.version,
                                        names.LABEL_MANAGED_BY: names.MANAGED_BY})
    probe = {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5, "failureThreshold": 3}
    container: Json = {
        "name": "model-server",
        "image": serving.image or default_image,
        "command": ["retrain-trainer"],
        "args": args,
        "env": env,
        "ports": [{"name": "http", "containerPort": serving.port}],
        "readinessProbe": probe,
        "startupProbe": {**probe, "failureThreshold": 60},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
        "resources": serving.resources,
        "volumeMounts": [{"name": names.VOLUME_TMP, "mountPath": names.TMP_DIR}],
    }
    pod_spec: Json = {
        "containers": [container],
        "volumes": [{"name": names.VOLUME_TMP, "emptyDir": {}}],
        "automountServiceAccountToken": False,
    }
    if spec.signing is not None:
        ref = spec.signing.public_key
        container["volumeMounts"].append({"name": PUBLIC_KEY_VOLUME, "mountPath": PUBLIC_KEY_DIR, "readOnly": True})
        pod_spec["volumes"].append({"name": PUBLIC_KEY_VOLUME, "secret": {
            "secretName": ref.name, "items": [{"key": ref.key, "path": PUBLIC_KEY_PATH.rsplit("/", 1)[1]}]}})
    pods.fit(pod_spec, container, template)  # env, envFrom, volumes, mounts, security contexts, pull secrets
    if serving.node_selector:
        pod_spec["nodeSelector"] = serving.node_selector
    if serving.tolerations:
        pod_spec["tolerations"] = list(serving.tolerations)
    if serving.affinity:
        pod_spec["affinity"] = serving.affinity
    if serving.priority_class_name:
        pod_spec["priorityClassName"] = serving.priority_class_name
    pod_metadata: Json = {"labels": pod_labels}
    if pod_annotations := pods.annotations(template, kubenames.policy_annotations(policy.name)):
        pod_metadata["annotations"] = pod_annotations
    pod_template = {"metadata": pod_metadata, "spec": pod_spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(policy.name, role), "namespace": policy.namespace,
            "labels": pods.labels(template, {**selector(policy.name, role), names.LABEL_MANAGED_BY: names.MANAGED_BY,
                                             names.LABEL_MODEL_VERSION: served.version}),
            "annotations": pods.annotations(template, {**kubenames.policy_annotations(policy.name),
                                                       ANNOTATION_TEMPLATE_HASH: template_hash(pod_template)}),
            "ownerReferences": [owner_reference(policy)]},
        "spec": {
            "replicas": served.replicas,
            "selector": {"matchLabels": selector(policy.name, role)},
            # Capacity never drops while a new version rolls in: surge first, then retire.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": pod_template,
        },
    }


def services(policy: PolicyRef, spec: PolicySpec) -> list[Json]:
    serving = spec.serving
    assert serving is not None
    result = []
    for role in (None, STABLE, CANARY):
        result.append({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": kubenames.annotate({
                "name": service_name(policy.name, role), "namespace": policy.namespace,
                "labels": {**selector(policy.name, role), names.LABEL_MANAGED_BY: names.MANAGED_BY},
                "ownerReferences": [owner_reference(policy)]}, policy.name),
            "spec": {"type": "ClusterIP", "selector": selector(policy.name, role),
                     "ports": [{"name": "http", "port": serving.port, "targetPort": "http"}]},
        })
    return result


# -- existing objects: ours or not, and what to change ------------------------------------------

CREATE, KEEP, PATCH, NOT_OWNED = "create", "keep", "patch", "not-owned"


def owner_uid(manifest: Json) -> str:
    """The uid of the policy a manifest of ours belongs to (its controller reference)."""
    return str(((manifest.get("metadata") or {}).get("ownerReferences") or [{}])[0].get("uid") or "")


def owned_by(obj: Json | None, uid: str) -> bool:
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
    return bool(uid) and any(ref.get("uid") == uid for ref in refs)


def owners(obj: Json | None) -> str:
    """Who owns an object, for a message: `Kind/name (uid ...)`, or `no owner`."""
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
    return ", ".join(f"{r.get('kind')}/{r.get('name')} (uid {r.get('uid')})" for r in refs) or "no owner"


@dataclass(frozen=True)
class ServiceChange:
    """What to do about one Service: create it, leave it, patch it (a JSON merge patch), or refuse it."""

    action: str  # CREATE | KEEP | PATCH | NOT_OWNED
    patch: Json | None = None
    message: str = ""


def _ports_cover(actual: list[Json], wanted: list[Json]) -> bool:
    """The server adds `protocol` (and node ports for other types); those do not count as a difference."""
    return len(actual) == len(wanted) and all(
        all(a.get(key) == value for key, value in w.items()) for a, w in zip(actual, wanted, strict=True))


def service_change(existing: Json | None, wanted: Json) -> ServiceChange:
    """Compare a Service as it is with ours: only the fields the operator manages count.

    Managed: `spec.selector` (exactly), `spec.ports`, `spec.type`, and the labels and annotations
    the operator sets (other labels and annotations stay). Everything else (clusterIP, session
    affinity, a user's annotations) is the server's or the user's. A Service that is not
    controlled by the policy (another owner or none) is never adopted."""
    if existing is None:
        return ServiceChange(CREATE)
    meta, uid = wanted["metadata"], owner_uid(wanted)
    if not owned_by(existing, uid):
        return ServiceChange(NOT_OWNED, message=(
            f"Service {meta['name']} exists but is not owned by this policy (uid {uid}; it has {owners(existing)}); "
            "the operator does not adopt it: delete or rename it"))
    have_meta, have_spec, want_spec = existing.get("metadata") or {}, existing.get("spec") or {}, wanted["spec"]
    patch: Json = {}
    for field in ("labels", "annotations"):
        have = have_meta.get(field) or {}
        differ = {key: value for key, value in (meta.get(field) or {}).items() if have.get(key) != value}
        if differ:
            patch.setdefault("metadata", {})[field] = differ
    spec_patch: Json = {}
    have_selector, want_selector = have_spec.get("selector") or {}, want_spec["selector"]
    if have_selector != want_selector:
        spec_patch["selector"] = {**{key: None for key in have_selector if key not in want_selector},
                                  **want_selector}
    if not _ports_cover(have_spec.get("ports") or [], want_spec["ports"]):
        spec_patch["ports"] = want_spec["ports"]
    if have_spec.get("type", "ClusterIP") != want_spec.get("type", "ClusterIP"):
        spec_patch["type"] = want_spec.get("type", "ClusterIP")
        spec_patch["ports"] = want_spec["ports"]  # node ports of the old type must go with it
    if spec_patch:
        patch["spec"] = spec_patch
    return ServiceChange(PATCH, patch=patch) if patch else ServiceChange(KEEP)


def deployment_version(deployment: Json | None) -> str | None:
    """The version a Deployment's pods serve once its rollout is complete and all pods are Ready."""
    if not deployment:
        return None
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    wanted = int(spec.get("replicas", 1))
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    done = (status.get("observedGeneration", 0) >= (deployment.get("metadata") or {}).get("generation", 0)
            and status.get("updatedReplicas", 0) >= wanted and status.get("readyReplicas", 0) >= wanted
            and status.get("replicas", 0) == wanted)
    return labels.get(names.LABEL_MODEL_VERSION) if done and wanted > 0 else None


def deployment_ready(deployment: Json | None, version: str) -> bool:
    return deployment_version(deployment) == version


def _deployment_condition(deployment: Json, type_: str) -> Json | None:
    return next((c for c in (deployment.get("status") or {}).get("conditions") or [] if c.get("type") == type_),
                None)


def unavailable_since(deployment: Json | None, version: str) -> tuple[dt.datetime, str] | None:
    """When a Deployment meant to run `version` stopped being available, if none of its pods is Ready now,
    and the Deployment controller's word for it; None while it serves (or runs another version).

    The Available condition's lastTransitionTime is the moment the controller saw it fall short (a new
    Deployment starts out short; with `maxUnavailable: 0` it is False as soon as one pod is missing);
    progress made since (a new ReplicaSet for a new version, pods becoming available: Progressing's
    lastUpdateTime) restarts the count, so a version just rolled in gets its own grace period."""
    if not deployment:
        return None
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if labels.get(names.LABEL_MODEL_VERSION) != version or int(spec.get("replicas", 1)) <= 0:
        return None
    if int(status.get("readyReplicas") or 0) > 0:
        return None
    available = _deployment_condition(deployment, "Available")
    if available is None:  # the controller has not looked yet: count from the Deployment's creation
        since = from_rfc3339((deployment.get("metadata") or {}).get("creationTimestamp"))
        return (since, "") if since else None
    if available.get("status") != "False":
        return None
    since = from_rfc3339(available.get("lastTransitionTime"))
    if since is None:
        return None
    details = [available.get("message")]
    progressing = _deployment_condition(deployment, "Progressing") or {}
    progressed = from_rfc3339(progressing.get("lastUpdateTime")) if progressing.get("status") == "True" else None
    since = max(since, progressed) if progressed else since
    if progressing.get("status") == "False":  # e.g. ProgressDeadlineExceeded
        details.append(progressing.get("message"))
    return since, "; ".join(str(d) for d in details if d)


# -- routers -------------------------------------------------------------------------------------
