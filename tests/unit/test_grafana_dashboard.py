"""The Grafana dashboard: it asks only for metrics and labels the operator and model servers export.

A renamed metric or label would leave a panel silently empty, so the names in every PromQL
expression are checked against the real collectors, not against a list kept by hand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from prometheus_client.metrics import MetricWrapperBase

from retrain_operator.adapters import metrics as operator_metrics
from retrain_trainer.serving.metrics import ServingMetrics

from .test_helm_chart import CHART, KUBE_VERSION, render

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "manifests/grafana/retrain-operator.json"
CHART_COPY = CHART / "dashboards/retrain-operator.json"
METRIC = re.compile(r"\bretrain_[a-z_]+")
SELECTOR = re.compile(r"\b(retrain_[a-z_]+)\{([^}]*)\}")
MATCHER = re.compile(r'(\w+)\s*(?:=~|!~|!=|=)\s*"')
TARGET_LABELS = {"namespace", "pod"}  # added to the model servers' samples by Prometheus' Kubernetes discovery
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def operator_series() -> dict[str, set[str]]:
    """Exposed sample name -> label names, from the collector objects of the metrics module."""
    series: dict[str, set[str]] = {}
    for collector in vars(operator_metrics).values():
        if isinstance(collector, MetricWrapperBase):
            for suffix in SUFFIXES[collector._type]:
                extra = {"le"} if suffix == "_bucket" else set()
                series[collector._name + suffix] = set(collector._labelnames) | extra
    return series


def serving_series() -> dict[str, set[str]]:
    """Sample name -> label names as a model server exposes them, after it has served a request."""
    served = ServingMetrics("v1", policy="churn")
    served.request(200, 0.01)
    served.predictions(["yes", "no"], 2)
    served.captured.labels(version="v1").inc()
    series: dict[str, set[str]] = {}
    for family in served.registry.collect():
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def expressions() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", [])]


def test_the_dashboard_parses_and_the_chart_ships_the_same_bytes():
    board = dashboard()
    assert (board["uid"], board["title"], board["schemaVersion"]) == ("retrain-operator", "Retrain operator", 39)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == ("datasource", "prometheus")
    assert variables["namespace"]["definition"] == "label_values(retrain_policy_phase, namespace)"
    assert variables["policy"]["definition"] == 'label_values(retrain_policy_phase{namespace=~"$namespace"}, policy)'
    assert CHART_COPY.read_bytes() == DASHBOARD.read_bytes()


def test_every_expression_asks_for_metrics_that_exist():
    known = operator_series().keys() | serving_series().keys()
    used = {name for expr in expressions() for name in METRIC.findall(expr)}
    assert used - known == set()
    assert {name for name in used if not name.startswith("retrain_serving_")} >= {
        "retrain_policy_phase", "retrain_current_model_version", "retrain_runs_started_total",
        "retrain_runs_finished_total", "retrain_training_duration_seconds_bucket", "retrain_drift_share_ratio",
        "retrain_drift_feature_score", "retrain_drift_checks_total", "retrain_canary_weight_ratio",
        "retrain_rollouts_total", "retrain_reconcile_errors_total"}


def test_every_selector_uses_existing_labels_and_filters_by_the_variables():
    operator, serving = operator_series(), serving_series()
    selectors = [match for expr in expressions() for match in SELECTOR.findall(expr)]
    assert selectors
    for name, matchers in selectors:
        labels = set(MATCHER.findall(matchers))
        exists = operator[name] if name in operator else serving[name] | TARGET_LABELS
        assert labels <= exists, (name, labels - exists)
        assert 'namespace=~"$namespace"' in matchers, name
        if "policy" in exists:
            assert 'policy=~"$policy"' in matchers, name


def test_every_metric_is_selected_with_braces_and_brackets_balance():
    for expr in expressions():
        assert len(METRIC.findall(expr)) == len(SELECTOR.findall(expr)), expr
        for opening, closing in ("()", "{}", "[]"):
            assert expr.count(opening) == expr.count(closing), expr


def test_panels_have_unique_ids_and_do_not_overlap():
    panels = dashboard()["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, (panel["title"], cells.get((x, y)))
                cells[(x, y)] = panel["title"]


def dashboard_configmaps(values: dict) -> list[dict]:
    return [d for d in render(values) if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard")]


def test_the_chart_ships_no_dashboard_by_default():
    assert dashboard_configmaps({}) == []


@pytest.mark.parametrize("values", [
    {"enabled": True},
    {"enabled": True, "labels": {"dashboards": "ml"}, "annotations": {"grafana_folder": "MLOps"},
     "namespace": "monitoring"},
], ids=["defaults", "custom"])
def test_the_chart_renders_the_dashboard_configmap_when_enabled(values: dict):
    [configmap] = dashboard_configmaps({"grafana": {"dashboard": values}})
    kubernetes_validate.validate(configmap, KUBE_VERSION, strict=True)
    assert configmap["data"]["retrain-operator.json"] == DASHBOARD.read_text()
    assert json.loads(configmap["data"]["retrain-operator.json"]) == dashboard()
    metadata = configmap["metadata"]
    assert metadata["labels"].items() >= values.get("labels", {"grafana_dashboard": "1"}).items()
    assert metadata.get("annotations", {}) == values.get("annotations", {})
    assert metadata["namespace"] == values.get("namespace", "retrain-system")
