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
