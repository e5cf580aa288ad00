"""The Helm chart, with the official Helm SDK: lint, render, names and labels as charts users trust have them,
the same objects as the kustomize base, the generated CRD, and a values schema that refuses what cannot work."""

from __future__ import annotations

import copy
import importlib.util
import itertools
import json
import re
import sys
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

from retrain_contract.api import names
from retrain_contract.api.spec import PolicySpec
from retrain_operator.api import crd as crd_module
from retrain_operator.core import serving
from retrain_operator.core.jobs import PolicyRef
from retrain_trainer.serving.app import build_app
from retrain_trainer.serving.metrics import ServingMetrics

from .test_manifests import rendered as kustomized

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm/retrain-operator"
KUBE_VERSION = "1.33"
RELEASE, NAMESPACE = "retrain-operator", "retrain-system"
CHART_META = yaml.safe_load((CHART / "Chart.yaml").read_text())
NOT_KUBERNETES = {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ClusterKopfPeering", "KopfPeering"}
# The labels only the chart sets (the kustomize base has app.kubernetes.io/name alone).
CHART_ONLY_LABELS = {"app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by",
                     "app.kubernetes.io/part-of", "app.kubernetes.io/component", "helm.sh/chart"}
SELECTOR_LABELS = {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
SHARD_LABEL = "retrain.mlops.dev/shard"
# Every optional object on: what `lint` and the label, name and validity tests also take.
EVERYTHING: dict[str, Any] = {
    "sharding": {"shards": 3, "selector": "team in (ml,vision)", "peering": True},
    "metrics": {"serviceMonitor": True, "serviceMonitorLabels": {"release": "kube-prometheus-stack"}},
    "podMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}, "scrapeTimeout": "10s"},
    "prometheusRule": {"enabled": True}, "grafana": {"dashboard": {"enabled": True}},
    "commonLabels": {"team": "ml-platform"}, "podLabels": {"cost-center": "ml"},
    "podAnnotations": {"example.com/owner": "ml"}, "imagePullSecrets": [{"name": "regcred"}],
    "serviceAccount": {"annotations": {"example.com/role": "retrain"}},
    "extraEnv": [{"name": "RETRAIN_LOG_LEVEL", "value": "DEBUG"}],
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
    "nodeSelector": {"kubernetes.io/os": "linux"},
}
EVERYTHING_NAMESPACED = {**EVERYTHING, "watchNamespaces": ["ml", "vision"],
                         "podMonitor": {"enabled": True, "namespace": "monitoring"},
                         "prometheusRule": {"enabled": True, "namespace": "monitoring"},
                         "grafana": {"dashboard": {"enabled": True, "namespace": "monitoring"}}}
COMBINATIONS = {"defaults": {}, "namespaced": {"watchNamespaces": ["ml"], "jsonLogs": False},
                "everything": EVERYTHING, "everything-namespaced": EVERYTHING_NAMESPACED}


class _UniqueKeys(yaml.SafeLoader):
    """YAML that refuses a key written twice in one map (a YAML parser may keep either value)."""


def _unique_mapping(loader: _UniqueKeys, node: yaml.MappingNode, deep: bool = False) -> dict:
    keys = [loader.construct_object(key, deep=True) for key, _ in node.value]
    if len(keys) != len(set(keys)):
        raise yaml.constructor.ConstructorError(None, None, f"a key written twice: {sorted(keys)}", node.start_mark)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def render_files(values: dict | None = None, name: str = RELEASE, namespace: str = NAMESPACE) -> dict[str, str]:
    chart = helm_python.Chart.load(str(CHART))
    return chart.render(values or {}, name=name, namespace=namespace)


def render(values: dict | None = None, name: str = RELEASE, namespace: str = NAMESPACE) -> list[dict]:
    files = render_files(values, name, namespace)
    return [document for path, text in files.items() if not path.endswith("NOTES.txt")
            for document in yaml.load_all(text, Loader=_UniqueKeys) if document]


def notes(values: dict | None = None, name: str = RELEASE, namespace: str = NAMESPACE) -> str:
    [text] = [text for path, text in render_files(values, name, namespace).items() if path.endswith("NOTES.txt")]
    return text


def by_kind(documents: list[dict]) -> dict[tuple[str, str, str], dict]:
    return {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in documents}


def without_chart_labels(document: dict) -> dict:
    """The object as the kustomize base has it: no chart-only labels, none in selectors, no keep policy."""
    document = copy.deepcopy(document)

    def strip(labels: dict | None) -> None:
        for key in CHART_ONLY_LABELS & set(labels or {}):
            del labels[key]  # type: ignore[union-attr]

    metadata = document["metadata"]
    strip(metadata.get("labels"))
    if metadata.get("labels") == {}:
        del metadata["labels"]
    (metadata.get("annotations") or {}).pop("helm.sh/resource-policy", None)
    if metadata.get("annotations") == {}:
        del metadata["annotations"]
    spec = document.get("spec") or {}
    if document["kind"] == "Service":
        strip(spec.get("selector"))
    if document["kind"] == "Deployment":
        strip(spec["selector"]["matchLabels"])
        strip(spec["template"]["metadata"]["labels"])
    return document


def containers(document: dict) -> list[dict]:
    return document["spec"]["template"]["spec"]["containers"]


def _deployments(documents: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}


def _arg(container: dict, flag: str) -> str:
    return container["args"][container["args"].index(flag) + 1]


# -- lint, CRD -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [{}, EVERYTHING, EVERYTHING_NAMESPACED], ids=["defaults", "everything",
                                                                                   "everything-namespaced"])
def test_lint_is_clean(values: dict):
    result = helm_python.lint(str(CHART), values, strict=True, namespace=NAMESPACE)
    assert result["errors"] == []
    assert [m for m in result["messages"] if m["severity"] >= 2] == []  # info ("icon is recommended") only


def test_the_chart_renders_the_generated_crd_labelled_and_kept():
    assert (ROOT / crd_module.HELM_CRD_PATH).read_text() == crd_module.render_yaml(), \
        "run: python -m retrain_operator.api.crd --write"
    assert crd_module.HELM_CRD_PATH.parent.name != "crds", "Helm never upgrades crds/: the CRD is a template"
    [crd] = [d for d in render() if d["kind"] == "CustomResourceDefinition"]
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert crd["metadata"]["labels"]["app.kubernetes.io/component"] == "crd"
    assert {**crd, "metadata": {"name": crd["metadata"]["name"]}} == crd_module.crd()  # the content as generated
    kubernetes_validate.validate(crd, KUBE_VERSION, strict=True)


def test_crds_install_false_renders_no_crd_and_keep_false_drops_the_policy():
    assert not [d for d in render({"crds": {"install": False}}) if d["kind"] == "CustomResourceDefinition"]
    [crd] = [d for d in render({"crds": {"keep": False}}) if d["kind"] == "CustomResourceDefinition"]
    assert "annotations" not in crd["metadata"]


def test_only_kopfs_peering_crds_are_in_crds_where_helm_installs_them_before_the_templates():
    chart = helm_python.Chart.load(str(CHART))
    documents = [d for f in chart.crds for d in yaml.safe_load_all(f["data"]) if d]
    assert {(d["kind"], d["metadata"]["name"], d["spec"]["scope"]) for d in documents} == {
        ("CustomResourceDefinition", "clusterkopfpeerings.kopf.dev", "Cluster"),
        ("CustomResourceDefinition", "kopfpeerings.kopf.dev", "Namespaced")}
    for document in documents:
        kubernetes_validate.validate(document, KUBE_VERSION, strict=True)


# -- the kustomize base --------------------------------------------------------------------------------------


def test_defaults_render_what_the_kustomize_base_gives():
    """Release `retrain-operator` in retrain-system: the base's objects, with the chart's labels on top, its
    selectors widened by the release only, and the cluster-scoped objects named after the namespace too."""
    helm = {key: without_chart_labels(document) for key, document in by_kind(render()).items()}
    expected = {}
    for document in kustomized():
        if document["kind"] == "Namespace":
            continue  # `helm install --create-namespace`, or the namespace is there
        if document["kind"] == "CustomResourceDefinition":  # the generated CRD, which has no labels in the base
            document["metadata"]["labels"] = {"app.kubernetes.io/name": "retrain-operator"}
        if document["kind"] in {"ClusterRole", "ClusterRoleBinding"}:
            document["metadata"]["name"] = f"retrain-operator-{NAMESPACE}"
            if "roleRef" in document:
                document["roleRef"]["name"] = f"retrain-operator-{NAMESPACE}"
        expected[(document["kind"], document["metadata"].get("namespace", ""), document["metadata"]["name"])] = \
            document
    assert helm.keys() == expected.keys()
    for key, document in expected.items():
        assert helm[key] == document, key
    # Only labels were stripped: the chart's selectors are the base's plus the release.
    deployment = by_kind(render())[("Deployment", NAMESPACE, "retrain-operator")]
    assert deployment["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "retrain-operator",
                                                             "app.kubernetes.io/instance": RELEASE}


def test_a_namespaced_install_uses_roles_with_the_same_rules_and_watches_only_those_namespaces():
    documents = render({"watchNamespaces": ["ml", "vision"], "metrics": {"port": 9100, "serviceMonitor": True},
                        "extraEnv": [{"name": "RETRAIN_LOG_LEVEL", "value": "DEBUG"}]})
    objects = by_kind(documents)
    cluster_rules = next(d for d in kustomized() if d["kind"] == "ClusterRole")["rules"]
    name = f"retrain-operator-{NAMESPACE}"
    for namespace in ("ml", "vision"):
        role = objects[("Role", namespace, name)]
        assert role["rules"] + objects[("ClusterRole", "", f"{name}-crds")]["rules"] == \
            [*cluster_rules[1:], cluster_rules[0]]
        binding = objects[("RoleBinding", namespace, name)]
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "retrain-operator", "namespace": NAMESPACE}]
        assert binding["roleRef"]["name"] == name
    assert ("ClusterRole", "", name) not in objects
    container = containers(objects[("Deployment", NAMESPACE, "retrain-operator")])[0]
    assert container["args"][-4:] == ["--namespace", "ml", "--namespace", "vision"]
    assert {"name": "RETRAIN_LOG_LEVEL", "value": "DEBUG"} in container["env"]
    assert objects[("ServiceMonitor", NAMESPACE, "retrain-operator")]["spec"]["endpoints"][0]["port"] == \
        "metrics"


@pytest.mark.parametrize("values", list(COMBINATIONS.values()), ids=list(COMBINATIONS))
def test_every_rendered_object_is_valid_for_kubernetes(values: dict):
    documents = render(values)
    assert documents
    for document in documents:
        if document["kind"] in {"ClusterKopfPeering", "KopfPeering"}:
            assert set(document) == {"apiVersion", "kind", "metadata"}  # kopf's CRDs have no schema for more
        if document["kind"] not in NOT_KUBERNETES:
            kubernetes_validate.validate(document, KUBE_VERSION, strict=True)


# -- names and labels ----------------------------------------------------------------------------------------


def _pod_templates(documents: list[dict]) -> list[dict]:
    return [d["spec"]["template"] for d in documents if d["kind"] == "Deployment"]


@pytest.mark.parametrize("values", list(COMBINATIONS.values()), ids=list(COMBINATIONS))
def test_every_object_and_pod_carries_the_standard_labels(values: dict):
    documents = render(values, name="ml-ops", namespace="platform")
    standard = {"app.kubernetes.io/name": "retrain-operator", "app.kubernetes.io/instance": "ml-ops",
                "app.kubernetes.io/version": str(CHART_META["appVersion"]), "app.kubernetes.io/managed-by": "Helm",
                "app.kubernetes.io/part-of": "retrain-operator",
                "helm.sh/chart": f"retrain-operator-{CHART_META['version']}"}
    for metadata in [d["metadata"] for d in documents] + [t["metadata"] for t in _pod_templates(documents)]:
        labels = metadata["labels"]
        assert labels.items() >= standard.items(), metadata.get("name", labels)
        assert labels["app.kubernetes.io/component"] in {"operator", "crd", "peering", "monitoring"}
        assert labels.get("team") == values.get("commonLabels", {}).get("team")


@pytest.mark.parametrize("values", list(COMBINATIONS.values()), ids=list(COMBINATIONS))
def test_selectors_use_only_the_stable_labels(values: dict):
    documents = render(values)
    selectors = [d["spec"]["selector"]["matchLabels"] for d in documents
                 if d["kind"] in {"Deployment", "PodDisruptionBudget", "ServiceMonitor"}]
    selectors += [d["spec"]["selector"] for d in documents if d["kind"] == "Service"]
    assert selectors
    for selector in selectors:
        assert SELECTOR_LABELS <= set(selector) <= SELECTOR_LABELS | {SHARD_LABEL}, selector
        assert selector["app.kubernetes.io/instance"] == RELEASE


def test_an_upgrade_to_other_values_keeps_every_selector():
    """A Deployment's selector is immutable: no value but the shard count may change one."""
    def selectors(values: dict) -> dict[str, dict]:
        return {d["metadata"]["name"]: d["spec"]["selector"] for d in render(values)
                if d["kind"] in {"Deployment", "PodDisruptionBudget"}}
    base = selectors({"sharding": {"shards": 3}})
    changed = selectors({**EVERYTHING, "sharding": {"shards": 3}, "image": {"tag": "9.9.9"},
                         "jsonLogs": False, "resources": {"limits": {"memory": "1Gi"}}})
    assert changed == base


def _names_and_pods(values: dict, name: str, namespace: str) -> tuple[set[tuple[str, str, str]], list[dict]]:
    documents = render(values, name=name, namespace=namespace)
    keys = {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]) for d in documents}
    return keys, documents


@pytest.mark.parametrize("values", [EVERYTHING, EVERYTHING_NAMESPACED], ids=["cluster-wide", "namespaced"])
def test_two_releases_never_share_an_object(values: dict):
    """Same name in two namespaces, and two names in one namespace: no (kind, namespace, name) in common but
    the CRD, which exactly one release installs; no selector of one release picks the other's pods."""
    releases = {("retrain-operator", "team-a"): values,
                ("retrain-operator", "team-b"): {**values, "crds": {"install": False}},
                ("second", "team-a"): {**values, "crds": {"install": False}}}
    rendered = {release: _names_and_pods(v, *release) for release, v in releases.items()}
    for (one, (keys, _)), (other, (other_keys, _)) in itertools.combinations(rendered.items(), 2):
        assert keys & other_keys == set(), (one, other)
    crds = [key for keys, _ in rendered.values() for key in keys if key[0] == "CustomResourceDefinition"]
    assert crds == [("CustomResourceDefinition", "", "retrainpolicies.retrain.mlops.dev")]
    # Selectors of team-a's two releases: each picks its own pods only.
    first, second = rendered[("retrain-operator", "team-a")][1], rendered[("second", "team-a")][1]
    for documents, others in ((first, second), (second, first)):
        selectors = [d["spec"]["selector"] for d in documents if d["kind"] == "Service"]
        selectors += [d["spec"]["selector"]["matchLabels"] for d in documents
                      if d["kind"] in {"Deployment", "PodDisruptionBudget"}]
        for selector, pod in itertools.product(selectors, _pod_templates(others)):
            assert not selector.items() <= pod["metadata"]["labels"].items()


@pytest.mark.parametrize("values", [{"sharding": {"shards": 12, "peering": True}},
                                    {"sharding": {"shards": 12, "peering": True}, "watchNamespaces": ["ml"]}],
                         ids=["cluster-wide", "namespaced"])
def test_long_release_and_namespace_names_give_valid_distinct_names(values: dict):
    release, namespace = "a-very-long-release-name-for-the-retrain-operator-xy", "n" * 63
    documents = render({**values, "podMonitor": {"enabled": True, "namespace": "monitoring"}},
                       name=release, namespace=namespace)
    keys = [(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]) for d in documents]
    assert len(keys) == len(set(keys))
    for kind, _, name in keys:
        limit = 253 if kind == "CustomResourceDefinition" else 63
        assert len(name) <= limit and re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name), (kind, name)
    deployments = _deployments(documents)
    assert len(deployments) == 12 and all(name.endswith(f"-shard-{i}") for i, name in
                                          enumerate(sorted(deployments, key=lambda n: int(n.rsplit("-", 1)[1]))))
    peering = {_arg(containers(d)[0], "--peering") for d in deployments.values()}
    assert len(peering) == 12
    assert peering <= {name for kind, _, name in keys if kind.endswith("KopfPeering")}


@pytest.mark.parametrize(("values", "deployment", "label"), [
    ({"fullnameOverride": "ops"}, "ops", "retrain-operator"),
    ({"nameOverride": "retrain"}, "ml-retrain", "retrain"),
    ({}, "ml-retrain-operator", "retrain-operator"),
], ids=["fullnameOverride", "nameOverride", "release-name"])
def test_names_follow_the_release_and_the_overrides(values: dict, deployment: str, label: str):
    objects = by_kind(render({**values, "metrics": {"serviceMonitor": True}}, name="ml", namespace="tools"))
    assert ("Deployment", "tools", deployment) in objects
    assert ("Service", "tools", f"{deployment}-metrics") in objects
    assert ("ServiceAccount", "tools", deployment) in objects
    assert ("ClusterRole", "", f"{deployment}-tools") in objects
    assert objects[("Deployment", "tools", deployment)]["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": label, "app.kubernetes.io/instance": "ml"}
    pod = objects[("Deployment", "tools", deployment)]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == deployment
    assert objects[("ClusterRoleBinding", "", f"{deployment}-tools")]["subjects"] == [
        {"kind": "ServiceAccount", "name": deployment, "namespace": "tools"}]


def test_an_objects_own_labels_override_common_labels_and_no_label_is_written_twice():
    documents = render({"commonLabels": {"team": "platform", "tier": "ops"}, "podLabels": {"team": "ml"},
                        "sharding": {"shards": 2}, "metrics": {"serviceMonitor": True,
                                                               "serviceMonitorLabels": {"tier": "monitoring"}}})
    for deployment in _deployments(documents).values():
        assert deployment["metadata"]["labels"]["team"] == "platform"
        pod = deployment["spec"]["template"]["metadata"]["labels"]
        assert (pod["team"], pod["tier"]) == ("ml", "ops")
        assert pod[SHARD_LABEL] == deployment["spec"]["selector"]["matchLabels"][SHARD_LABEL]
    [monitor] = [d for d in documents if d["kind"] == "ServiceMonitor"]
    assert monitor["metadata"]["labels"]["tier"] == "monitoring"
    with pytest.raises(yaml.constructor.ConstructorError):
        list(yaml.load_all("a: 1\na: 2\n", Loader=_UniqueKeys))


def test_an_existing_service_account_is_used_by_name():
    objects = by_kind(render({"serviceAccount": {"create": False, "name": "ml-robot"}}))
    assert not [key for key in objects if key[0] == "ServiceAccount"]
    assert objects[("Deployment", NAMESPACE, "retrain-operator")]["spec"]["template"]["spec"][
        "serviceAccountName"] == "ml-robot"


def test_the_metrics_service_servicemonitor_and_alert_job_agree():
    objects = by_kind(render({"sharding": {"shards": 2}, "metrics": {"serviceMonitor": True},
                              "prometheusRule": {"enabled": True}}, name="ml", namespace="tools"))
    service = objects[("Service", "tools", "ml-retrain-operator-metrics")]
    monitor = objects[("ServiceMonitor", "tools", "ml-retrain-operator")]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    for deployment in _deployments(list(objects.values())).values():
        assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    # Prometheus names the scrape's job after the Service: the alerts select that job.
    rule = objects[("PrometheusRule", "tools", "ml-retrain-operator")]
    expressions = [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]
    assert 'up{job="ml-retrain-operator-metrics"} == 0' in expressions


# -- shards, peering, disruption budget ----------------------------------------------------------------------


def test_three_shards_render_three_deployments_each_with_its_index_and_its_own_pods():
    documents = render({"sharding": {"shards": 3, "selector": "team in (ml,vision)"}})
    deployments = _deployments(documents)
    assert sorted(deployments) == ["retrain-operator-shard-0", "retrain-operator-shard-1", "retrain-operator-shard-2"]
    selectors = []
    for index in range(3):
        deployment = deployments[f"retrain-operator-shard-{index}"]
        spec = deployment["spec"]
        assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
        container = spec["template"]["spec"]["containers"][0]
        assert _arg(container, "--shard-index") == str(index)
        assert _arg(container, "--shard-count") == "3"
        assert _arg(container, "--shard-selector") == "team in (ml,vision)"
        assert "--peering" not in container["args"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        selectors.append(spec["selector"]["matchLabels"])
    # Each Deployment selects only its own pods; the metrics Service (and ServiceMonitor) all of them.
    for index, selector in enumerate(selectors):
        for other, pods in enumerate(selectors):
            assert (selector.items() <= pods.items()) is (index == other)
    service = by_kind(documents)[("Service", NAMESPACE, "retrain-operator-metrics")]
    assert all(service["spec"]["selector"].items() <= pods.items() for pods in selectors)
    assert not [d for d in documents if "KopfPeering" in d["kind"]]


def test_one_shard_with_a_selector_keeps_its_name_and_takes_no_index():
    deployments = _deployments(render({"sharding": {"selector": "team=ml"}}))
    args = containers(deployments["retrain-operator"])[0]["args"]
    assert args[-2:] == ["--shard-selector", "team=ml"] and "--shard-index" not in args


def test_peering_gives_each_shard_its_own_peering_object_and_rbac():
    objects = by_kind(render({"sharding": {"shards": 2, "peering": True}}))
    for index in range(2):
        container = containers(objects[("Deployment", NAMESPACE, f"retrain-operator-shard-{index}")])[0]
        peering = _arg(container, "--peering")
        assert peering == f"retrain-operator-{NAMESPACE}-shard-{index}"
        assert objects[("ClusterKopfPeering", "", peering)]["apiVersion"] == "kopf.dev/v1"
    rule = {"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"], "verbs": ["get", "list", "watch", "patch"]}
    assert rule in objects[("ClusterRole", "", f"retrain-operator-{NAMESPACE}")]["rules"]


def test_one_shard_with_peering_names_its_peering_after_the_release():
    objects = by_kind(render({"sharding": {"peering": True}}))
    peering = _arg(containers(objects[("Deployment", NAMESPACE, "retrain-operator")])[0], "--peering")
    assert ("ClusterKopfPeering", "", peering) in objects and peering == f"retrain-operator-{NAMESPACE}"


def test_namespaced_peering_uses_kopfpeerings_in_each_watched_namespace():
    objects = by_kind(render({"sharding": {"shards": 2, "peering": True}, "watchNamespaces": ["ml", "vision"]}))
    for index in range(2):
        container = containers(objects[("Deployment", NAMESPACE, f"retrain-operator-shard-{index}")])[0]
        for namespace in ("ml", "vision"):
            assert ("KopfPeering", namespace, _arg(container, "--peering")) in objects
    for namespace in ("ml", "vision"):
        assert {"apiGroups": ["kopf.dev"], "resources": ["kopfpeerings"], "verbs": ["get", "list", "watch", "patch"]} \
            in objects[("Role", namespace, f"retrain-operator-{NAMESPACE}")]["rules"]
    assert not [key for key in objects if key[0] == "ClusterKopfPeering"]


def test_without_peering_there_is_no_peering_object_or_rule():
    documents = render({"sharding": {"shards": 2}})
    assert not [d for d in documents if d["kind"] in {"ClusterKopfPeering", "KopfPeering"}]
    rules = by_kind(documents)[("ClusterRole", "", f"retrain-operator-{NAMESPACE}")]["rules"]
    assert not [rule for rule in rules if "kopf.dev" in rule["apiGroups"]]


def _budgets(values: dict) -> list[dict]:
    return [d for d in render(values) if d["kind"] == "PodDisruptionBudget"]


def test_several_shards_get_one_disruption_budget_over_all_their_pods():
    documents = render({"sharding": {"shards": 3}})
    [budget] = [d for d in documents if d["kind"] == "PodDisruptionBudget"]
    assert budget["spec"]["maxUnavailable"] == 1 and budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    selector = budget["spec"]["selector"]["matchLabels"]
    pods = _pod_templates(documents)
    assert len(pods) == 3 and all(selector.items() <= pod["metadata"]["labels"].items() for pod in pods)
    kubernetes_validate.validate(budget, KUBE_VERSION, strict=True)


@pytest.mark.parametrize(("values", "expected"), [
    ({}, None), ({"podDisruptionBudget": {"enabled": False}, "sharding": {"shards": 3}}, None),
    ({"podDisruptionBudget": {"maxUnavailable": "50%", "unhealthyPodEvictionPolicy": "IfHealthyBudget"},
      "sharding": {"shards": 4}}, {"maxUnavailable": "50%", "unhealthyPodEvictionPolicy": "IfHealthyBudget"}),
], ids=["one-shard", "disabled", "percentage"])
def test_the_disruption_budget_follows_its_values(values: dict, expected: dict | None):
    budgets = _budgets(values)
    if expected is None:
        assert budgets == []
    else:
        [budget] = budgets
        assert budget["spec"].items() >= expected.items()
        kubernetes_validate.validate(budget, KUBE_VERSION, strict=True)


# -- the model servers' PodMonitor ---------------------------------------------------------------------------


POLICY = PolicySpec.from_dict({
    "model": {"estimator": "SGDClassifier", "target": "y"}, "data": {"history": "s3://data/x/"},
    "storage": {"bucket": "models", "credentialsSecret": {"name": "s3"}},
    "serving": {"replicas": 2, "port": 9000, "pod": {"labels": {"team": "ml"}}},
})


def _pod_monitor(values: dict | None = None) -> dict:
    [monitor] = [d for d in render({"podMonitor": {"enabled": True, **(values or {})}}) if d["kind"] == "PodMonitor"]
    return monitor


def test_the_pod_monitor_selects_the_model_servers_the_operator_creates_and_scrapes_their_metrics():
    monitor = _pod_monitor()
    selector = monitor["spec"]["selector"]["matchLabels"]
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    for role in (serving.STABLE, serving.CANARY):
        deployment = serving.model_deployment(PolicyRef("churn", "ml", "uid-1"), POLICY, role,
                                              serving.Served("v3", "s3://models/ml/churn/v3/", 2), "trainer:1")
        template = deployment["spec"]["template"]
        assert selector.items() <= template["metadata"]["labels"].items(), role
        [container] = template["spec"]["containers"]
        assert endpoint["port"] in {port["name"] for port in container["ports"]}
    # The model server answers GET on that path with its metrics.
    app = build_app(None, ServingMetrics("v3", policy="churn"))  # type: ignore[arg-type]
    assert endpoint["path"] in {route.resource.canonical for route in app.router.routes() if route.method == "GET"}
    # Not the operator's own pods, nor a trainer's.
    for pod in _pod_templates(render()):
        assert not selector.items() <= pod["metadata"]["labels"].items()
    assert selector[names.LABEL_MANAGED_BY] == names.MANAGED_BY
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    assert endpoint["interval"] == "30s" and "scrapeTimeout" not in endpoint


def test_a_namespaced_pod_monitor_looks_only_in_the_watched_namespaces():
    [monitor] = [d for d in render({"podMonitor": {"enabled": True, "namespace": "monitoring",
                                                   "labels": {"release": "prom"}, "interval": "15s"},
                                    "watchNamespaces": ["ml", "vision"]}) if d["kind"] == "PodMonitor"]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ml", "vision"]}
    assert monitor["metadata"]["namespace"] == "monitoring"
    assert monitor["metadata"]["name"] == f"retrain-operator-{NAMESPACE}-model-servers"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["podMetricsEndpoints"][0]["interval"] == "15s"


def test_no_pod_monitor_by_default():
    assert not [d for d in render() if d["kind"] == "PodMonitor"]


# -- values schema -------------------------------------------------------------------------------------------


def _schema_paths(schema: dict, definitions: dict, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if "$ref" in schema:
        schema = definitions[schema["$ref"].rsplit("/", 1)[1]]
    paths = {prefix}
    for key, sub in (schema.get("properties") or {}).items():
        paths |= _schema_paths(sub, definitions, (*prefix, key))
    return paths


def _value_paths(values: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    paths = {prefix}
    if isinstance(values, dict):
        for key, value in values.items():
            paths |= _value_paths(value, (*prefix, key))
    return paths


def _open_maps(schema: dict) -> set[str]:
    """Where the schema allows any key: only maps of labels, annotations, quantities and Kubernetes' own types."""
    found = set()
    definitions = schema["definitions"]

    def walk(node: dict, where: str) -> None:
        if "$ref" in node:
            return
        if node.get("type") == "object" and node.get("additionalProperties") is not False:
            found.add(where)
        for key, sub in (node.get("properties") or {}).items():
            walk(sub, f"{where}.{key}".lstrip("."))
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{where}[]")
    walk(schema, "")
    for name, definition in definitions.items():
        walk(definition, f"#{name}")
    return found


def test_values_yaml_validates_and_the_schema_knows_every_value():
    chart = helm_python.Chart.load(str(CHART))
    chart.validate_schema(chart.merge_values({}))
    chart.validate_schema(yaml.safe_load((CHART / "values.yaml").read_text()))
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = _value_paths(values) - _schema_paths(schema, schema["definitions"])
    # Maps whose keys are the user's (labels, resources, alerts' thresholds inside a $ref) are not walked further.
    assert {path for path in missing if not any(path[:n] in {("resources",), ("podSecurityContext",),
                                                             ("securityContext",), ("grafana", "dashboard", "labels"),
                                                             ("prometheusRule", "alerts")}
                                                for n in range(len(path)))} == set()
    assert schema["additionalProperties"] is False
    assert _open_maps(schema) == {"affinity.nodeAffinity", "affinity.podAffinity", "affinity.podAntiAffinity",
                                  "#labels", "#annotations", "#quantities", "nodeSelector"}


@pytest.mark.parametrize("values", [
    {"metrics": {"port": "ninety"}}, {"metrics": {"port": 8080}}, {"nosuch": 1}, {"image": {"registry": "x"}},
    {"image": {"pullPolicy": "Sometimes"}}, {"image": {"tag": "v1 beta"}}, {"crds": {"install": "yes"}},
    {"fullnameOverride": "Ops_Team"}, {"nameOverride": "x" * 64}, {"commonLabels": {"app.kubernetes.io/name": "x"}},
    {"commonLabels": {"team": "a b"}}, {"podLabels": {"retrain.mlops.dev/shard": "0"}},
    {"podLabels": {"helm.sh/chart": "x"}}, {"podAnnotations": {"a": 1}}, {"imagePullSecrets": ["regcred"]},
    {"podDisruptionBudget": {"maxUnavailable": 0}}, {"podDisruptionBudget": {"maxUnavailable": "150%"}},
    {"podDisruptionBudget": {"unhealthyPodEvictionPolicy": "Never"}}, {"podMonitor": {"interval": "often"}},
    {"podMonitor": {"namespace": "Monitoring"}}, {"podMonitor": {"labels": {"app.kubernetes.io/instance": "x"}}},
    {"serviceAccount": {"name": "Robot"}}, {"resources": {"limits": {"memory": "lots"}}},
    {"resources": {"request": {"cpu": 1}}}, {"securityContext": {"runAsUser": -1}},
    {"securityContext": {"privilegd": True}}, {"podSecurityContext": {"seccompProfile": {"type": "Off"}}},
    {"tolerations": [{"operator": "Maybe"}]}, {"nodeSelector": {"disk": 1}}, {"affinity": {"nodeAfinity": {}}},
    {"watchNamespaces": ["ml", "ml"]}, {"watchNamespaces": ["ML"]}, {"extraEnv": [{"name": "A"}]},
    {"extraEnv": [{"name": "A", "valueFrom": {}}]}, {"sharding": {"shards": 0}}, {"sharding": {"shards": "two"}},
    {"sharding": {"peering": "yes"}}, {"sharding": {"replicas": 2}}, {"prometheusRule": {"runbookURL": "wiki"}},
    {"image": None},
], ids=lambda values: json.dumps(values)[:60])
def test_bad_values_are_refused(values: dict):
    with pytest.raises(helm_python.HelmError):
        render(values)


# -- notes and README ----------------------------------------------------------------------------------------


def test_the_notes_say_what_was_installed_and_how_to_check_it():
    text = notes({"sharding": {"shards": 2}}, name="ml", namespace="tools")
    for index in range(2):
        assert f"kubectl -n tools rollout status deployment/ml-retrain-operator-shard-{index}" in text
    assert "-l app.kubernetes.io/name=retrain-operator,app.kubernetes.io/instance=ml" in text
    assert "ClusterRole ml-retrain-operator-tools" in text
    assert "manifests/samples/schedule-only.yaml" in text and "docs/policy-reference.md" in text
    assert "kubectl retrain status -A" in text
    assert "upgraded with the release and kept" in text
    assert (ROOT / "manifests/samples/schedule-only.yaml").exists() and (ROOT / "docs/policy-reference.md").exists()
    other = notes({"crds": {"install": False}, "watchNamespaces": ["ml"]})
    assert "not the RetrainPolicy CRD (crds.install=false)" in other and "watching the namespaces ml" in other


def _readme_module() -> Any:
    spec = importlib.util.spec_from_file_location("chart_readme", ROOT / "helm/chart_readme.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_readme_is_generated_from_the_values_comments():
    readme = _readme_module()
    current = (CHART / "README.md").read_text()
    assert readme.generate(current) == current, "run: python helm/chart_readme.py --write"
    rows = readme.values_rows()
    assert [row.key for row in rows if not row.description] == [], "every value needs a `# --` description"
    keys = {row.key for row in rows}
    assert {"crds.install", "crds.keep", "podDisruptionBudget.maxUnavailable", "podMonitor.enabled",
            "fullnameOverride", "sharding.shards", "prometheusRule.alerts.runFailed"} <= keys


def test_the_readme_generator_follows_helm_docs_comments(tmp_path: Path):
    readme = _readme_module()
    chart = tmp_path / "chart"
    chart.mkdir()
    (chart / "values.yaml").write_text(
        "# A section, not in the table.\n"
        "top:\n"
        "  # -- First line,\n"
        "  # second line.\n"
        "  # @default -- computed\n"
        "  leaf: \"\"\n"
        "  # -- A map as one row.\n"
        "  whole: {a: 1, b: [x]}\n"
        "  undocumented: 3\n"
        "list:\n"
        "  - name: inside\n")
    rows = {row.key: row for row in readme.values_rows(chart)}
    assert list(rows) == ["top.leaf", "top.whole", "top.undocumented", "list"]
    assert (rows["top.leaf"].description, rows["top.leaf"].default) == ("First line, second line.", "computed")
    assert (rows["top.whole"].type, rows["top.whole"].default) == ("object", '`{"a":1,"b":["x"]}`')
    assert rows["top.undocumented"].description == "" and rows["list"].type == "list"
    text = readme.generate(f"intro\n{readme.BEGIN}\nold\n{readme.END}\noutro\n", chart)
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text
    assert "| `top.leaf` | string | computed | First line, second line. |" in text
