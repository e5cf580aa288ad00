"""The pod sections on the real control plane: a policy with every field (labels and annotations, pull secrets,
priority classes, affinity, pod and container security context, env and envFrom from Secrets and ConfigMaps,
volumes from a PVC, a ConfigMap, a Secret) is accepted by the API server, trains, serves and checks drift; the
trainer Job, the drift-check Job and the model server Deployment carry the fields as the server stored them; a
changed serving pod section is rolled out (a removed field removed), a changed training one reaches only the
next Job."""

from __future__ import annotations

import base64
import copy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client.rest import ApiException

from retrain_contract.api import names
from retrain_operator.adapters.kube import RESTARTED_AT, _covers
from retrain_operator.core import serving
from retrain_operator.core.conditions import get_condition
from retrain_sandbox import dataset

from .conftest import Scenario
from .test_crd_validation import POD_SECTION
from .test_kubectl_plugin import Kubectl

pytestmark = pytest.mark.integration
Json = dict[str, Any]


@pytest.fixture()
def cluster_objects(scenario: Scenario) -> Iterator[dict[str, str]]:
    """What the pod sections name: Secrets and ConfigMaps in the namespace, a PVC bound to a PV, and two
    PriorityClasses (cluster-wide, so named per test and deleted after it)."""
    api = scenario.cluster.api_client
    core, scheduling = kubernetes.client.CoreV1Api(api), kubernetes.client.SchedulingV1Api(api)
    ns, suffix = scenario.namespace, uuid.uuid4().hex[:8]
    made = {"batch": f"ml-batch-{suffix}", "serving": f"model-serving-{suffix}", "pv": f"model-cache-{suffix}"}

    def secret(name: str, data: dict[str, str], kind: str = "Opaque") -> None:
        core.create_namespaced_secret(ns, {"metadata": {"name": name}, "type": kind, "data": {
            key: base64.b64encode(value.encode()).decode() for key, value in data.items()}})

    secret("hf-token", {"token": "hf_not_a_real_token"})
    secret("feature-store", {"URL": "http://feature-store.invalid"})
    secret("tls", {"tls.crt": "not a certificate"})
    secret("registry-pull", {".dockerconfigjson": '{"auths": {}}'}, "kubernetes.io/dockerconfigjson")
    core.create_namespaced_config_map(ns, {"metadata": {"name": "proxy-settings"},
                                           "data": {"NO_PROXY": "localhost,.svc"}})
    core.create_namespaced_config_map(ns, {"metadata": {"name": "corp-ca"}, "data": {"ca.crt": "not a CA"}})
    for name, value in ((made["batch"], 1000), (made["serving"], 2000)):
        scheduling.create_priority_class({"metadata": {"name": name}, "value": value})
    core.create_persistent_volume({"metadata": {"name": made["pv"]}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "",
        "persistentVolumeReclaimPolicy": "Retain",
        "hostPath": {"path": f"/tmp/{made['pv']}"},  # the volume's own source: pods only name the claim
        "claimRef": {"namespace": ns, "name": "model-cache"}}})
    core.create_namespaced_persistent_volume_claim(ns, {"metadata": {"name": "model-cache"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "storageClassName": "", "volumeName": made["pv"],
        "resources": {"requests": {"storage": "1Gi"}}}})
    scenario.cluster.wait(lambda: core.read_namespaced_persistent_volume_claim("model-cache", ns).status.phase
                          == "Bound", 30, "the PVC to bind")
    yield made
    for name in (made["batch"], made["serving"]):
        scheduling.delete_priority_class(name)
    try:
        core.delete_persistent_volume(made["pv"])
    except ApiException as error:
        if error.status != 404:
            raise


def section(**changes: Any) -> Json:
    """POD_SECTION with its mounts under /tmp: the dev node's containers share the machine's file system, and
    a mount point is made where it is missing (under /tmp, inside the pod's own emptyDir, not on the machine)."""
    pod = copy.deepcopy(POD_SECTION)
    pod["volumeMounts"] = [{**mount, "mountPath": f"/tmp/{mount['name']}"} for mount in pod["volumeMounts"]]
    pod.update(changes)
    return pod


AFFINITY = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]}}}
DRIFT_POD = {"metadata": {"labels": {"kueue.x-k8s.io/queue-name": "ml-cpu"}},
             "envFrom": [{"configMapRef": {"name": "proxy-settings"}}]}
DRIFT_TOLERATIONS = [{"key": "pool", "operator": "Equal", "value": "batch", "effect": "NoSchedule"}]


def carries(stored: Json, pod: Json) -> None:
    """A stored Job or Deployment carries a pod section: the server's defaults may be added, nothing is lost."""
    template = stored["spec"]["template"]
    for target in (stored["metadata"], template["metadata"]):
        assert _covers(target.get("labels"), pod["metadata"]["labels"]), target
        assert _covers(target.get("annotations"), pod["metadata"].get("annotations") or {}), target
    assert stored["metadata"]["labels"][names.LABEL_MANAGED_BY] == names.MANAGED_BY
    spec = template["spec"]
    [container] = spec["containers"]
    assert spec["imagePullSecrets"] == pod["imagePullSecrets"]
    assert _covers(spec["securityContext"], {**pod["securityContext"], "runAsNonRoot": True})
    assert container["securityContext"] == {**pod["containerSecurityContext"], "allowPrivilegeEscalation": False}
    assert _covers(container["env"][-len(pod["env"]):], pod["env"])  # after the operator's own
    assert container["envFrom"] == pod["envFrom"]
    assert spec["volumes"][0]["name"] == names.VOLUME_TMP
    assert _covers([v for v in spec["volumes"] if v["name"] != names.VOLUME_TMP], pod["volumes"])
    assert container["volumeMounts"][0]["mountPath"] == names.TMP_DIR
    assert _covers(container["volumeMounts"][1:], pod["volumeMounts"])


def test_every_pod_field_is_accepted_run_and_carried(scenario: Scenario, cluster_objects: dict[str, str],
                                                    tmp_path: Path):
    scenario.load_history()
    scenario.put("recent/batch-1.parquet", dataset.to_parquet(dataset.churn_table(500, seed=5)))
    training = {"strategy": "full", "backoffLimit": 0, "priorityClassName": cluster_objects["batch"],
                "affinity": AFFINITY, "pod": section()}
    served = {"replicas": 1, "priorityClassName": cluster_objects["serving"], "affinity": AFFINITY,
              "pod": section()}
    spec = scenario.policy_spec(training=training, serving=served, triggers={"drift": {
        "data": f"s3://{scenario.data_bucket}/recent/", "interval": "1h", "pod": DRIFT_POD,
        "tolerations": DRIFT_TOLERATIONS, "affinity": AFFINITY}})
    created = scenario.cluster.apply_policy(scenario.namespace, "fitted", spec,
                                            annotations={names.ANNOTATION_TRIGGER: "1"})
    assert created["spec"]["training"]["pod"] == section()  # the API server kept every field

    # The trainer Job: every field, as the server stored it; and it runs (the PVC, the ConfigMaps, the Secrets
    # and the priority class exist), so the version is recorded.
    status = scenario.wait_recorded("fitted", "v1", timeout=120)
    assert status["lastRun"]["phase"] == "Succeeded", status["lastRun"]
    jobs = {j["metadata"]["name"]: j for j in scenario.cluster.jobs(scenario.namespace)}
    trainer = jobs["fitted-v1"]
    carries(trainer, section())
    pod_spec = trainer["spec"]["template"]["spec"]
    assert pod_spec["priorityClassName"] == cluster_objects["batch"] and pod_spec["affinity"] == AFFINITY
    [trainer_pod] = scenario.cluster.pods(scenario.namespace, {"job-name": "fitted-v1"})
    assert trainer_pod["spec"]["priority"] == 1000  # the admission plugin found the class
    assert trainer_pod["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "ml-gpu"

    # The model server Deployment: the serving pod section, its own priority class and affinity.
    deployment = scenario.cluster.wait(
        lambda: scenario.cluster.deployment(scenario.namespace, serving.deployment_name("fitted", serving.STABLE)),
        60, "the stable Deployment")
    carries(deployment, section())
    assert deployment["spec"]["template"]["spec"]["priorityClassName"] == cluster_objects["serving"]
    assert deployment["spec"]["template"]["spec"]["affinity"] == AFFINITY

    # The drift check: its own pod section, whole (no volumes of training's), its own placement.
    drift = scenario.cluster.wait(lambda: next((j for j in scenario.cluster.jobs(scenario.namespace)
                                                if j["metadata"]["labels"].get(names.LABEL_PURPOSE) == "drift"),
                                               None), 60, "the drift-check Job")
    assert drift["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "ml-cpu"
    assert "sidecar.istio.io/inject" not in drift["spec"]["template"]["metadata"]["labels"]
    drift_spec = drift["spec"]["template"]["spec"]
    assert [v["name"] for v in drift_spec["volumes"]] == [names.VOLUME_TMP]
    assert drift_spec["containers"][0]["envFrom"] == DRIFT_POD["envFrom"]
    assert drift_spec["priorityClassName"] == cluster_objects["batch"]
    assert drift_spec["affinity"] == AFFINITY and drift_spec["tolerations"] == DRIFT_TOLERATIONS  # its own placement
    scenario.wait_status("fitted", lambda s: (s.get("drift") or {}).get("checkId") == "d1", "the drift check")

    status = scenario.status("fitted")
    assert not status.get("applyErrors"), status["applyErrors"]
    assert get_condition(status["conditions"], "Stalled") is None or \
        get_condition(status["conditions"], "Stalled")["status"] == "False"

    # No churn: a Deployment written before the digest annotation existed (an upgrade) is written once more,
    # its template replaced by an equal one: the template stays as it was, no new ReplicaSet, nothing rolls.
    # (The generation does move: a Deployment's annotations count as its spec for that.)
    name = serving.deployment_name("fitted", serving.STABLE)
    apps = kubernetes.client.AppsV1Api(scenario.cluster.api_client)
    stored = scenario.cluster.deployment(scenario.namespace, name)
    digest = serving.ANNOTATION_TEMPLATE_HASH.replace("/", "~1")
    apps.patch_namespaced_deployment(name, scenario.namespace, [
        {"op": "remove", "path": f"/metadata/annotations/{digest}"}])
    again = scenario.cluster.wait(
        lambda: (lambda d: d if serving.ANNOTATION_TEMPLATE_HASH in d["metadata"]["annotations"] else None)(
            scenario.cluster.deployment(scenario.namespace, name)), 30, "the digest to be written again")
    assert again["spec"]["template"] == stored["spec"]["template"], "an equal template must not change"
    selector = ",".join(f"{k}={v}" for k, v in serving.selector("fitted", serving.STABLE).items())
    replica_sets = apps.list_namespaced_replica_set(scenario.namespace, label_selector=selector).items
    assert len(replica_sets) == 1, [rs.metadata.name for rs in replica_sets]  # the pods never rolled

    # `kubectl rollout restart` by a person: the operator does not undo it (its template still covers ours) ...
    Kubectl(scenario.cluster, tmp_path)("rollout", "restart", f"deployment/{name}", "-n", scenario.namespace)
    restarted = scenario.cluster.deployment(scenario.namespace, name)["spec"]["template"]["metadata"][
        "annotations"][RESTARTED_AT]

    # A changed serving pod section rolls the Deployment; what it no longer has goes from the pods' template.
    before = deployment["spec"]["template"]
    fewer = section(env=POD_SECTION["env"][1:], volumes=POD_SECTION["volumes"][:1],
                    volumeMounts=section()["volumeMounts"][:1],
                    metadata={"labels": {**POD_SECTION["metadata"]["labels"], "cost-center": "ml-43"}})
    # (A JSON merge patch, as kubectl patch --type merge: null removes the annotations; lists are replaced.)
    scenario.cluster.patch_policy(scenario.namespace, "fitted", {"spec": {"serving": {"pod": {
        **fewer, "metadata": {**fewer["metadata"], "annotations": None}}}}})

    def rolled() -> Json | None:
        found = scenario.cluster.deployment(scenario.namespace, serving.deployment_name("fitted", serving.STABLE))
        labels = found["spec"]["template"]["metadata"]["labels"] if found else {}
        return found if labels.get("cost-center") == "ml-43" else None
    after = scenario.cluster.wait(rolled, 60, "the Deployment with the new pod section")["spec"]["template"]
    # ... removed from the template, not merged into it; but the restart marker stays (and so does rollout history)
    assert after["metadata"]["annotations"] == {RESTARTED_AT: restarted}
    assert [e["name"] for e in after["spec"]["containers"][0]["env"]][-3:] == [e["name"] for e in fewer["env"]]
    assert [v["name"] for v in after["spec"]["volumes"]] == [names.VOLUME_TMP, "cache"]
    assert after["spec"]["containers"][0]["args"] == before["spec"]["containers"][0]["args"]  # same version

    # A changed training pod section: the Job that ran is as it was; the next run's Job has the change.
    scenario.cluster.patch_policy(scenario.namespace, "fitted", {"spec": {"training": {"pod": section(
        metadata={"labels": {"kueue.x-k8s.io/queue-name": "ml-gpu-2"}})}}})
    scenario.cluster.trigger(scenario.namespace, "fitted", "2")
    second = scenario.cluster.wait(lambda: next((j for j in scenario.cluster.jobs(scenario.namespace)
                                                 if j["metadata"]["name"] == "fitted-v2"), None), 60, "the next Job")
    assert second["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "ml-gpu-2"
    first = next(j for j in scenario.cluster.jobs(scenario.namespace) if j["metadata"]["name"] == "fitted-v1")
    assert first["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "ml-gpu"
    assert first["spec"]["template"] == trainer["spec"]["template"]
