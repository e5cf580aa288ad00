"""The Helm chart, with the official Helm SDK: lint, render, and the same objects as the kustomize base."""

from __future__ import annotations

from pathlib import Path

import helm_python
import kubernetes_validate
import pytest
import yaml

from retrain_operator.api import crd as crd_module

from .test_manifests import rendered as kustomized

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm/retrain-operator"
KUBE_VERSION = "1.33"


def render(values: dict | None = None) -> list[dict]:
    chart = helm_python.Chart.load(str(CHART))
    files = chart.render(values or {}, name="retrain", namespace="retrain-system")
    return [document for text in files.values() for document in yaml.safe_load_all(text) if document]


def by_kind(documents: list[dict]) -> dict[tuple[str, str, str], dict]:
    return {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in documents}


def test_lint_is_clean():
    result = helm_python.lint(str(CHART), strict=True)
    assert result["errors"] == []
    assert [m for m in result["messages"] if m["severity"] >= 2] == []  # info ("icon is recommended") only


def test_the_chart_ships_the_generated_crd():
    assert (ROOT / crd_module.HELM_CRD_PATH).read_text() == crd_module.render_yaml(), \
        "run: python -m retrain_operator.api.crd --write"


def test_defaults_render_what_the_kustomize_base_gives():
    helm = by_kind(render())
    kustomize = by_kind([d for d in kustomized() if d["kind"] not in {"Namespace", "CustomResourceDefinition"}])
    assert helm.keys() == kustomize.keys()
    for key, expected in kustomize.items():
        assert helm[key] == expected, key


def test_a_namespaced_install_uses_roles_with_the_same_rules_and_watches_only_those_namespaces():
    documents = render({"watchNamespaces": ["ml", "vision"], "metrics": {"port": 9100, "serviceMonitor": True},
                        "extraEnv": [{"name": "RETRAIN_LOG_LEVEL", "value": "DEBUG"}]})
    objects = by_kind(documents)
    cluster_rules = next(d for d in kustomized() if d["kind"] == "ClusterRole")["rules"]
    for namespace in ("ml", "vision"):
        role = objects[("Role", namespace, "retrain-operator")]
        assert role["rules"] + objects[("ClusterRole", "", "retrain-operator-crds")]["rules"] == \
            [*cluster_rules[1:], cluster_rules[0]]
        assert objects[("RoleBinding", namespace, "retrain-operator")]["subjects"][0]["namespace"] == "retrain-system"
    assert ("ClusterRole", "", "retrain-operator") not in objects
    container = objects[("Deployment", "retrain-system", "retrain-operator")]["spec"]["template"]["spec"][
        "containers"][0]
    assert container["args"][-4:] == ["--namespace", "ml", "--namespace", "vision"]
    assert {"name": "RETRAIN_LOG_LEVEL", "value": "DEBUG"} in container["env"]
    assert objects[("ServiceMonitor", "retrain-system", "retrain-operator")]["spec"]["endpoints"][0]["port"] == \
        "metrics"


@pytest.mark.parametrize("values", [{}, {"watchNamespaces": ["ml"], "jsonLogs": False}], ids=["defaults", "namespaced"])
def test_every_rendered_object_is_valid_for_kubernetes(values: dict):
    for document in render(values):
        if document["kind"] == "ServiceMonitor":
            continue  # not a Kubernetes kind: the Prometheus Operator's CRD
        kubernetes_validate.validate(document, KUBE_VERSION, strict=True)


def test_values_are_checked_against_the_schema():
    with pytest.raises(helm_python.HelmError):
        render({"metrics": {"port": "ninety"}})


def _deployments(documents: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}


def test_three_shards_render_three_deployments_each_with_its_index_and_its_own_pods():
    documents = render({"sharding": {"shards": 3, "selector": "team in (ml,vision)"}})
    deployments = _deployments(documents)
    assert sorted(deployments) == ["retrain-operator-shard-0", "retrain-operator-shard-1", "retrain-operator-shard-2"]
    selectors = []
    for index in range(3):
        deployment = deployments[f"retrain-operator-shard-{index}"]
        spec = deployment["spec"]
        assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
        args = spec["template"]["spec"]["containers"][0]["args"]
        assert args[args.index("--shard-index") + 1] == str(index)
        assert args[args.index("--shard-count") + 1] == "3"
        assert args[args.index("--shard-selector") + 1] == "team in (ml,vision)"
        assert "--peering" not in args
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        selectors.append(spec["selector"]["matchLabels"])
    # Each Deployment selects only its own pods; the metrics Service (and ServiceMonitor) all of them.
    for index, selector in enumerate(selectors):
        for other, pods in enumerate(selectors):
            assert (selector.items() <= pods.items()) is (index == other)
    service = by_kind(documents)[("Service", "retrain-system", "retrain-operator-metrics")]
    assert all(service["spec"]["selector"].items() <= pods.items() for pods in selectors)
    assert not [d for d in documents if "KopfPeering" in d["kind"] or d["kind"] == "CustomResourceDefinition"]


def test_one_shard_with_a_selector_keeps_its_name_and_takes_no_index():
    deployments = _deployments(render({"sharding": {"selector": "team=ml"}}))
    args = deployments["retrain-operator"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-2:] == ["--shard-selector", "team=ml"] and "--shard-index" not in args


def test_peering_gives_each_shard_its_own_peering_object_crds_and_rbac():
    objects = by_kind(render({"sharding": {"shards": 2, "peering": True}}))
    for index in range(2):
        name = f"retrain-operator-shard-{index}"
        args = objects[("Deployment", "retrain-system", name)]["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[args.index("--peering") + 1] == name
        assert objects[("ClusterKopfPeering", "", name)]["apiVersion"] == "kopf.dev/v1"
    for crd in ("clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"):
        assert ("CustomResourceDefinition", "", crd) in objects
    rule = {"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"], "verbs": ["get", "list", "watch", "patch"]}
    assert rule in objects[("ClusterRole", "", "retrain-operator")]["rules"]


def test_namespaced_peering_uses_kopfpeerings_in_each_watched_namespace():
    objects = by_kind(render({"sharding": {"shards": 2, "peering": True}, "watchNamespaces": ["ml", "vision"]}))
    for namespace in ("ml", "vision"):
        for index in range(2):
            assert ("KopfPeering", namespace, f"retrain-operator-shard-{index}") in objects
        assert {"apiGroups": ["kopf.dev"], "resources": ["kopfpeerings"], "verbs": ["get", "list", "watch", "patch"]} \
            in objects[("Role", namespace, "retrain-operator")]["rules"]
    assert not [key for key in objects if key[0] == "ClusterKopfPeering"]


def test_without_peering_there_is_no_peering_object_crd_or_rule():
    documents = render({"sharding": {"shards": 2}})
    assert not [d for d in documents if d["kind"] in {"CustomResourceDefinition", "ClusterKopfPeering", "KopfPeering"}]
    rules = by_kind(documents)[("ClusterRole", "", "retrain-operator")]["rules"]
    assert not [rule for rule in rules if "kopf.dev" in rule["apiGroups"]]


@pytest.mark.parametrize("values", [
    {"sharding": {"shards": 3, "selector": "team=ml", "peering": True}},
    {"sharding": {"shards": 2, "peering": True}, "watchNamespaces": ["ml"]},
], ids=["cluster-wide", "namespaced"])
def test_every_sharded_object_is_valid_for_kubernetes(values: dict):
    for document in render(values):
        if document["kind"] in {"ClusterKopfPeering", "KopfPeering"}:
            assert set(document) == {"apiVersion", "kind", "metadata"}  # kopf's CRDs, rendered above; no schema here
            continue
        kubernetes_validate.validate(document, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("sharding", [{"shards": 0}, {"shards": "two"}, {"peering": "yes"}, {"replicas": 2}])
def test_bad_sharding_values_are_refused(sharding: dict):
    with pytest.raises(helm_python.HelmError):
        render({"sharding": sharding})
