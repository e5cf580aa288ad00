"""Metric names follow Prometheus' conventions, and docs/observability.md lists every one of them.

Checked over what is really registered (the operator's metrics module, a model server's registry) and
exposed (the text format Prometheus scrapes), so a new metric cannot slip in unnamed or undocumented.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase

from retrain_operator.adapters import metrics as operator_metrics
from retrain_operator.core.decision.outcomes import DriftChecked, RolloutEnded, RunFinished, RunSkipped, RunStarted
from retrain_trainer.serving.metrics import ServingMetrics

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs/observability.md"
ROW = re.compile(r"^\| `(retrain_[a-z0-9_]+)` \| (\w+) \| ([^|]*) \| ([^|]+) \|$", re.MULTILINE)
UNIT_WORDS = {"duration": "_seconds", "latency": "_seconds", "timestamp": "_timestamp_seconds", "bytes": "_bytes",
              "size": "_bytes"}
FOREIGN_UNITS = ("_percent", "_milliseconds", "_ms", "_minutes", "_hours", "_days", "_kilobytes", "_megabytes",
                 "_kb", "_mb")


def registered() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Metric name as queried (counters with `_total`) -> (type, label names), operator and model server."""
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    collectors = [c for c in vars(operator_metrics).values() if isinstance(c, MetricWrapperBase)]
    served = ServingMetrics("v1", policy="churn")
    collectors += [c for c in served.registry._collector_to_names if isinstance(c, MetricWrapperBase)]
    for collector in collectors:
        kind = collector._type
        name = collector._name + ("_total" if kind == "counter" else "")
        found[name] = (kind, tuple(collector._labelnames))
    return found


def exposition() -> str:
    """Both registries as Prometheus scrapes them, after a story that sets every series."""
    labels = {"namespace": "ml", "policy": "conventions"}
    operator_metrics.record(labels["namespace"], labels["policy"], {
        "phase": "RollingOut", "currentModel": {"version": "v2"},
        "activeRun": {"version": "v3", "trigger": {"type": "drift"}},
        "pendingDriftTrigger": {"checkId": "d2", "at": "2026-11-25T10:00:00Z"},
        "drift": {"checkId": "d2", "drift": True, "score": 1.0, "featureScores": {"spend": 1.0}},
        "rollout": {"version": "v2", "phase": "Paused", "weight": 100, "startedAt": "2026-11-25T09:00:00Z",
                    "pausedAt": "2026-11-25T09:30:00Z"}},
        [RunStarted("drift"), RunFinished("drift", "failed", 30.0), RunSkipped("drift"), DriftChecked("drift"),
         RolloutEnded("Aborted")])
    operator_metrics.reconciled(labels["namespace"], labels["policy"])
    operator_metrics.notifiers(labels["namespace"], labels["policy"], ["ops"])
    operator_metrics.notified(labels["namespace"], labels["policy"], "ops", "retried")
    operator_metrics.RECONCILE_ERRORS.labels(**labels).inc()
    served = ServingMetrics("v1", policy="churn")
    served.request(200, 0.01)
    served.predictions(["yes"], 1)
    served.captured.labels(version="v1").inc()
    own = CollectorRegistry()
    for collector in vars(operator_metrics).values():
        if isinstance(collector, MetricWrapperBase):
            own.register(collector)
    return generate_latest(own).decode() + generate_latest(served.registry).decode()


def documented() -> dict[str, tuple[str, set[str], str]]:
    """docs/observability.md's metric tables: name -> (type, labels, meaning)."""
    rows = ROW.findall(DOCS.read_text())
    table = {name: (kind, set(re.findall(r"`(\w+)`", labels)), meaning.strip())
             for name, kind, labels, meaning in rows}
    assert len(table) == len(rows), "a metric is listed twice"
    return table


def test_names_are_prefixed_snake_case_with_base_units_and_no_percent():
    for name, (kind, labels) in registered().items():
        assert re.fullmatch(r"retrain_[a-z][a-z0-9_]*[a-z0-9]", name), name
        assert not name.endswith(FOREIGN_UNITS) and "_percent" not in name, name
        for word, suffix in UNIT_WORDS.items():
            if word in name:
                assert name.endswith(suffix), f"{name}: a {word} ends in {suffix}"
        if kind == "histogram":
            assert name.endswith(("_seconds", "_bytes")), f"{name}: a histogram's name says its unit"
        assert "le" not in labels and "quantile" not in labels, name


def test_counters_and_only_counters_end_in_total_as_prometheus_scrapes_them():
    text = exposition()
    types = dict(re.findall(r"^# TYPE (\S+) (\w+)$", text, re.MULTILINE))
    ours = {name: kind for name, kind in types.items() if name.startswith("retrain_")}
    assert ours.keys() == registered().keys()  # and no `_created` series beside them
    for name, kind in ours.items():
        assert (kind == "counter") == name.endswith("_total"), (name, kind)


def test_every_ratio_lies_between_0_and_1_even_at_full_weight_and_full_drift():
    text = exposition()
    ratios = re.findall(r"^(retrain_\w+_ratio)\{[^}]*\} (\S+)$", text, re.MULTILINE)
    assert {name for name, _ in ratios} == {name for name in registered() if name.endswith("_ratio")}
    assert all(0.0 <= float(value) <= 1.0 for _, value in ratios), ratios
    assert ("retrain_canary_weight_ratio", "1.0") in ratios  # a paused canary at 100 %


@pytest.mark.parametrize("name", sorted(registered()))
def test_the_docs_list_the_metric_with_its_type_and_labels(name: str):
    table = documented()
    assert name in table, f"docs/observability.md does not list {name}"
    kind, labels, meaning = table[name]
    assert (kind, labels) == (registered()[name][0], set(registered()[name][1])), name
    if name.endswith("_ratio"):
        assert re.search("\\b0[\u2013-]1\\b", meaning), f"{name}: say that it lies in 0-1"
    if name.endswith("_timestamp_seconds"):
        assert "Unix time" in meaning, name


def test_the_docs_list_no_metric_that_does_not_exist():
    assert documented().keys() - registered().keys() == set()
