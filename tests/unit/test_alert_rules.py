"""The alerting rules: the chart's PrometheusRule and its plain copy in manifests/, checked and unit-tested
by Prometheus' own promtool (`check rules`, and `test rules` with tests/unit/alerts/: input series, and
the alerts each rule must and must not raise)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from retrain_devcluster import processes

from ..prometheus_bin import binary
from .test_grafana_dashboard import operator_series
from .test_helm_chart import render, without_chart_labels

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "manifests/prometheus/retrain-operator-rules.yaml"
PROMTOOL_TESTS = Path(__file__).parent / "alerts/retrain-operator.test.yaml"
DOCS = ROOT / "docs/observability.md"
ALERTS = {"RetrainOperatorDown", "RetrainOperatorAbsent", "RetrainRunFailed", "RetrainRolloutStuck",
          "RetrainRolloutPaused", "RetrainDriftNotRetrained", "RetrainReconcileErrors"}


def chart_rules(values: dict | None = None) -> list[dict]:
    return [d for d in render(values) if d["kind"] == "PrometheusRule"]


def chart_rule(values: dict | None = None) -> dict:
    [rule] = chart_rules({"prometheusRule": {"enabled": True, **(values or {})}})
    return rule


def manifest_rule() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def rules(rule: dict) -> dict[str, dict]:
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def promtool(*args: str, cwd: Path) -> str:
    result = processes.run([binary("promtool"), *args], timeout=120, cwd=cwd)
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}"
    return result.stdout


def write_rules(rule: dict, directory: Path) -> Path:
    """The PrometheusRule's spec is a Prometheus rule file as it is (the Prometheus Operator mounts it so)."""
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    return path


def test_the_chart_ships_no_rule_by_default():
    assert chart_rules() == []


def test_the_manifest_is_the_chart_rule_with_its_defaults():
    # Release `retrain-operator` in retrain-system, without the labels only Helm sets.
    assert manifest_rule() == without_chart_labels(chart_rule()), (
        "render it again: helm template retrain-operator helm/retrain-operator -n retrain-system "
        "--set prometheusRule.enabled=true -s templates/prometheusrule.yaml, less the chart's labels")
    assert "retrain-operator-metrics" in manifest_rule()["spec"]["groups"][0]["rules"][0]["expr"]
    assert set(rules(manifest_rule())) == ALERTS


@pytest.mark.parametrize("source", ["chart", "manifest"])
def test_promtool_checks_the_rules_and_every_alert_fires_and_stays_quiet_as_its_tests_say(source: str,
                                                                                         tmp_path: Path):
    rule = chart_rule() if source == "chart" else manifest_rule()
    write_rules(rule, tmp_path)
    checked = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert f"SUCCESS: {len(ALERTS)} rules found" in checked, checked
    shutil.copy(PROMTOOL_TESTS, tmp_path / PROMTOOL_TESTS.name)
    tested = promtool("test", "rules", PROMTOOL_TESTS.name, cwd=tmp_path)
    assert "SUCCESS" in tested, tested


def test_every_alert_has_a_test_where_it_fires_and_one_where_it_does_not():
    cases = [case for test in yaml.safe_load(PROMTOOL_TESTS.read_text())["tests"]
             for case in test["alert_rule_test"]]
    fired = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert fired == ALERTS and quiet == ALERTS


def test_the_rules_read_only_metrics_the_operator_exports():
    known = operator_series().keys() | {"up"}
    for name, rule in rules(chart_rule()).items():
        used = set(re.findall(r"\b(retrain_[a-z_]+|up)\b", rule["expr"]))
        assert used and used <= known, (name, used - known)


def test_every_alert_is_documented_with_its_runbook_anchor():
    text = DOCS.read_text()
    for name, rule in rules(chart_rule()).items():
        assert f"\n### {name}\n" in text, f"docs/observability.md has no section for {name}"
        assert rule["annotations"]["runbook_url"].endswith(f"docs/observability.md#{name.lower()}")


def test_values_set_thresholds_labels_severities_and_turn_alerts_off(tmp_path: Path):
    values: dict[str, Any] = {
        "namespace": "monitoring", "labels": {"release": "kube-prometheus-stack"},
        "alertLabels": {"team": "ml-platform"}, "operatorJob": "retrain", "runbookURL": "https://wiki/retrain",
        "alerts": {"runFailed": {"window": "30m", "severity": "page"}, "rolloutStuck": {"afterSeconds": 3600},
                   "rolloutPaused": {"enabled": False}, "driftNotRetrained": {"afterSeconds": 600},
                   "reconcileErrors": {"window": "20m", "for": "1h"}, "operatorDown": {"for": "1m"}}}
    rule = chart_rule(values)
    assert rule["metadata"]["namespace"] == "monitoring"
    assert without_chart_labels(rule)["metadata"]["labels"] == {"app.kubernetes.io/name": "retrain-operator",
                                                                "release": "kube-prometheus-stack"}
    assert rule["metadata"]["name"] == "retrain-operator-retrain-system"  # outside the release's namespace
    found = rules(rule)
    assert set(found) == ALERTS - {"RetrainRolloutPaused"}
    assert "[30m]" in found["RetrainRunFailed"]["expr"] and found["RetrainRunFailed"]["labels"] == {
        "severity": "page", "team": "ml-platform"}
    assert "> 3600\n" in found["RetrainRolloutStuck"]["expr"]
    assert found["RetrainDriftNotRetrained"]["expr"].endswith("> 600")
    assert "[20m]" in found["RetrainReconcileErrors"]["expr"] and found["RetrainReconcileErrors"]["for"] == "1h"
    assert found["RetrainOperatorDown"]["expr"] == 'up{job="retrain"} == 0'
    assert found["RetrainOperatorDown"]["for"] == "1m"
    assert found["RetrainOperatorAbsent"]["expr"] == 'absent(up{job="retrain"})'
    assert found["RetrainOperatorAbsent"]["annotations"]["runbook_url"] == "https://wiki/retrain#retrainoperatorabsent"
    write_rules(rule, tmp_path)
    assert f"SUCCESS: {len(ALERTS) - 1} rules found" in promtool("check", "rules", "rules.yaml", cwd=tmp_path)


@pytest.mark.parametrize("values", [
    {"operatorJob": 'a"b'}, {"alerts": {"runFailed": {"window": "an hour"}}},
    {"alerts": {"rolloutStuck": {"afterSeconds": 0}}}, {"alerts": {"nosuch": {}}},
], ids=["quote-in-job", "bad-duration", "zero-seconds", "unknown-alert"])
def test_values_the_rules_cannot_use_are_refused(values: dict):
    with pytest.raises(helm_python.HelmError):
        chart_rule(values)
