"""The RetrainPolicy OpenAPI schema as code: the one source of the CRD, the validation and the field reference.

Defaults here equal those in `spec.py` (a unit test holds them together). Cross-field rules are
CEL (`x-kubernetes-validations`), evaluated by the API server at admission and by the
operator's own validation for clusters or test servers that do not.
"""

from __future__ import annotations

from typing import Any

from ..artifacts.formats import MODEL_FORMATS
from . import names
from .estimators import ESTIMATORS

Schema = dict[str, Any]

S3_URI = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$"
BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
DURATION = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h|d))+$"
CRON = r"^(@(yearly|annually|monthly|weekly|daily|hourly)|(\S+\s+){4}\S+)$"
# A resource quantity as apimachinery's ParseQuantity reads it (integer exponents only), but never
# negative: the API server refuses a negative request or limit in a pod.
QUANTITY = (r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
            r"(([KMGTPE]i)|[numkMGTPE]|([eE][-+]?[0-9]+))?$")
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# The name of an object whose kind has DNS-1123 subdomain names (Secret, ServiceAccount, PriorityClass,
# RuntimeClass, and custom resources such as HTTPRoute and VirtualService): the operator passes it on unchanged.
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"  # a key of a Secret's data
# Label values and label keys (prefix/name), as pod specs carry them in nodeSelector and tolerations:
# the operator cannot shorten these, so the API server checks them at admission.
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
# A qualified name (label key, resource name): an optional DNS subdomain prefix and '/', then a name of
# at most 63 characters. Written with [.] rather than \. so that it reads the same inside a CEL string.
_QUALIFIED = (r"([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
              r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
# (A toleration's key may be empty: with operator Exists it tolerates every taint.)
LABEL_KEY = f"^({_QUALIFIED})?$"
# Map keys have no schema of their own, so a rule checks them; the prefix is a subdomain of at most 253.
QUALIFIED_KEYS = f"self.all(k, k.matches('^{_QUALIFIED}$') && !k.matches('^[^/]{{254,}}/'))"
GPU = "nvidia.com/gpu"
METRICS = ["accuracy", "f1Weighted", "f1Macro", "r2", "rmse", "mae"]
REGRESSION_METRICS = ["r2", "rmse", "mae"]


def _str(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def _int(description: str, **extra: Any) -> Schema:
    return {"type": "integer", "description": description, **extra}


def _num(description: str, **extra: Any) -> Schema:
    return {"type": "number", "description": description, **extra}


def _obj(description: str, properties: dict[str, Schema], required: list[str] | None = None,
         **extra: Any) -> Schema:
    schema: Schema = {"type": "object", "description": description, "properties": properties, **extra}
    if required:
        schema["required"] = required
    return schema


def _names(task: str | None = None, incremental: bool | None = None) -> list[str]:
    return sorted(name for name, info in ESTIMATORS.items()
                  if (task is None or info.task == task)
                  and (incremental is None or (info.incremental is not None) == incremental))


def _cel_list(items: list[str]) -> str:
    return "[" + ", ".join(f"'{item}'" for item in items) + "]"


def _node_selector(description: str, where: str) -> Schema:
    return {"type": "object", "description": description, "maxProperties": 64,
            "additionalProperties": {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE},
            "x-kubernetes-validations": [
                {"rule": QUALIFIED_KEYS,
                 "message": f"{where}.nodeSelector keys must be label keys: an optional DNS subdomain prefix and "
                            "'/', then a name of at most 63 letters, digits, '-', '_' or '.' (e.g. "
                            "nvidia.com/gpu.present)"},
            ]}


def _quantities(description: str, where: str) -> Schema:
    return {"type": "object", "description": description, "maxProperties": 16,
            # maxLength bounds the CEL cost estimate (an unbounded string counts as the whole request).
            "additionalProperties": {"x-kubernetes-int-or-string": True, "pattern": QUANTITY, "minimum": 0,
                                     "maxLength": 64},
            "x-kubernetes-validations": [
                {"rule": QUALIFIED_KEYS,
                 "message": f"{where} keys must be resource names: an optional DNS subdomain prefix and '/', "
                            "then a name of at most 63 letters, digits, '-', '_' or '.' (e.g. cpu, memory, "
                            "nvidia.com/gpu)"},
            ]}


def _resources(description: str, where: str, rules: list[dict[str, str]] | None = None) -> Schema:
    return _obj(description, {
        "requests": _quantities("Requested resources.", f"{where}.resources.requests"),
        "limits": _quantities("Resource limits.", f"{where}.resources.limits"),
    }, **{"x-kubernetes-validations": [
        *(rules or []),
        {"rule": "!has(self.requests) || !has(self.limits) || self.requests.all(r, !(r in self.limits) || "
                 "quantity(string(self.requests[r])).compareTo(quantity(string(self.limits[r]))) <= 0)",
         "message": f"{where}.resources: a request must not exceed the limit of the same resource"},
    ]})


def _tolerations(description: str, where: str) -> Schema:
    toleration = _obj("A toleration.", {
        "key": _str("Taint key.", pattern=LABEL_KEY, maxLength=317),
        "operator": _str("Exists or Equal.", enum=["Exists", "Equal"]),
        "value": _str("Taint value.", pattern=LABEL_VALUE, maxLength=63),
        "effect": _str("Taint effect.", enum=["NoSchedule", "PreferNoSchedule", "NoExecute"]),
        "tolerationSeconds": _int("How long to tolerate a NoExecute taint.", minimum=0),
    }, **{"x-kubernetes-validations": [
        {"rule": "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
         "message": f"{where}.tolerations: a toleration with operator Exists must not have a value"},
        {"rule": "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
         "message": f"{where}.tolerations: a toleration without a key must have operator Exists"},
        {"rule": "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
         "message": f"{where}.tolerations: tolerationSeconds needs effect NoExecute"},
    ]})
    return {"type": "array", "description": description, "items": toleration, "maxItems": 64}


def _affinity(description: str) -> Schema:
    """A core/v1 Affinity: its three parts are passed on as they are (the API server checks them in the pod)."""
    part = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return _obj(description, {
        "nodeAffinity": {**part, "description": "Node affinity (core/v1 NodeAffinity)."},
        "podAffinity": {**part, "description": "Pod affinity (core/v1 PodAffinity)."},
        "podAntiAffinity": {**part, "description": "Pod anti-affinity (core/v1 PodAntiAffinity)."},
    })


# -- what fits a pod into a cluster: metadata, pull secrets, security context, env, volumes ---------------------
#
# One shape for every pod the operator makes (spec.training.pod, spec.triggers.drift.pod, spec.serving.pod),
# in the Kubernetes field names. Secrets are reached by reference only (secretKeyRef, secretRef, secret
# volumes): the kubelet reads them, the operator never does. The pods stay within the Pod Security Standard
# "restricted": what it refuses is refused here (enums and minimums where a field has a forbidden value),
# so that a policy cannot make the operator create a pod its author could not.

ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
# The sysctls the Pod Security Standards allow ("safe" sysctls).
SAFE_SYSCTLS = ["kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"]
VOLUME_SOURCES = ["configMap", "secret", "persistentVolumeClaim", "emptyDir", "ephemeral", "csi", "projected",
                  "downwardAPI"]  # the Pod Security Standard restricted volume types
_ID = {"minimum": 0, "maximum": 2147483647}


def _ref(description: str, field: str = "name") -> Schema:
    return _obj(description, {field: _str("Name (same namespace).", pattern=DNS_SUBDOMAIN, maxLength=253),
                              "optional": {"type": "boolean", "description": "Start the pod when it is missing."}},
                required=[field])


def _key_ref(description: str) -> Schema:
    return _obj(description, {
        "name": _str("Name (same namespace).", pattern=DNS_SUBDOMAIN, maxLength=253),
        "key": _str("The key.", pattern=SECRET_KEY, maxLength=253),
        "optional": {"type": "boolean", "description": "Start the pod when the object or key is missing."},
    }, required=["name", "key"])


def _count(fields: list[str]) -> str:
    return " + ".join(f"(has(self.{f}) ? 1 : 0)" for f in fields)


def _profile(description: str) -> Schema:
    return _obj(description, {
        "type": _str("RuntimeDefault or Localhost (Unconfined is refused).", enum=["RuntimeDefault", "Localhost"]),
        "localhostProfile": _str("The profile on the node, with type Localhost.", maxLength=4096),
    }, required=["type"])


def _security_common() -> dict[str, Schema]:
    """The fields the pod and the container security context share, with what `restricted` refuses left out."""
    return {
        "runAsUser": _int("User id; not 0 (root).", minimum=1, maximum=2147483647),
        "runAsGroup": _int("Group id.", **_ID),
        "runAsNonRoot": {"type": "boolean", "enum": [True], "description": "Always true (the default)."},
        "seccompProfile": _profile("Seccomp profile; default RuntimeDefault."),
        "appArmorProfile": _profile("AppArmor profile."),
        "seLinuxOptions": _obj("SELinux labels.", {
            "type": _str("An SELinux type the Pod Security Standards allow.",
                         enum=["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"]),
            "level": _str("SELinux level.", maxLength=253),
            "user": _str("Must be empty.", enum=[""]),
            "role": _str("Must be empty.", enum=[""]),
        }),
        "windowsOptions": _obj("Windows options.", {
            "hostProcess": {"type": "boolean", "enum": [False], "description": "Never true."},
            "gmsaCredentialSpecName": _str("GMSA credential spec name.", maxLength=253),
            "gmsaCredentialSpec": _str("GMSA credential spec.", maxLength=65536),
            "runAsUserName": _str("User name.", maxLength=256),
        }),
    }


def pod_security_context_schema(description: str) -> Schema:
    return _obj(description, {
        **_security_common(),
        "fsGroup": _int("Group that owns the pod's volumes.", **_ID),
        "fsGroupChangePolicy": _str("When to change volume ownership.", enum=["OnRootMismatch", "Always"]),
        "supplementalGroups": {"type": "array", "description": "Extra group ids.", "maxItems": 32,
                               "items": {"type": "integer", **_ID}},
        "supplementalGroupsPolicy": _str("Merge or Strict.", enum=["Merge", "Strict"]),
        "seLinuxChangePolicy": _str("MountOption or Recursive.", enum=["MountOption", "Recursive"]),
        "sysctls": {"type": "array", "description": "Namespaced sysctls; only the safe ones.", "maxItems": 16,
                    "items": _obj("A sysctl.", {"name": _str("Name.", enum=SAFE_SYSCTLS),
                                                "value": _str("Value.", maxLength=256)},
                                  required=["name", "value"]),
                    "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    })


def container_security_context_schema(description: str) -> Schema:
    return _obj(description, {
        **_security_common(),
        "allowPrivilegeEscalation": {"type": "boolean", "enum": [False], "description": "Always false (the default)."},
        "privileged": {"type": "boolean", "enum": [False], "description": "Never true."},
        "readOnlyRootFilesystem": {"type": "boolean", "description": "Default true: write to /tmp or a volume."},
        "procMount": _str("Default only.", enum=["Default"]),
        "capabilities": _obj("ALL is always dropped; NET_BIND_SERVICE is the only one that may be added.", {
            "add": {"type": "array", "description": "NET_BIND_SERVICE only.", "maxItems": 1,
                    "items": {"type": "string", "enum": ["NET_BIND_SERVICE"]}},
            "drop": {"type": "array", "description": "Dropped besides ALL.", "maxItems": 64,
                     "items": {"type": "string", "maxLength": 64}},
        }),
    })


def _env_schema(where: str) -> Schema:
    value_from = _obj("Where the value comes from: one source.", {
        "secretKeyRef": _key_ref("A key of a Secret (the kubelet reads it; the policy never holds the value)."),
        "configMapKeyRef": _key_ref("A key of a ConfigMap."),
        "fieldRef": _obj("A field of the pod.", {
            "fieldPath": _str("e.g. metadata.name, status.podIP.", maxLength=256),
            "apiVersion": _str("Version of the schema the path is written in.", maxLength=64),
        }, required=["fieldPath"]),
        "resourceFieldRef": _obj("A resource limit or request of the container.", {
            "resource": _str("e.g. limits.memory.", maxLength=256),
            "containerName": _str("Container (default: this one).", maxLength=63),
            "divisor": {"x-kubernetes-int-or-string": True, "pattern": QUANTITY, "maxLength": 64,
                        "description": "Unit of the value."},
        }, required=["resource"]),
    })
    sources = ["secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef"]
    item = _obj("A variable: a plain value, or a reference.", {
        "name": _str("Name.", pattern=ENV_NAME, maxLength=256),
        "value": _str("A plain value (never a secret: use valueFrom.secretKeyRef).", maxLength=32768),
        "valueFrom": value_from,
    }, required=["name"], **{"x-kubernetes-validations": [
        {"rule": "!(has(self.value) && has(self.valueFrom))",
         "message": f"{where}.env: a variable has value or valueFrom, not both"},
        {"rule": "!has(self.valueFrom) || " + _count([f"valueFrom.{s}" for s in sources]) + " == 1",
         "message": f"{where}.env: valueFrom has exactly one of {', '.join(sources)}"},
        {"rule": f"!(self.name in {_cel_list(list(names.OPERATOR_ENV))})",
         "message": f"{where}.env: the operator sets {', '.join(names.OPERATOR_ENV)} itself (S3 through "
                    "spec.storage, the signing key through spec.signing)"},
    ]})
    return {"type": "array", "maxItems": 64, "items": item, "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "description": "Environment variables of the container, after the operator's own; secrets by "
                           "valueFrom.secretKeyRef only."}


def _env_from_schema(where: str) -> Schema:
    item = _obj("Every key of a ConfigMap or a Secret as a variable.", {
        "prefix": _str("Prepended to each key.", pattern=ENV_NAME, maxLength=256),
        "configMapRef": _ref("A ConfigMap."),
        "secretRef": _ref("A Secret (the kubelet reads it; the policy never holds its values)."),
    }, **{"x-kubernetes-validations": [
        {"rule": _count(["configMapRef", "secretRef"]) + " == 1",
         "message": f"{where}.envFrom: an entry has exactly one of configMapRef, secretRef"},
    ]})
    return {"type": "array", "maxItems": 16, "items": item,
            "description": "ConfigMaps and Secrets whose keys become variables (the operator's own and env "
                           "win over them)."}


def _volumes_schema(where: str) -> Schema:
    preserved = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    key_paths = {"type": "array", "maxItems": 64, "description": "Only these keys, each at its path.",
                 "items": _obj("A key and where it goes.", {
                     "key": _str("The key.", pattern=SECRET_KEY, maxLength=253),
                     "path": _str("Relative path of the file.", maxLength=1024),
                     "mode": _int("File mode.", minimum=0, maximum=511),
                 }, required=["key", "path"])}
    projection = {**preserved, "description": "One projected source (core/v1 VolumeProjection).",
                  "properties": {"serviceAccountToken": {**preserved, "description": "Refused."}}}
    item = _obj("A volume: a name and one source of the types the Pod Security Standard restricted allows.", {
        "name": _str("Name, for volumeMounts.", pattern=DNS_LABEL, maxLength=63),
        "configMap": _obj("A ConfigMap's keys as files.", {
            "name": _str("ConfigMap name.", pattern=DNS_SUBDOMAIN, maxLength=253), "items": key_paths,
            "defaultMode": _int("File mode.", minimum=0, maximum=511),
            "optional": {"type": "boolean", "description": "Start the pod when it is missing."},
        }, required=["name"]),
        "secret": _obj("A Secret's keys as files (the kubelet reads it).", {
            "secretName": _str("Secret name.", pattern=DNS_SUBDOMAIN, maxLength=253), "items": key_paths,
            "defaultMode": _int("File mode.", minimum=0, maximum=511),
            "optional": {"type": "boolean", "description": "Start the pod when it is missing."},
        }, required=["secretName"]),
        "persistentVolumeClaim": _obj("A PersistentVolumeClaim (same namespace), e.g. data or a cache.", {
            "claimName": _str("Claim name.", pattern=DNS_SUBDOMAIN, maxLength=253),
            "readOnly": {"type": "boolean", "description": "Mount read-only."},
        }, required=["claimName"]),
        "emptyDir": _obj("Scratch space for the pod's life.", {
            "medium": _str("\"\" (the node's disk) or Memory.", enum=["", "Memory"]),
            "sizeLimit": {"x-kubernetes-int-or-string": True, "pattern": QUANTITY, "maxLength": 64,
                          "description": "Most space used."},
        }),
        "ephemeral": _obj("A PersistentVolumeClaim made for the pod and deleted with it.", {
            "volumeClaimTemplate": {**preserved, "description": "core/v1 PersistentVolumeClaimTemplate."},
        }, required=["volumeClaimTemplate"]),
        "csi": _obj("An inline CSI volume (e.g. a secrets-store driver).", {
            "driver": _str("CSI driver name.", maxLength=63),
            "readOnly": {"type": "boolean", "description": "Mount read-only."},
            "fsType": _str("File system type.", maxLength=63),
            "volumeAttributes": {"type": "object", "description": "Driver-specific attributes.", "maxProperties": 64,
                                 "additionalProperties": {"type": "string", "maxLength": 4096}},
            "nodePublishSecretRef": _obj("A Secret the driver is given.", {
                "name": _str("Secret name.", pattern=DNS_SUBDOMAIN, maxLength=253)}, required=["name"]),
        }, required=["driver"]),
        "projected": _obj("Several sources in one directory.", {
            "sources": {"type": "array", "maxItems": 16, "items": projection,
                        "description": "configMap, secret, downwardAPI or clusterTrustBundle projections."},
            "defaultMode": _int("File mode.", minimum=0, maximum=511),
        }),
        "downwardAPI": {**preserved, "description": "Pod fields as files (core/v1 DownwardAPIVolumeSource)."},
    }, required=["name"], **{"x-kubernetes-validations": [
        {"rule": _count(VOLUME_SOURCES) + " == 1",
         "message": f"{where}.volumes: a volume has exactly one source: {', '.join(VOLUME_SOURCES)} (the Pod "
                    "Security Standard restricted types; hostPath and the others are refused)"},
        {"rule": f"!(self.name in {_cel_list(list(names.OPERATOR_VOLUMES))})",
         "message": f"{where}.volumes: {' and '.join(names.OPERATOR_VOLUMES)} are the operator's own volumes"},
        {"rule": "!has(self.projected) || !has(self.projected.sources) || "
                 "self.projected.sources.all(p, !has(p.serviceAccountToken))",
         "message": f"{where}.volumes: a projected serviceAccountToken is refused (the operator's pods carry no "
                    "service account token)"},
    ]})
    return {"type": "array", "maxItems": 32, "items": item, "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"], "description": "Volumes of the pod, after the operator's own."}


def _volume_mounts_schema(where: str) -> Schema:
    reserved = [path for base in names.OPERATOR_MOUNT_PATHS for path in (base, base + "/")]
    item = _obj("Where a volume of pod.volumes is mounted in the container.", {
        "name": _str("A volume of pod.volumes.", pattern=DNS_LABEL, maxLength=63),
        "mountPath": _str("Absolute path in the container.", pattern=r"^/[^:]*$", maxLength=1024),
        "readOnly": {"type": "boolean", "description": "Mount read-only."},
        "subPath": _str("Path inside the volume (relative, no '..').", maxLength=1024),
        "subPathExpr": _str("subPath with $(VAR) expanded.", maxLength=1024),
        "mountPropagation": _str("None or HostToContainer (Bidirectional needs a privileged container).",
                                 enum=["None", "HostToContainer"]),
        "recursiveReadOnly": _str("Disabled, IfPossible or Enabled.", enum=["Disabled", "IfPossible", "Enabled"]),
    }, required=["name", "mountPath"], **{"x-kubernetes-validations": [
        {"rule": f"!(self.mountPath in {_cel_list(reserved)})",
         "message": f"{where}.volumeMounts: {' and '.join(names.OPERATOR_MOUNT_PATHS)} are the operator's own mounts"},
        {"rule": "!has(self.subPath) || (!self.subPath.startsWith('/') && "
                 "!self.subPath.matches('(^|/)[.][.](/|$)'))",
         "message": f"{where}.volumeMounts: subPath is a relative path without '..'"},
    ]})
    return {"type": "array", "maxItems": 32, "items": item, "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["mountPath"], "description": "Mounts in the container, after the "
                                                                        "operator's own (/tmp)."}


def _reserved_keys(exact: list[str], prefixes: list[str]) -> str:
    clauses = [f"!k.startsWith('{prefix}')" for prefix in prefixes]
    if exact:
        clauses.append(f"!(k in {_cel_list(exact)})")
    return f"self.all(k, {' && '.join(clauses)})"


def pod_schema(description: str, where: str, workload: str) -> Schema:
    """The pod section of a workload: `workload` is "job" (trainer, drift check) or "deployment" (model server)."""
    exact = [*names.OPERATOR_LABELS, *(names.JOB_CONTROLLER_LABELS if workload == "job" else
                                       names.MODEL_SERVER_LABELS)]
    prefixes = [*names.OPERATOR_LABEL_PREFIXES, *(names.JOB_CONTROLLER_LABEL_PREFIXES if workload == "job" else ())]
    owner = "Job" if workload == "job" else "Deployment"
    keys = ("keys must be {what} keys: an optional DNS subdomain prefix and '/', then a name of at most 63 letters, "
            "digits, '-', '_' or '.' (e.g. {example})")
    labels = {"type": "object", "maxProperties": 64,
              "description": f"Labels of the {owner} and its pods (e.g. kueue.x-k8s.io/queue-name, "
                             "sidecar.istio.io/inject, cost allocation).",
              "additionalProperties": {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE},
              "x-kubernetes-validations": [
                  {"rule": QUALIFIED_KEYS,
                   "message": f"{where}.metadata.labels "
                              + keys.format(what="label", example="kueue.x-k8s.io/queue-name")},
                  {"rule": _reserved_keys(exact, prefixes),
                   "message": f"{where}.metadata.labels must not set the operator's labels or the {owner} "
                              f"controller's: {', '.join(p + '*' for p in prefixes)}, {', '.join(exact)}"},
              ]}
    annotations = {"type": "object", "maxProperties": 32,
                   "description": f"Annotations of the {owner} and its pods (e.g. proxy.istio.io/config).",
                   "additionalProperties": {"type": "string", "maxLength": 8192},
                   "x-kubernetes-validations": [
                       {"rule": QUALIFIED_KEYS,
                        "message": f"{where}.metadata.annotations "
                                   + keys.format(what="annotation", example="sidecar.istio.io/inject")},
                       {"rule": _reserved_keys([], list(names.OPERATOR_LABEL_PREFIXES)),
                        "message": f"{where}.metadata.annotations must not set the operator's annotations: "
                                   f"{', '.join(p + '*' for p in names.OPERATOR_LABEL_PREFIXES)}"},
                   ]}
    return _obj(description, {
        "metadata": _obj(f"Labels and annotations, on the {owner} and on its pods; the operator's own win.", {
            "labels": labels, "annotations": annotations}),
        "imagePullSecrets": {"type": "array", "maxItems": 16, "x-kubernetes-list-type": "map",
                             "x-kubernetes-list-map-keys": ["name"],
                             "description": "Secrets (same namespace) to pull the image with.",
                             "items": _obj("A Secret of type kubernetes.io/dockerconfigjson.", {
                                 "name": _str("Secret name.", pattern=DNS_SUBDOMAIN, maxLength=253)},
                                 required=["name"])},
        "securityContext": pod_security_context_schema(
            "The pod's security context, over the operator's (runAsNonRoot, seccomp RuntimeDefault), e.g. "
            "runAsUser, fsGroup for a volume."),
        "containerSecurityContext": container_security_context_schema(
            "The container's security context, over the operator's (no privilege escalation, read-only root "
            "file system, ALL capabilities dropped)."),
        "env": _env_schema(where),
        "envFrom": _env_from_schema(where),
        "volumes": _volumes_schema(where),
        "volumeMounts": _volume_mounts_schema(where),
    }, **{"x-kubernetes-validations": [
        {"rule": "!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.volumes) && "
                 "self.volumes.exists(v, v.name == m.name))",
         "message": f"{where}.volumeMounts: each mount names a volume of {where}.volumes"},
    ]})


def model_schema() -> Schema:
    return _obj("What to train.", {
        "estimator": _str("An estimator class from the allow-list (scikit-learn, XGBoost, LightGBM; never an "
                          "import path). Required unless training.command runs a trainer image of your own.",
                          enum=sorted(ESTIMATORS)),
        "format": _str("The format of the model the trainer writes (manifest model.format), for a trainer image "
                       "of your own: the model server serves any of them after the same sha256 check.",
                       enum=list(MODEL_FORMATS)),
        "task": _str("The learning task; must match the estimator.", enum=["classification", "regression"],
                     default="classification"),
        "target": _str("The label column.", minLength=1, maxLength=253),
        "features": {"type": "array", "description": "Feature columns; default: every column but the target "
                                                     "and the timestamp column.",
                     "items": {"type": "string", "minLength": 1, "maxLength": 253}, "maxItems": 1000,
                     "x-kubernetes-list-type": "set"},
        "params": {"type": "object", "description": "Constructor parameters of the estimator.",
                   "x-kubernetes-preserve-unknown-fields": True},
    }, required=["target"], **{"x-kubernetes-validations": [
        {"rule": f"!has(self.estimator) || self.task != 'classification' || "
                 f"self.estimator in {_cel_list(_names('classification'))}",
         "message": "model.estimator is a regression estimator but model.task is classification"},
        {"rule": f"!has(self.estimator) || self.task != 'regression' || "
                 f"self.estimator in {_cel_list(_names('regression'))}",
         "message": "model.estimator is a classification estimator but model.task is regression"},
        {"rule": "!has(self.features) || !(self.target in self.features)",
         "message": "model.features must not contain the target column"},
    ]})


def data_schema() -> Schema:
    return _obj("Where the training data lives (S3, Parquet or CSV).", {
        "history": _str("S3 URI of the historical data: one object, or a prefix ending in '/'.",
                        pattern=S3_URI, maxLength=1024),
        "incoming": _str("S3 URI of the prefix where new labeled batches land.", pattern=S3_URI, maxLength=1024),
        "format": _str("File format; auto decides by suffix (.parquet, .csv, .csv.gz).",
                       enum=["auto", "parquet", "csv"], default="auto"),
        "timestampColumn": _str("Column with event times (used by the window strategy).", maxLength=253),
        "validation": _obj("Checks the trainer makes before training.", {
            "minRows": _int("Fewest rows to train on.", minimum=1, default=50),
            "maxNullFraction": _num("Largest share of nulls allowed in a used column.", minimum=0, maximum=1,
                                    default=0.2),
            "labels": {"type": "array", "description": "The allowed label values (classification).",
                       "items": {"x-kubernetes-int-or-string": True}, "maxItems": 1000},
        }),
    }, **{"x-kubernetes-validations": [
        {"rule": "has(self.history) || has(self.incoming)",
         "message": "data needs history or incoming (or both)"},
    ]})


def storage_schema() -> Schema:
    return _obj("Where models, metrics and manifests go (S3-compatible).", {
        "bucket": _str("Bucket name.", pattern=BUCKET),
        "prefix": _str("Key prefix inside the bucket.", default="", maxLength=512),
        "endpoint": _str("Endpoint URL of an S3-compatible store; empty for AWS S3.",
                         pattern=r"^https?://[^\s]+$", maxLength=512),
        "region": _str("Region.", default="us-east-1", maxLength=64),
        "credentialsSecret": _obj("The Secret (same namespace) holding the credentials; never put keys here.", {
            "name": _str("Secret name.", pattern=DNS_SUBDOMAIN, maxLength=253),
            "accessKeyIdKey": _str("Key of the access key id.", default="AWS_ACCESS_KEY_ID", maxLength=253),
            "secretAccessKeyKey": _str("Key of the secret access key.", default="AWS_SECRET_ACCESS_KEY",
                                       maxLength=253),
            "sessionTokenKey": _str("Key of a session token, if any.", maxLength=253),
        }, required=["name"]),
    }, required=["bucket", "credentialsSecret"])


def triggers_schema() -> Schema:
    return _obj("When to retrain. A manual run is requested by setting the annotation "
                "retrain.mlops.dev/trigger to a new value.", {
        "schedule": _obj("A cron schedule. A missed run is run once, never a burst.", {
            "cron": _str("Five-field cron expression or @daily-style macro.", pattern=CRON, maxLength=128),
            "timeZone": _str("IANA time zone the cron is read in.", default="UTC", maxLength=64),
            "startingDeadline": _str("Skip a tick when it cannot start within this long (Go duration).",
                                     pattern=DURATION, maxLength=32),
        }, required=["cron"]),
        "drift": _obj("Retrain when recent data drifts from the training data, or the model's quality on "
                      "recent labeled data drops. Checks run as short Jobs of the trainer image.", {
            "data": _str("S3 prefix where recent data lands.", pattern=S3_URI, maxLength=1024),
            "window": _str("How far back a check looks, by object time (Go duration).", pattern=DURATION,
                           default="24h", maxLength=32),
            "interval": _str("Time between checks (Go duration).", pattern=DURATION, default="1h", maxLength=32),
            "features": {"type": "array", "description": "Features to check; default: every profiled one.",
                         "items": {"type": "string", "maxLength": 253}, "maxItems": 1000},
            "keyFeatures": {"type": "array", "description": "Any of these drifting means dataset drift.",
                            "items": {"type": "string", "maxLength": 253}, "maxItems": 100},
            "thresholds": _obj("Per-feature and dataset thresholds (docs/drift.md has the defaults).", {
                "psi": _num("PSI at or above which a feature drifted (categorical: net of the PSI no change shows "
                            "at this sample size and cardinality).", minimum=0),
                "ksPValue": _num("KS p-value (after the correction) below which a numeric feature may have drifted.",
                                 minimum=0, maximum=1),
                "ksStatistic": _num("Least KS statistic (effect size) for a significant test to count.",
                                    minimum=0, maximum=1),
                "chi2PValue": _num("Chi-squared p-value (after the correction) below which a categorical feature "
                                   "may have drifted.", minimum=0, maximum=1),
                "jensenShannon": _num("Least Jensen-Shannon distance, net of the distance no change shows at this "
                                      "sample size and cardinality, for a significant test to count.",
                                      minimum=0, maximum=1),
                "unseenShare": _num("Share of rows in categories the reference never had, beyond what its long tail "
                                    "predicts, that counts as drift (when significant).", minimum=0, maximum=1),
                "nullShareIncrease": _num("Rise in a feature's null share that counts as drift.", minimum=0,
                                          maximum=1),
                "datasetShare": _num("Share of drifted features that makes dataset drift.", minimum=0, maximum=1),
                "correction": _str("Multiple-testing correction over the features' p-values: benjaminiHochberg "
                                   "(default), bonferroni or none.",
                                   enum=["benjaminiHochberg", "bonferroni", "none"]),
            }),
            "pod": pod_schema("The drift-check Jobs' own pod section; when absent they take training.pod (its "
                              "labels, e.g. a Kueue queue, its env and volumes). Set it, even to {}, when training's "
                              "does not fit a short CPU-only check (another queue, a ReadWriteOnce volume).",
                              "triggers.drift.pod", "job"),
            "nodeSelector": _node_selector("Node labels the drift-check pods need (training's placement is not "
                                           "taken: a check needs no GPU node).", "triggers.drift"),
            "tolerations": _tolerations("Tolerations of the drift-check pods, e.g. for a cluster whose every node "
                                        "pool is tainted.", "triggers.drift"),
            "affinity": _affinity("Affinity of the drift-check pods (core/v1 Affinity)."),
            "minRows": _int("Fewer rows in the window, or values of a feature, are insufficient for a verdict: "
                            "the check reports InsufficientData, neither drift nor no drift (docs/drift.md).",
                            minimum=1, default=200),
            "performance": _obj("Performance drift on recent labeled data (needs the target column there).", {
                "metric": _str("Metric to watch.", enum=METRICS),
                "floor": _num("Drift when the metric is worse than this."),
                "maxDrop": _num("Drift when the metric is worse than the model's held-out value by more than "
                                "this.", minimum=0),
                "pValue": _num("One-sided level of the confidence bound on the drop from the held-out value "
                               "(default 0.01; 0 turns the test off).", minimum=0, maximum=0.5),
                "minDrop": _num("Drift when the drop is significantly larger than this (default 0).", minimum=0),
                "minRows": _int("Fewer labelled rows than this: performance is not judged (default 100).",
                                minimum=1),
            }),
        }, required=["data"]),
        "cooldown": _str("Least time between the end of a run and the start of the next (Go duration, "
                         "e.g. 6h).", pattern=DURATION, maxLength=32),
        "minNewSamples": _int("Skip a run when fewer new rows arrived since the current model (0 = off).",
                              minimum=0, default=0),
        "manualBypassesCooldown": {"type": "boolean", "description": "A manual trigger ignores the cooldown.",
                                   "default": True},
    })


def training_schema() -> Schema:
    return _obj("How to train, and the Job that does it.", {
        "strategy": _str("full: all data; incremental: continue from the current model on new data plus "
                         "replay; window: only the most recent span.", enum=["full", "incremental", "window"],
                         default="full"),
        "incremental": _obj("Options of the incremental strategy.", {
            "replayFraction": _num("Share of historical rows replayed among the training rows "
                                   "(against catastrophic forgetting).", minimum=0, maximum=0.99, default=0.8),
        }),
        "window": _obj("Options of the window strategy.", {
            "duration": _str("Span of data kept, back from the newest row (Go duration).", pattern=DURATION,
                             default="7d", maxLength=32),
            "halfLife": _str("Recency weighting: a row this much older weighs half.", pattern=DURATION,
                             maxLength=32),
        }),
        "testFraction": _num("Held-out share for evaluation.", minimum=0.05, maximum=0.5, default=0.2),
        "randomSeed": _int("Seed of splits and sampling.", default=42),
        "image": _str("Trainer image; default: the operator's trainer image.", maxLength=512),
        "imagePullPolicy": _str("Image pull policy.", enum=["Always", "IfNotPresent", "Never"]),
        "command": {"type": "array", "description": "Container command (bring your own trainer).",
                    "items": {"type": "string", "maxLength": 4096}, "maxItems": 64},
        "args": {"type": "array", "description": "Container args.",
                 "items": {"type": "string", "maxLength": 4096}, "maxItems": 256},
        "env": {"type": "array", "description": "Extra plain environment variables; training.pod.env (after "
                                                "these) also takes Secret and ConfigMap references.", "maxItems": 128,
                "items": _obj("A variable.", {"name": _str("Name.", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                                           maxLength=256),
                                              "value": _str("Value.", maxLength=32768)}, required=["name"])},
        "resources": _resources("Container resources; GPUs as limits, e.g. nvidia.com/gpu: 1.", "training", [
            {"rule": f"!has(self.limits) || !('{GPU}' in self.limits) || "
                     f"string(self.limits['{GPU}']).matches('^[0-9]+$')",
             "message": "the GPU count (nvidia.com/gpu) must be a whole number"},
            {"rule": f"!has(self.requests) || !('{GPU}' in self.requests) || "
                     f"(has(self.limits) && '{GPU}' in self.limits && "
                     f"string(self.requests['{GPU}']) == string(self.limits['{GPU}']))",
             "message": "a GPU request must equal the GPU limit"},
        ]),
        "nodeSelector": _node_selector("Node labels the trainer pod needs.", "training"),
        "tolerations": _tolerations("Tolerations of the trainer pod.", "training"),
        "affinity": _affinity("Affinity of the trainer pod (core/v1 Affinity); with nodeSelector and tolerations, "
                              "where training runs (drift checks do not take it)."),
        "runtimeClassName": _str("Runtime class, e.g. nvidia.", pattern=DNS_SUBDOMAIN, maxLength=253),
        "serviceAccountName": _str("Service account of the trainer pod.", pattern=DNS_SUBDOMAIN, maxLength=253),
        "priorityClassName": _str("Priority class of the trainer pod.", pattern=DNS_SUBDOMAIN, maxLength=253),
        "backoffLimit": _int("Retries of a failed trainer pod.", minimum=0, maximum=20, default=2),
        "activeDeadlineSeconds": _int("Longest a run may take.", minimum=1, default=3600),
        "ttlSecondsAfterFinished": _int("Delete a finished Job after this long.", minimum=0, default=86400),
        "pod": pod_schema("What fits the trainer Job and its pod into the cluster: labels and annotations, pull "
                          "secrets, security context, env and envFrom, volumes. A change applies from the next "
                          "run; drift checks take it too unless triggers.drift.pod is set.", "training.pod", "job"),
    }, **{"x-kubernetes-validations": [
        {"rule": "!has(self.incremental) || self.strategy == 'incremental'",
         "message": "training.incremental is only for strategy incremental"},
        {"rule": "!has(self.window) || self.strategy == 'window'",
         "message": "training.window is only for strategy window"},
    ]})


def promotion_schema() -> Schema:
    comparison = _obj("Challenger against champion on held-out rows neither model trained on.", {
        "metric": _str("Metric compared.", enum=METRICS),
        "maxRegression": _num("The challenger may be worse by at most this.", minimum=0),
        "minImprovement": _num("The challenger must be better by at least this.", minimum=0),
        "relative": {"type": "boolean", "default": False,
                     "description": "Amounts are fractions of the champion's value."},
    }, required=["metric"], **{"x-kubernetes-validations": [
        {"rule": "!(has(self.maxRegression) && has(self.minImprovement))",
         "message": "a comparison has maxRegression or minImprovement, not both"},
    ]})
    bound = _obj("An absolute bound on a held-out metric; applies to the first model too.", {
        "metric": _str("Metric bounded.", enum=METRICS),
        "min": _num("Smallest allowed value."),
        "max": _num("Largest allowed value."),
    }, required=["metric"], **{"x-kubernetes-validations": [
        {"rule": "has(self.min) || has(self.max)", "message": "a bound needs min or max"},
    ]})
    step = _obj("One canary step: setWeight, or pause (no duration: wait for a manual promote).", {
        "setWeight": _int("Percent of traffic to the canary.", minimum=0, maximum=100),
        "pause": _obj("Hold the weight; a pause ends only after an analysis run in it passed.", {
            "duration": _str("How long (Go duration); omit to wait for promotion.", pattern=DURATION, maxLength=32),
        }),
    }, **{"x-kubernetes-validations": [
        {"rule": "has(self.setWeight) != has(self.pause)", "message": "a step is either setWeight or pause"},
    ]})
    query = _obj("A Prometheus query that must keep succeeding during the rollout.", {
        "name": _str("Name, for status and Events.", pattern=DNS_LABEL, maxLength=63),
        "query": _str("PromQL; {{version}}, {{canaryVersion}} and {{namespace}} are substituted.", maxLength=4096),
        "successCondition": _str("`result` compared with a number, e.g. 'result < 0.05'.",
                                 pattern=r"^\s*result\s*(<|<=|>|>=|==|!=)\s*-?[0-9.]+(e-?[0-9]+)?\s*$",
                                 maxLength=64),
        "failureLimit": _int("Failed measurements tolerated before rolling back.", minimum=0, default=0),
    }, required=["name", "query", "successCondition"])
    canary = _obj("Roll a promoted challenger out step by step (needs spec.serving).", {
        "steps": {"type": "array", "minItems": 1, "maxItems": 32, "items": step,
                  "description": "Steps in order; after the last, the canary becomes stable.",
                  "x-kubernetes-validations": [
                      {"rule": "self.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted()",
                       "message": "setWeight never decreases from one step to the next (rolling back is not a step)"},
                      {"rule": "self.exists(s, has(s.setWeight) && s.setWeight == 100)",
                       "message": "the steps reach setWeight 100 (all traffic on the canary before it becomes "
                                  "stable)"},
                  ]},
        "analysis": _obj("Checks at every interval while the canary takes traffic.", {
            "interval": _str("Time between measurements (Go duration).", pattern=DURATION, default="1m",
                             maxLength=32),
            "minRequests": _int("Fewest canary requests in a window to judge it; fewer is inconclusive.",
                                minimum=1, default=50),
            "maxErrorRateIncrease": _num("Canary 5xx rate may exceed stable's in the same window by this.",
                                         minimum=0, maximum=1, default=0.01),
            "maxLatencyRatio": _num("Canary p99 latency may be this many times stable's.", minimum=1,
                                    default=1.5),
            "maxPredictionShift": _num("Largest Jensen-Shannon distance between the canary's and stable's "
                                       "predicted classes.", minimum=0, maximum=1, default=0.2),
            "failureLimit": _int("Failed windows tolerated before rolling back.", minimum=0, default=0),
            "inconclusiveLimit": _int("Inconclusive windows in a row before the rollout pauses for a "
                                      "human.", minimum=1, default=10),
            "prometheus": {"type": "array", "maxItems": 16, "items": query,
                           "description": "Extra checks against a Prometheus server."},
            "prometheusUrl": _str("Prometheus HTTP API base URL.", pattern=r"^https?://[^\s]+$", maxLength=512),
        }),
        "readyTimeout": _str("Roll back when canary pods are not Ready within this long (Go duration).",
                             pattern=DURATION, default="10m", maxLength=32),
        "scaleDownStable": {"type": "boolean", "default": False,
                            "description": "Shrink stable as the canary grows (GPU-limited serving)."},
        "mirror": {"type": "boolean", "default": False,
                   "description": "Mirror traffic to the canary before the first weight (gatewayAPI, istio)."},
    }, required=["steps"])
    return _obj("When a trained model may replace the current one (docs/promotion.md).", {
        "canary": canary,
        "gates": _obj("Quality gates. A challenger that fails one is recorded as rejected and never served.", {
            "compare": {"type": "array", "maxItems": 16, "items": comparison,
                        "description": "Comparisons with the champion; default: f1Macro (classification) or r2 "
                                       "(regression) with maxRegression 0.01; [] turns them off."},
            "bounds": {"type": "array", "maxItems": 16, "items": bound,
                       "description": "Absolute bounds on the challenger's held-out metrics."},
            "olderData": _obj("Against catastrophic forgetting: the challenger on held-out rows from data the "
                              "champion was trained on, against the champion's own held-out value.", {
                "metric": _str("Metric; default: the first compared one.", enum=METRICS),
                "maxRegression": _num("Largest allowed regression; default 0.05.", minimum=0),
                "enabled": {"type": "boolean", "default": True, "description": "Check older data at all."},
            }),
            "minClassRecall": {"type": "object", "maxProperties": 1000,
                               "description": "Least held-out recall per class label (classification).",
                               "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1}},
            "minComparisonRows": _int("Fewest unseen held-out rows for a comparison to count; fewer is "
                                      "inconclusive, and an inconclusive challenger is not promoted.",
                                      minimum=1, default=30),
        }),
    })


def serving_schema() -> Schema:
    return _obj("Serve the current model: a stable Deployment (and a canary during a rollout) running "
                "the model server, behind Services and a traffic router.", {
        "replicas": _int("Model server pods (stable; the canary gets its share).", minimum=1, maximum=1000,
                         default=2),
        "port": _int("Container and Service port.", minimum=1, maximum=65535, default=8080),
        "image": _str("Model server image; default: the trainer image.", maxLength=512),
        "resources": _resources("Model server resources (GPUs as limits).", "serving"),
        "nodeSelector": _node_selector("Node labels the model server pods need.", "serving"),
        "tolerations": _tolerations("Tolerations of the model server pods.", "serving"),
        "affinity": _affinity("Affinity of the model server pods (core/v1 Affinity), e.g. spread over zones."),
        "priorityClassName": _str("Priority class of the model server pods.", pattern=DNS_SUBDOMAIN, maxLength=253),
        "pod": pod_schema("What fits the model server Deployments and their pods into the cluster: labels and "
                          "annotations, pull secrets, security context, env and envFrom, volumes. A change rolls "
                          "the Deployments.", "serving.pod", "deployment"),
        "capture": _obj("Write a sample of live requests where drift checks read them.", {
            "uri": _str("S3 prefix.", pattern=S3_URI, maxLength=1024),
            "fraction": _num("Share of rows written.", minimum=0, maximum=1, default=0.1),
        }, required=["uri"]),
        "router": _obj("How traffic is split between stable and canary.", {
            "type": _str("replicas: no mesh, one Service over both Deployments, the weight approximated by "
                         "replica counts; gatewayAPI: weights on an HTTPRoute; istio: weights on a "
                         "VirtualService.", enum=["replicas", "gatewayAPI", "istio"], default="replicas"),
            "httpRoute": _str("The HTTPRoute (same namespace) whose rules send to the stable Service.",
                              pattern=DNS_SUBDOMAIN, maxLength=253),
            "virtualService": _str("The VirtualService (same namespace) routing to the stable Service.",
                                   pattern=DNS_SUBDOMAIN, maxLength=253),
        }, **{"x-kubernetes-validations": [
            {"rule": "!has(self.type) || self.type != 'gatewayAPI' || has(self.httpRoute)",
             "message": "router gatewayAPI needs httpRoute"},
            {"rule": "!has(self.type) || self.type != 'istio' || has(self.virtualService)",
             "message": "router istio needs virtualService"},
        ]}),
    })


def _secret_key(description: str, default_key: str) -> Schema:
    return _obj(description, {
        "name": _str("Secret name.", pattern=DNS_SUBDOMAIN, maxLength=253),
        "key": _str("Key in the Secret holding the PEM.", default=default_key, pattern=SECRET_KEY, maxLength=253),
    }, required=["name"])


def signing_schema() -> Schema:
    return _obj("Ed25519 signatures over each version's manifest.json: a version whose signature does not "
                "verify is never recorded, and the model servers refuse it (docs/trust-model.md).", {
        "publicKeySecret": _secret_key("The Secret (same namespace) with the public key (SubjectPublicKeyInfo "
                                       "PEM) that verifies manifests.", "public.pem"),
        "privateKeySecret": _secret_key("The Secret with the private key (PKCS8 PEM) the trainer signs with, "
                                        "passed to the Job by secretKeyRef; omit when another builder signs.",
                                        "private.pem"),
    }, required=["publicKeySecret"])


def notify_schema() -> Schema:
    categories = ", ".join(names.NOTIFY_CATEGORIES)
    notifier = _obj("A webhook the policy's outcomes are sent to (docs/notifications.md).", {
        "name": _str("Name of the notifier, as logs, metrics and Events say it (they never show the URL).",
                     pattern=DNS_LABEL, maxLength=63),
        "type": _str("json: the operator's JSON document; slack: Slack's incoming-webhook format (Mattermost and "
                     "Rocket.Chat take it too).", enum=list(names.NOTIFY_TYPES), default="json"),
        "urlSecret": _obj("The Secret (same namespace) holding the webhook URL: a URL is a credential, so it is "
                          "never in the spec.", {
            "name": _str("Secret name.", pattern=DNS_SUBDOMAIN, maxLength=253),
            "key": _str("Key in the Secret holding the URL (http or https).", default="url", pattern=SECRET_KEY,
                        maxLength=253),
        }, required=["name"]),
        "headersSecret": _obj("A Secret (same namespace) whose every key is an HTTP header sent with each request, "
                              "its value the header's (e.g. Authorization: Bearer ...).", {
            "name": _str("Secret name.", pattern=DNS_SUBDOMAIN, maxLength=253),
        }, required=["name"]),
        "categories": {"type": "array", "minItems": 1, "maxItems": len(names.NOTIFY_CATEGORIES),
               "x-kubernetes-list-type": "set", "items": {"type": "string", "enum": list(names.NOTIFY_CATEGORIES)},
               "description": f"What is sent, of {categories}; default: all of them."},
        "minSeverity": _str("Normal: every outcome; Warning: only those that went wrong or wait for a person.",
                            enum=list(names.SEVERITIES), default="Normal"),
    }, required=["name", "urlSecret"], **{"x-kubernetes-validations": [
        {"rule": "!has(self.headersSecret) || self.headersSecret.name != self.urlSecret.name",
         "message": "notify: headersSecret must be another Secret than urlSecret (each of its keys is sent as a "
                    "header)"},
    ]})
    return {"type": "array", "maxItems": 16, "items": notifier, "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "description": "Webhooks that receive the policy's run, gate, drift, rollout and undo outcomes, with "
                           "retries; generic JSON or Slack-compatible."}


def spec_schema() -> Schema:
    incremental = _cel_list(_names(incremental=True))
    return _obj("The desired retraining behaviour.", {
        "model": model_schema(),
        "data": data_schema(),
        "storage": storage_schema(),
        "triggers": triggers_schema(),
        "training": training_schema(),
        "promotion": promotion_schema(),
        "serving": serving_schema(),
        "signing": signing_schema(),
        "notify": notify_schema(),
        "historyLimit": _int("Model versions kept in status and in S3.", minimum=1, maximum=100, default=10),
        "suspend": {"type": "boolean", "description": "Start no new runs.", "default": False},
    }, required=["model", "data", "storage"], **{"x-kubernetes-validations": [
        {"rule": f"!has(self.training) || !has(self.training.strategy) || self.training.strategy != 'incremental'"
                 f" || !has(self.model.estimator) || self.model.estimator in {incremental}",
         "message": "strategy incremental needs an estimator with partial_fit, warm_start or a booster to continue"},
        {"rule": "has(self.model.estimator) || (has(self.training) && has(self.training.command))",
         "message": "model.estimator is required unless training.command runs a trainer image of your own"},
        {"rule": "!has(self.data.timestampColumn) || self.data.timestampColumn != self.model.target",
         "message": "data.timestampColumn must differ from model.target"},
        {"rule": "!has(self.promotion) || !has(self.promotion.gates) || !has(self.promotion.gates.compare) || "
                 "self.promotion.gates.compare.all(c, (has(self.model.task) && self.model.task == 'regression') "
                 f"== (c.metric in {_cel_list(REGRESSION_METRICS)}))",
         "message": "promotion.gates.compare metrics must fit model.task (regression: r2, rmse, mae)"},
        {"rule": "!has(self.promotion) || !has(self.promotion.canary) || has(self.serving)",
         "message": "promotion.canary needs spec.serving"},
    ]})


def status_schema() -> Schema:
    return {"type": "object", "description": "What the operator observed and did.",
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {
                "phase": _str("Pending, Training, RollingOut, Ready, Degraded, Blocked, Invalid or Suspended."),
                "message": _str("A one-line summary."),
                "observedGeneration": _int("The generation this status describes."),
                "conditions": {"type": "array", "description": "Ready, Training, Trained, DriftDetected, "
                                                                             "Progressing, Stalled.",
                               "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
                               "items": _obj("A condition.", {
                                   "type": _str("Condition type."), "status": _str("True, False or Unknown."),
                                   "reason": _str("CamelCase reason."), "message": _str("Details."),
                                   "observedGeneration": _int("Generation observed."),
                                   "lastTransitionTime": _str("When status last changed.", format="date-time"),
                               }, required=["type", "status"])},
                "currentModel": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                                 "description": "The version in use: version, uri, trainedAt, metrics.",
                                 "properties": {
                                     "manifestSha256": _str("sha256 of the version's manifest.json as recorded; "
                                                            "the model servers refuse any other manifest.",
                                                            nullable=True),
                                     "verifiedAt": _str("When the manifest and files in S3 were last compared "
                                                        "with what was recorded.", format="date-time"),
                                     "artifactProblem": _str("What the last comparison found changed in S3, "
                                                             "or null.", nullable=True),
                                 }},
                "activeRun": {"type": "object", "nullable": True, "x-kubernetes-preserve-unknown-fields": True,
                              "description": "The run in progress."},
                "lastRun": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                            "description": "The last finished run and its outcome."},
                "history": {"type": "array", "description": "Recent versions, newest first.",
                            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                "nextRunAt": {"type": "string", "nullable": True, "description": "The next scheduled run."},
                "lastScheduleTime": _str("The last cron tick consumed."),
                "lastManualTrigger": _str("The last trigger annotation value consumed."),
                "lastUndo": _obj("The last undo or retry request acted on (annotation retrain.mlops.dev/undo).", {
                    "request": _str("The annotation value: a new value is a new request."),
                    "at": _str("When it was acted on.", format="date-time"),
                    "version": _str("The version it brings back."),
                    "result": _str("Started (a canary rollout), Applied (at once) or Refused."),
                    "message": _str("What happened, or why it was refused."),
                }),
                "runCounter": _int("Runs started so far; names the next version."),
                "rollout": {"type": "object", "nullable": True, "x-kubernetes-preserve-unknown-fields": True,
                            "description": "The canary rollout under way, or the last one: version, phase, "
                                           "step, weight, last analysis."},
                "serving": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                            "description": "What the model server Deployments run."},
                "canary": {"type": "string", "nullable": True,
                           "description": "The version in a canary rollout and its weight (kubectl get)."},
                "applyErrors": {"type": "object", "nullable": True, "x-kubernetes-preserve-unknown-fields": True,
                                "description": "Writes the API server refused, per step (job, serving): reason, "
                                               "kind, name, code, apiReason, message, attempts, firstFailedAt, "
                                               "lastAttemptAt, nextAttemptAt, observedGeneration."},
            }}


def openapi_schema() -> Schema:
    return {"type": "object", "description": "A policy for retraining one model.", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": spec_schema(), "status": status_schema(),
    }, "required": ["spec"]}
