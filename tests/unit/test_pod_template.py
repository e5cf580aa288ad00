"""The pod sections (spec.training.pod, spec.triggers.drift.pod, spec.serving.pod) in the pods the operator
makes: every field on every workload, the operator's own fields winning, GPU placement untouched, the same
spec giving the same manifest, and which change reaches which workload when."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from retrain_contract.api import names
from retrain_contract.api.spec import PodTemplate, PolicySpec
from retrain_operator.adapters.kube import Kube
from retrain_operator.core import pods, serving
from retrain_operator.core.jobs import DriftRequest, PolicyRef, RunRequest, drift_job, trainer_job
from retrain_operator.core.observed import ACTIVE, Observed
from retrain_operator.core.runs import Trigger

from .decisions import MANUAL, job, started, step, then
from .policies import policy, spec

REF = PolicyRef("churn", "ml", "uid-1")
RUN = RunRequest("v3", "v2", Trigger("manual", "annotation", "2026-11-24T10:00:00Z", "now"))
CHECK = DriftRequest("d4", "v2", "2026-11-24T10:00:00Z")
SERVED = serving.Served("v2", "s3://models/retrain/ml/churn/v2/", 2)
Json = dict[str, Any]

POD: Json = {
    "metadata": {"labels": {"kueue.x-k8s.io/queue-name": "ml-gpu", "sidecar.istio.io/inject": "false",
                            "cost-center": "ml-42"},
                 "annotations": {"proxy.istio.io/config": "holdApplicationUntilProxyStarts: true",
                                 "cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}},
    "imagePullSecrets": [{"name": "registry-pull"}, {"name": "mirror.pull"}],
    "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000,
                        "fsGroupChangePolicy": "OnRootMismatch"},
    "containerSecurityContext": {"readOnlyRootFilesystem": False, "runAsUser": 1001,
                                 "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["NET_RAW"]}},
    "env": [{"name": "HTTPS_PROXY", "value": "http://proxy.corp:3128"},
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
            {"name": "REGION", "valueFrom": {"configMapKeyRef": {"name": "site", "key": "region", "optional": True}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
    "envFrom": [{"configMapRef": {"name": "proxy-settings"}}, {"secretRef": {"name": "feature-store"},
                                                              "prefix": "FS_"}],
    "volumes": [{"name": "cache", "persistentVolumeClaim": {"claimName": "model-cache"}},
                {"name": "ca", "configMap": {"name": "corp-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}],
    "volumeMounts": [{"name": "cache", "mountPath": "/cache"},
                     {"name": "ca", "mountPath": "/etc/ssl/corp", "readOnly": True},
                     {"name": "scratch", "mountPath": "/scratch"}],
}
GPU = {"resources": {"limits": {"nvidia.com/gpu": 1, "memory": "8Gi"}},
       "nodeSelector": {"nvidia.com/gpu.present": "true"},
       "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
       "runtimeClassName": "nvidia", "priorityClassName": "ml-batch", "serviceAccountName": "trainer",
       "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
           {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In",
                                  "values": ["eu-west-1a"]}]}]}}}}
DRIFT = {"data": "s3://data/churn/recent/"}
SERVING = {"replicas": 2, "priorityClassName": "model-serving",
           "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
               {"weight": 100, "podAffinityTerm": {"topologyKey": "topology.kubernetes.io/zone",
                                                   "labelSelector": {"matchLabels": {"app": "x"}}}}]}}}


def parsed(training: Json | None = None, drift: Json | None = None, serving_: Json | None = None,
           **extra: Any) -> PolicySpec:
    sections: Json = {"training": {"strategy": "full", **(training or {})}, **extra}
    if drift is not None:
        sections["triggers"] = {"drift": drift}
    if serving_ is not None:
        sections["serving"] = serving_
    return PolicySpec.from_dict(spec(**sections))


def train(**sections: Any) -> Json:
    return trainer_job(REF, parsed(**sections), RUN, "trainer:1")


def check(**sections: Any) -> Json:
    sections.setdefault("drift", DRIFT)
    return drift_job(REF, parsed(**sections), CHECK, "trainer:1")


def serve(role: str = serving.STABLE, **sections: Any) -> Json:
    sections.setdefault("serving_", SERVING)
    return serving.model_deployment(REF, parsed(**sections), role, SERVED, "trainer:1")


# Each workload built with POD as its pod section.
WORKLOADS = {
    "trainer": lambda pod: train(training={"pod": pod}),
    "drift check (training's)": lambda pod: check(training={"pod": pod}),
    "drift check (its own)": lambda pod: check(drift={**DRIFT, "pod": pod}),
    "model server": lambda pod: serve(serving_={**SERVING, "pod": pod}),
}


def pod_of(workload: Json) -> Json:
    return workload["spec"]["template"]["spec"]


def container_of(workload: Json) -> Json:
    [container] = pod_of(workload)["containers"]
    return container


@pytest.fixture(params=list(WORKLOADS), ids=list(WORKLOADS))
def built(request: pytest.FixtureRequest) -> tuple[Json, Json]:
    """(with POD, without a pod section) of one workload."""
    make = WORKLOADS[request.param]
    return make(copy.deepcopy(POD)), make(None)


def test_labels_reach_the_workload_and_its_pods_under_the_operators(built):
    fitted, bare = built
    user = POD["metadata"]["labels"]
    for where, plain in ((fitted["metadata"]["labels"], bare["metadata"]["labels"]),
                         (fitted["spec"]["template"]["metadata"]["labels"],
                          bare["spec"]["template"]["metadata"]["labels"])):
        assert where == {**user, **plain}
        assert where[names.LABEL_MANAGED_BY] == names.MANAGED_BY and where[names.LABEL_POLICY] == "churn"


def test_annotations_reach_the_workload_and_its_pods(built):
    fitted, bare = built
    user = POD["metadata"]["annotations"]
    assert fitted["spec"]["template"]["metadata"]["annotations"] == user
    assert "annotations" not in bare["spec"]["template"]["metadata"]
    meta, plain = dict(fitted["metadata"]["annotations"]), dict(bare["metadata"]["annotations"])
    meta.pop(serving.ANNOTATION_TEMPLATE_HASH, None)  # the model servers' digest of their template differs
    plain.pop(serving.ANNOTATION_TEMPLATE_HASH, None)
    assert meta == {**user, **plain}


def test_image_pull_secrets_reach_the_pod(built):
    fitted, bare = built
    assert pod_of(fitted)["imagePullSecrets"] == [{"name": "registry-pull"}, {"name": "mirror.pull"}]
    assert "imagePullSecrets" not in pod_of(bare)


def test_the_pod_security_context_is_the_operators_with_the_users_fields_over_it(built):
    fitted, bare = built
    assert pod_of(bare)["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod_of(fitted)["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"},
                                                 "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000,
                                                 "fsGroupChangePolicy": "OnRootMismatch"}


def test_the_container_security_context_keeps_all_capabilities_dropped(built):
    fitted, bare = built
    assert container_of(bare)["securityContext"] == {"allowPrivilegeEscalation": False,
                                                     "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    assert container_of(fitted)["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": False, "runAsUser": 1001,
        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL", "NET_RAW"]}}


def test_env_comes_after_the_operators_own_and_secrets_stay_references(built):
    fitted, bare = built
    env, before = container_of(fitted)["env"], container_of(bare)["env"]
    ours = [item for item in before if item["name"] != names.ENV_SIGNING_KEY]
    assert env[:len(ours)] == ours
    assert env[len(ours):len(ours) + len(POD["env"])] == POD["env"]
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}} in env
    assert container_of(fitted)["envFrom"] == POD["envFrom"]
    assert "envFrom" not in container_of(bare)


def test_volumes_and_mounts_come_after_the_operators_own(built):
    fitted, bare = built
    assert pod_of(fitted)["volumes"] == [*pod_of(bare)["volumes"], *POD["volumes"]]
    assert container_of(fitted)["volumeMounts"] == [*container_of(bare)["volumeMounts"], *POD["volumeMounts"]]
    assert pod_of(bare)["volumes"][0] == {"name": "tmp", "emptyDir": {}}


def test_the_users_dicts_are_never_shared_with_the_manifest():
    template = PodTemplate.from_dict(copy.deepcopy(POD))
    pod_spec: Json = {}
    container: Json = {}
    pods.fit(pod_spec, container, template)
    container["env"][0]["value"] = "changed"
    pod_spec["volumes"][0]["persistentVolumeClaim"]["claimName"] = "changed"
    pod_spec["securityContext"]["runAsUser"] = 0
    assert template == PodTemplate.from_dict(POD)


def test_the_operators_labels_and_annotations_win_even_over_a_spec_validation_missed():
    sneaky = {"metadata": {"labels": {names.LABEL_MANAGED_BY: "me", names.LABEL_POLICY: "other",
                                      "app.kubernetes.io/name": "x"},
                           "annotations": {names.ANNOTATION_POLICY: "other"}}}
    manifest = serve(serving_={**SERVING, "pod": sneaky})
    labels = manifest["spec"]["template"]["metadata"]["labels"]
    assert labels[names.LABEL_MANAGED_BY] == names.MANAGED_BY and labels[names.LABEL_POLICY] == "churn"
    assert labels["app.kubernetes.io/name"] == "model-server"  # the selector still selects its pods
    assert names.ANNOTATION_POLICY not in manifest["spec"]["template"]["metadata"].get("annotations", {})
    trainer = train(training={"pod": sneaky})
    job_labels = trainer["metadata"]["labels"]
    assert job_labels[names.LABEL_MANAGED_BY] == names.MANAGED_BY and job_labels[names.LABEL_POLICY] == "churn"
    assert names.ANNOTATION_POLICY not in trainer["metadata"]["annotations"]
    long = "a-very-long-policy-name-that-goes-on-and-on-and-on-beyond-the-limits"
    job_ = trainer_job(PolicyRef(long, "ml", "uid-1"), parsed(training={"pod": sneaky}), RUN, "trainer:1")
    assert job_["metadata"]["annotations"][names.ANNOTATION_POLICY] == long
    assert job_["spec"]["template"]["metadata"]["annotations"][names.ANNOTATION_POLICY] == long


# -- placement and scheduling: GPU fields keep working, each workload takes its own -------------------------


def test_gpu_placement_of_the_trainer_is_untouched_by_a_pod_section():
    fitted = train(training={**GPU, "pod": copy.deepcopy(POD)})
    bare = train(training=GPU)
    for key in ("nodeSelector", "tolerations", "runtimeClassName", "priorityClassName", "serviceAccountName",
                "affinity"):
        assert pod_of(fitted)[key] == pod_of(bare)[key] == GPU[key], key
    assert container_of(fitted)["resources"] == container_of(bare)["resources"] == GPU["resources"]


def test_the_drift_check_takes_the_training_priority_but_no_gpu_placement():
    pod = pod_of(check(training={**GPU, "pod": copy.deepcopy(POD)}))
    assert pod["priorityClassName"] == "ml-batch" and pod["serviceAccountName"] == "trainer"
    assert not {"nodeSelector", "tolerations", "runtimeClassName", "affinity"} & set(pod)
    assert "nvidia.com/gpu" not in json.dumps(pod["containers"][0]["resources"])


def test_the_model_servers_take_their_own_affinity_priority_and_gpu_placement():
    gpu = {"resources": {"limits": {"nvidia.com/gpu": 1}}, "nodeSelector": {"nvidia.com/gpu.present": "true"},
           "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}
    for role in (serving.STABLE, serving.CANARY):
        pod = pod_of(serve(role, serving_={**SERVING, **gpu, "pod": copy.deepcopy(POD)}))
        assert pod["affinity"] == SERVING["affinity"] and pod["priorityClassName"] == "model-serving"
        assert pod["nodeSelector"] == gpu["nodeSelector"] and pod["tolerations"] == gpu["tolerations"]
        assert pod["containers"][0]["resources"] == gpu["resources"]
    bare = pod_of(serve(serving_={"replicas": 2}))
    assert "affinity" not in bare and "priorityClassName" not in bare


def test_the_drift_check_takes_its_own_pod_section_whole_even_an_empty_one():
    own = {"metadata": {"labels": {"kueue.x-k8s.io/queue-name": "ml-cpu"}}}
    manifest = check(training={"pod": copy.deepcopy(POD)}, drift={**DRIFT, "pod": own})
    assert manifest["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "ml-cpu"
    assert "sidecar.istio.io/inject" not in manifest["metadata"]["labels"]  # no merge with training's
    assert [v["name"] for v in pod_of(manifest)["volumes"]] == ["tmp"]
    empty = check(training={"pod": copy.deepcopy(POD)}, drift={**DRIFT, "pod": {}})
    assert pod_of(empty) == pod_of(check(drift=DRIFT))
    assert pods.drift_template(PodTemplate(labels={"a": "b"}), None) == PodTemplate(labels={"a": "b"})


# -- deterministic: the same spec, the same manifest -------------------------------------------------------------


def _reordered(value: Any) -> Any:
    """The same value with every mapping's keys in reverse order (lists keep theirs: order means something)."""
    if isinstance(value, dict):
        return {key: _reordered(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(item) for item in value]
    return value


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_the_same_spec_gives_the_same_manifest_whatever_the_key_order(name: str):
    make = WORKLOADS[name]
    first, again = make(copy.deepcopy(POD)), make(copy.deepcopy(POD))
    assert json.dumps(first) == json.dumps(again)
    shuffled = make(_reordered(copy.deepcopy(POD)))
    assert json.dumps(shuffled["metadata"]["labels"]) == json.dumps(first["metadata"]["labels"])
    assert json.dumps(shuffled, sort_keys=True) == json.dumps(first, sort_keys=True)


def test_the_template_digest_follows_the_template_only():
    base = serve(serving_={**SERVING, "pod": copy.deepcopy(POD)})
    digest = base["metadata"]["annotations"][serving.ANNOTATION_TEMPLATE_HASH]
    assert digest == serving.template_hash(base["spec"]["template"])
    assert serve(serving_={**SERVING, "pod": _reordered(copy.deepcopy(POD))})["metadata"]["annotations"][
        serving.ANNOTATION_TEMPLATE_HASH] == digest
    fewer = copy.deepcopy(POD)
    del fewer["metadata"]["annotations"]["proxy.istio.io/config"]
    assert serve(serving_={**SERVING, "pod": fewer})["metadata"]["annotations"][
        serving.ANNOTATION_TEMPLATE_HASH] != digest
    more_replicas = serving.model_deployment(REF, parsed(serving_={**SERVING, "pod": copy.deepcopy(POD)}),
                                             serving.STABLE, serving.Served("v2", SERVED.uri, 5), "trainer:1")
    assert more_replicas["metadata"]["annotations"][serving.ANNOTATION_TEMPLATE_HASH] == digest


# -- which change reaches what, and when ------------------------------------------------------------------------------


def test_a_changed_serving_pod_section_changes_the_model_server_template():
    before = serve(serving_={**SERVING, "pod": copy.deepcopy(POD)})
    changed = copy.deepcopy(POD)
    changed["env"][0]["value"] = "http://proxy.other:3128"
    after = serve(serving_={**SERVING, "pod": changed})
    assert after["spec"]["template"] != before["spec"]["template"]
    assert after["spec"]["selector"] == before["spec"]["selector"]  # immutable: never touched


def test_a_changed_training_pod_section_reaches_only_the_next_job():
    state, plan = started(training={"strategy": "full", "pod": {"metadata": {"labels": {"team": "a"}}}})
    assert plan.create_job["metadata"]["labels"]["team"] == "a"
    edited = then(state, plan)
    edited = policy(spec(training={"strategy": "full", "pod": {"metadata": {"labels": {"team": "b"}}}}),
                    status=edited.status, annotations=MANUAL, generation=2)
    running = step(edited, Observed(jobs=(job("v1", ACTIVE),)))
    assert running.create_job is None  # the Job under way is followed as it is (Jobs are never patched)
    assert running.status["activeRun"]["version"] == "v1"
    nxt = trainer_job(REF, PolicySpec.from_dict(edited.spec), RUN, "trainer:1")
    assert nxt["metadata"]["labels"]["team"] == "b"


# -- applying a model server Deployment: a dropped field is dropped in the cluster too ------------------------------


class FakeApps:
    def __init__(self) -> None:
        self.patches: list[Json] = []

    def patch_namespaced_deployment(self, name: str, namespace: str, body: Json, **_: Any) -> Any:
        self.patches.append(body)

        class Response:
            data = json.dumps({"metadata": {"name": name}}).encode()
        return Response()


def _kube() -> tuple[Kube, FakeApps]:
    kube = Kube.__new__(Kube)
    kube.apps = FakeApps()
    return kube, kube.apps


def _as_stored(manifest: Json) -> Json:
    """The Deployment as the server keeps it: its defaults added (extra fields the comparison ignores)."""
    stored = copy.deepcopy(manifest)
    stored["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "1"
    stored["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst"
    for volume in stored["spec"]["template"]["spec"]["volumes"]:
        if "configMap" in volume:
            volume["configMap"]["defaultMode"] = 420
    for volume in stored["spec"]["template"]["spec"]["volumes"]:
        if "emptyDir" in volume and "sizeLimit" in volume["emptyDir"]:
            volume["emptyDir"]["sizeLimit"] = "1024Mi"  # a quantity as another spelling of the same value
    return stored


def test_an_unchanged_deployment_is_not_patched():
    kube, apps = _kube()
    manifest = serve(serving_={**SERVING, "pod": copy.deepcopy(POD)})
    assert kube.apply_deployment(manifest, _as_stored(manifest)) is None
    assert apps.patches == []


def test_a_dropped_pod_field_is_written_and_the_template_replaced_whole():
    kube, apps = _kube()
    stored = _as_stored(serve(serving_={**SERVING, "pod": copy.deepcopy(POD)}))
    fewer = copy.deepcopy(POD)
    del fewer["metadata"]["annotations"]["proxy.istio.io/config"]
    fewer["env"] = fewer["env"][1:]
    fewer["volumes"], fewer["volumeMounts"] = fewer["volumes"][:1], fewer["volumeMounts"][:1]
    wanted = serve(serving_={**SERVING, "pod": fewer})
    kube.apply_deployment(wanted, stored)
    [patch] = apps.patches
    assert patch["spec"]["template"]["$patch"] == "replace"  # a strategic merge would keep what was dropped
    assert {k: v for k, v in patch["spec"]["template"].items() if k != "$patch"} == wanted["spec"]["template"]
    assert patch["metadata"]["annotations"][serving.ANNOTATION_TEMPLATE_HASH] == \
        wanted["metadata"]["annotations"][serving.ANNOTATION_TEMPLATE_HASH]
    assert "$patch" not in wanted["spec"]["template"]  # the manifest itself is left as it was


# -- RBAC: nothing new; the kubelet reads what the pod sections name, not the operator ------------------------------


def test_the_secrets_a_pod_section_names_are_not_the_operators_to_read():
    from retrain_operator.core.references import references

    bare = spec(triggers={"drift": DRIFT}, serving={"replicas": 1})
    fitted = spec(training={"strategy": "full", "pod": copy.deepcopy(POD)},
                  triggers={"drift": {**DRIFT, "pod": copy.deepcopy(POD)}}, serving={"replicas": 1, "pod": POD})
    assert references("ml", fitted) == references("ml", bare)  # only storage's and signing's Secrets


def test_the_operators_role_grants_nothing_for_what_pod_sections_reference():
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    [role] = [d for d in yaml.safe_load_all((root / "manifests/operator/rbac.yaml").read_text())
              if d and d["kind"] == "ClusterRole"]
    resources = {resource for rule in role["rules"] for resource in rule["resources"]}
    assert not resources & {"configmaps", "persistentvolumeclaims", "priorityclasses", "serviceaccounts"}
    jobs = [rule for rule in role["rules"] if "jobs" in rule["resources"]]
    assert [sorted(rule["verbs"]) for rule in jobs] == [["create", "list", "watch"]]  # never patched: next run only
