"""The pod sections' validation: what the API server (the CRD) and the operator refuse, one case per refusal
and section, and what they accept."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from retrain_contract.api import names
from retrain_contract.api.schema import pod_schema
from retrain_operator.api.validation import problems, schema_problems

from .test_pod_template import POD

Json = dict[str, Any]
VALID = {"model": {"estimator": "SGDClassifier", "target": "y"}, "data": {"history": "s3://data/x/"},
         "storage": {"bucket": "models", "credentialsSecret": {"name": "s3"}}}
SECTIONS = ["training.pod", "serving.pod", "triggers.drift.pod"]


def with_pod(section: str, pod: Json, **extra: Any) -> Json:
    if section == "training.pod":
        return {**VALID, "training": {"pod": pod, **extra}}
    if section == "serving.pod":
        return {**VALID, "serving": {"pod": pod, **extra}}
    return {**VALID, "triggers": {"drift": {"data": "s3://data/recent/", "pod": pod}}}


@pytest.mark.parametrize("section", SECTIONS)
def test_a_pod_section_with_every_field_is_valid(section: str):
    assert problems(with_pod(section, copy.deepcopy(POD))) == []


@pytest.mark.parametrize("pod", [
    {},
    {"metadata": {}},
    {"metadata": {"labels": {"app.kubernetes.io/part-of": "churn", "example.com/" + "y" * 63: ""}}},
    {"securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/ml.json"},
                         "sysctls": [{"name": "net.ipv4.tcp_keepalive_time", "value": "600"}],
                         "seLinuxOptions": {"type": "container_t", "level": "s0:c123,c456"},
                         "supplementalGroups": [3000], "runAsNonRoot": True}},
    {"containerSecurityContext": {"allowPrivilegeEscalation": False, "privileged": False, "procMount": "Default",
                                  "capabilities": {"drop": ["ALL"]}, "appArmorProfile": {"type": "RuntimeDefault"}}},
    {"env": [{"name": "EMPTY"}, {"name": "my.var-1", "value": ""},
             {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}}]},
    {"volumes": [{"name": "secrets", "secret": {"secretName": "tls", "defaultMode": 256}},
                 {"name": "store", "csi": {"driver": "secrets-store.csi.k8s.io", "readOnly": True,
                                           "volumeAttributes": {"secretProviderClass": "vault"}}},
                 {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {
                     "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}}},
                 {"name": "bundle", "projected": {"sources": [{"configMap": {"name": "a"}}, {"secret": {"name": "b"}},
                                                              {"downwardAPI": {"items": []}}]}},
                 {"name": "info", "downwardAPI": {"items": [{"path": "labels",
                                                             "fieldRef": {"fieldPath": "metadata.labels"}}]}}],
     "volumeMounts": [{"name": "secrets", "mountPath": "/etc/tls", "readOnly": True},
                      {"name": "scratch", "mountPath": "/tmp/cache"},  # below /tmp is fine: nested mounts
                      {"name": "bundle", "mountPath": "/bundle", "subPath": "a/b..c"},
                      {"name": "info", "mountPath": "/info", "mountPropagation": "HostToContainer"}]},
], ids=["empty", "empty-metadata", "labels", "pod-security", "container-security", "env", "volumes"])
def test_what_the_server_accepts_in_a_pod_the_policy_accepts(pod: Json):
    for section in SECTIONS:
        assert problems(with_pod(section, copy.deepcopy(pod))) == [], section


def test_the_operators_affinity_and_priority_fields_are_valid():
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}, "podAntiAffinity": {}}
    assert problems({**VALID, "serving": {"affinity": affinity, "priorityClassName": "model.serving"}}) == []
    assert problems({**VALID, "training": {"affinity": affinity, "priorityClassName": "batch"}}) == []
    found = schema_problems({**VALID, "serving": {"priorityClassName": "Model_Serving"}})
    assert [p.split(":")[0] for p in found] == ["spec.serving.priorityClassName"]


# -- CEL rules: one case per rule, per section; each breaks exactly that rule -------------------------------------

LABEL_KEYS = ("keys must be label keys: an optional DNS subdomain prefix and '/', then a name of at most 63 letters, "
              "digits, '-', '_' or '.' (e.g. kueue.x-k8s.io/queue-name)")
ANNOTATION_KEYS = ("keys must be annotation keys: an optional DNS subdomain prefix and '/', then a name of at most 63 "
                   "letters, digits, '-', '_' or '.' (e.g. sidecar.istio.io/inject)")
OPERATOR_ENV = ("the operator sets RETRAIN_RUN_CONFIG, RETRAIN_SIGNING_KEY, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
                "AWS_SESSION_TOKEN, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL itself (S3 through spec.storage, the signing "
                "key through spec.signing)")
ONE_SOURCE = ("a volume has exactly one source: configMap, secret, persistentVolumeClaim, emptyDir, ephemeral, csi, "
              "projected, downwardAPI (the Pod Security Standard restricted types; hostPath and the others are "
              "refused)")
PVC = {"name": "cache", "persistentVolumeClaim": {"claimName": "cache"}}
CEL_CASES = [
    # id, pod section, where (after spec.<section>), message (after <section>.)
    ("label-key", {"metadata": {"labels": {"queue name": "a"}}}, "metadata.labels", f"metadata.labels {LABEL_KEYS}"),
    ("label-key-too-long", {"metadata": {"labels": {"x" * 64: "a"}}}, "metadata.labels",
     f"metadata.labels {LABEL_KEYS}"),
    ("annotation-key", {"metadata": {"annotations": {"a/b/c": "x"}}}, "metadata.annotations",
     f"metadata.annotations {ANNOTATION_KEYS}"),
    ("annotation-operators", {"metadata": {"annotations": {names.ANNOTATION_TRIGGER: "now"}}},
     "metadata.annotations", "metadata.annotations must not set the operator's annotations: retrain.mlops.dev/*"),
    ("env-value-and-value-from", {"env": [{"name": "A", "value": "x", "valueFrom": {
        "secretKeyRef": {"name": "s", "key": "k"}}}]}, "env[0]", "env: a variable has value or valueFrom, not both"),
    ("env-value-from-empty", {"env": [{"name": "A", "valueFrom": {}}]}, "env[0]",
     "env: valueFrom has exactly one of secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef"),
    ("env-value-from-two", {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"},
                                                                "configMapKeyRef": {"name": "c", "key": "k"}}}]},
     "env[0]", "env: valueFrom has exactly one of secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef"),
    *[(f"env-operators-{name}", {"env": [{"name": "OK", "value": "1"}, {"name": name, "value": "x"}]}, "env[1]",
       f"env: {OPERATOR_ENV}") for name in names.OPERATOR_ENV],
    ("env-from-none", {"envFrom": [{"prefix": "X_"}]}, "envFrom[0]",
     "envFrom: an entry has exactly one of configMapRef, secretRef"),
    ("env-from-both", {"envFrom": [{"configMapRef": {"name": "a"}, "secretRef": {"name": "b"}}]}, "envFrom[0]",
     "envFrom: an entry has exactly one of configMapRef, secretRef"),
    ("volume-no-source", {"volumes": [{"name": "v"}]}, "volumes[0]", f"volumes: {ONE_SOURCE}"),
    ("volume-host-path", {"volumes": [{"name": "v", "hostPath": {"path": "/"}}]}, "volumes[0]",
     f"volumes: {ONE_SOURCE}"),
    ("volume-two-sources", {"volumes": [{"name": "v", "emptyDir": {}, "configMap": {"name": "c"}}]}, "volumes[0]",
     f"volumes: {ONE_SOURCE}"),
    *[(f"volume-operators-{name}", {"volumes": [{"name": name, "emptyDir": {}}]}, "volumes[0]",
       "volumes: tmp and signing-public-key are the operator's own volumes") for name in names.OPERATOR_VOLUMES],
    ("volume-service-account-token", {"volumes": [{"name": "t", "projected": {"sources": [
        {"configMap": {"name": "a"}}, {"serviceAccountToken": {"path": "token", "audience": "vault"}}]}}]},
     "volumes[0]", "volumes: a projected serviceAccountToken is refused (the operator's pods carry no service "
                   "account token)"),
    *[(f"mount-operators-{path}", {"volumes": [PVC], "volumeMounts": [{"name": "cache", "mountPath": path}]},
       "volumeMounts[0]", "volumeMounts: /tmp and /var/run/secrets/retrain.mlops.dev/signing are the operator's own "
                          "mounts")
      for path in ("/tmp", "/tmp/", names.SIGNING_PUBLIC_KEY_DIR, names.SIGNING_PUBLIC_KEY_DIR + "/")],
    *[(f"mount-sub-path-{sub}", {"volumes": [PVC], "volumeMounts": [{"name": "cache", "mountPath": "/c",
                                                                     "subPath": sub}]},
       "volumeMounts[0]", "volumeMounts: subPath is a relative path without '..'")
      for sub in ("/etc", "..", "a/../b", "a/..")],
    ("mount-without-volume", {"volumes": [PVC], "volumeMounts": [{"name": "cache", "mountPath": "/a"},
                                                                 {"name": "other", "mountPath": "/b"}]},
     "", "volumeMounts: each mount names a volume of {section}.volumes"),
    ("mount-without-any-volume", {"volumeMounts": [{"name": "cache", "mountPath": "/a"}]},
     "", "volumeMounts: each mount names a volume of {section}.volumes"),
]


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize(("pod", "where", "message"), [c[1:] for c in CEL_CASES], ids=[c[0] for c in CEL_CASES])
def test_each_cel_rule_refuses_exactly_its_case(section: str, pod: Json, where: str, message: str):
    found = problems(with_pod(section, copy.deepcopy(pod)))
    path = f"spec.{section}" + (f".{where}" if where else "")
    assert found == [f"{path}: {section}.{message.format(section=section)}"]


JOB_LABELS = ["retrain.mlops.dev/run", "retrain.mlops.dev/anything", "app.kubernetes.io/managed-by", "job-name",
              "controller-uid", "batch.kubernetes.io/job-name", "batch.kubernetes.io/controller-uid"]
SERVER_LABELS = ["retrain.mlops.dev/model-version", "retrain.mlops.dev/role", "app.kubernetes.io/managed-by",
                 "app.kubernetes.io/name", "pod-template-hash"]


@pytest.mark.parametrize(("section", "key"), [*[("training.pod", k) for k in JOB_LABELS],
                                              *[("triggers.drift.pod", k) for k in JOB_LABELS],
                                              *[("serving.pod", k) for k in SERVER_LABELS]])
def test_the_operators_and_the_controllers_labels_are_refused(section: str, key: str):
    found = problems(with_pod(section, {"metadata": {"labels": {"team": "ml", key: "x"}}}))
    assert len(found) == 1 and found[0].startswith(f"spec.{section}.metadata.labels: {section}.metadata.labels "
                                                   "must not set the operator's labels or the "), found
    assert "retrain.mlops.dev/*, " in found[0] and key.split("/")[0] in found[0]


def test_which_labels_are_whose_depends_on_the_workload():
    # A trainer may be labelled app.kubernetes.io/name (cost reports); a model server's selector uses it.
    assert problems(with_pod("training.pod", {"metadata": {"labels": {"app.kubernetes.io/name": "trainer"}}})) == []
    assert problems(with_pod("serving.pod", {"metadata": {"labels": {"job-name": "x"}}})) == []


# -- the OpenAPI schema: Pod Security Standard restricted, names, references, duplicates ----------------------------

SCHEMA_CASES = [
    # id, pod section, where (after spec.<section>)
    ("label-value", {"metadata": {"labels": {"team": "has space"}}}, "metadata.labels.team"),
    ("label-value-too-long", {"metadata": {"labels": {"team": "x" * 64}}}, "metadata.labels.team"),
    ("annotation-too-long", {"metadata": {"annotations": {"a": "x" * 8193}}}, "metadata.annotations.a"),
    ("pull-secret-name", {"imagePullSecrets": [{"name": "Registry"}]}, "imagePullSecrets[0].name"),
    ("pull-secret-without-name", {"imagePullSecrets": [{}]}, "imagePullSecrets[0]"),
    ("run-as-root", {"securityContext": {"runAsUser": 0}}, "securityContext.runAsUser"),
    ("run-as-root-container", {"containerSecurityContext": {"runAsUser": 0}}, "containerSecurityContext.runAsUser"),
    ("run-as-non-root-false", {"securityContext": {"runAsNonRoot": False}}, "securityContext.runAsNonRoot"),
    ("run-as-non-root-false-container", {"containerSecurityContext": {"runAsNonRoot": False}},
     "containerSecurityContext.runAsNonRoot"),
    ("seccomp-unconfined", {"securityContext": {"seccompProfile": {"type": "Unconfined"}}},
     "securityContext.seccompProfile.type"),
    ("seccomp-unconfined-container", {"containerSecurityContext": {"seccompProfile": {"type": "Unconfined"}}},
     "containerSecurityContext.seccompProfile.type"),
    ("apparmor-unconfined", {"securityContext": {"appArmorProfile": {"type": "Unconfined"}}},
     "securityContext.appArmorProfile.type"),
    ("selinux-user", {"securityContext": {"seLinuxOptions": {"user": "system_u"}}},
     "securityContext.seLinuxOptions.user"),
    ("selinux-role", {"containerSecurityContext": {"seLinuxOptions": {"role": "sysadm_r"}}},
     "containerSecurityContext.seLinuxOptions.role"),
    ("selinux-type", {"securityContext": {"seLinuxOptions": {"type": "spc_t"}}},
     "securityContext.seLinuxOptions.type"),
    ("unsafe-sysctl", {"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}},
     "securityContext.sysctls[0].name"),
    ("host-process", {"securityContext": {"windowsOptions": {"hostProcess": True}}},
     "securityContext.windowsOptions.hostProcess"),
    ("privileged", {"containerSecurityContext": {"privileged": True}}, "containerSecurityContext.privileged"),
    ("privilege-escalation", {"containerSecurityContext": {"allowPrivilegeEscalation": True}},
     "containerSecurityContext.allowPrivilegeEscalation"),
    ("capability-added", {"containerSecurityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}},
     "containerSecurityContext.capabilities.add[0]"),
    ("proc-mount", {"containerSecurityContext": {"procMount": "Unmasked"}}, "containerSecurityContext.procMount"),
    ("env-name", {"env": [{"name": "1=A", "value": "x"}]}, "env[0].name"),
    ("secret-key-ref-without-key", {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s"}}}]},
     "env[0].valueFrom.secretKeyRef"),
    ("secret-ref-name", {"envFrom": [{"secretRef": {"name": "Bad_Name"}}]}, "envFrom[0].secretRef.name"),
    ("volume-name", {"volumes": [{"name": "Cache", "emptyDir": {}}]}, "volumes[0].name"),
    ("claim-name", {"volumes": [{"name": "c", "persistentVolumeClaim": {"claimName": "x" * 254}}]},
     "volumes[0].persistentVolumeClaim.claimName"),
    ("empty-dir-medium", {"volumes": [{"name": "c", "emptyDir": {"medium": "HugePages"}}]},
     "volumes[0].emptyDir.medium"),
    ("empty-dir-negative-size", {"volumes": [{"name": "c", "emptyDir": {"sizeLimit": "-1Gi"}}]},
     "volumes[0].emptyDir.sizeLimit"),
    ("mount-relative", {"volumes": [PVC], "volumeMounts": [{"name": "cache", "mountPath": "cache"}]},
     "volumeMounts[0].mountPath"),
    ("mount-bidirectional", {"volumes": [PVC], "volumeMounts": [{"name": "cache", "mountPath": "/c",
                                                                 "mountPropagation": "Bidirectional"}]},
     "volumeMounts[0].mountPropagation"),
]


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize(("pod", "where"), [c[1:] for c in SCHEMA_CASES], ids=[c[0] for c in SCHEMA_CASES])
def test_the_schema_refuses_what_the_pod_security_standard_or_the_server_would(section: str, pod: Json, where: str):
    found = problems(with_pod(section, copy.deepcopy(pod)))
    assert [problem.split(": ")[0] for problem in found] == [f"spec.{section}.{where}"], found


DUPLICATES = [
    ("volumes", {"volumes": [PVC, {**PVC, "persistentVolumeClaim": {"claimName": "other"}}]}, "volumes[1]",
     "name: 'cache'"),
    ("mount-paths", {"volumes": [PVC, {"name": "b", "emptyDir": {}}],
                     "volumeMounts": [{"name": "cache", "mountPath": "/x"}, {"name": "b", "mountPath": "/x"}]},
     "volumeMounts[1]", "mountPath: '/x'"),
    ("env", {"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}, "env[1]", "name: 'A'"),
    ("pull-secrets", {"imagePullSecrets": [{"name": "a"}, {"name": "a"}]}, "imagePullSecrets[1]", "name: 'a'"),
]


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize(("pod", "where", "shown"), [c[1:] for c in DUPLICATES], ids=[c[0] for c in DUPLICATES])
def test_duplicate_keys_are_refused_as_the_server_refuses_them(section: str, pod: Json, where: str, shown: str):
    assert problems(with_pod(section, copy.deepcopy(pod))) == [f"spec.{section}.{where}: Duplicate value: {shown}"]


def test_a_duplicate_feature_is_refused_too():
    found = schema_problems({**VALID, "model": {"estimator": "SGDClassifier", "target": "y", "features": ["a", "a"]}})
    assert found == ["spec.model.features[1]: Duplicate value: 'a'"]


def test_no_field_of_a_pod_section_can_hold_a_secret_value():
    """Secrets have references only: whatever names a Secret holds a name, a key and options, never data."""
    def walk(node: Json, path: str):
        for name, child in (node.get("properties") or {}).items():
            target = child.get("items", child) if child.get("type") == "array" else child
            yield f"{path}.{name}", target
            yield from walk(target, f"{path}.{name}")
    fields = dict(walk(pod_schema("", "training.pod", "job"), "pod"))
    secrets = {path: set(node.get("properties") or {}) for path, node in fields.items()
               if "secret" in path.rsplit(".", 1)[1].lower() and node.get("type") == "object"
               and path.rsplit(".", 1)[1] != "serviceAccountToken"}
    assert set(secrets) == {"pod.imagePullSecrets", "pod.env.valueFrom.secretKeyRef", "pod.envFrom.secretRef",
                            "pod.volumes.secret", "pod.volumes.csi.nodePublishSecretRef"}
    for path, properties in secrets.items():
        assert properties <= {"name", "secretName", "key", "optional", "items", "defaultMode"}, path
    assert not [path for path in fields if path.rsplit(".", 1)[1] in ("data", "stringData", "password")]
