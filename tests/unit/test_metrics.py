"""Prometheus metrics are derived from the Events a decision emits."""

from __future__ import annotations

from prometheus_client import REGISTRY

from retrain_operator.core.decide import Event, Plan
from retrain_operator.reconcile import _record_metrics

from .policies import policy


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_started_and_finished_runs_are_counted_by_trigger_and_outcome():
    state = policy()
    labels = {"namespace": "ml", "policy": "churn"}
    before_started = value("retrain_runs_started_total", trigger="manual", **labels)
    before_failed = value("retrain_runs_finished_total", outcome="failed", **labels)
    started = Plan(status={"activeRun": {"version": "v1", "trigger": {"type": "manual"}}},
                   events=(Event("Normal", "RunStarted", "v1 started"),))
    _record_metrics(state, started)
    failed = Plan(status={"lastRun": {"startedAt": "2026-11-24T10:00:00Z", "finishedAt": "2026-11-24T10:01:30Z"},
                          "currentModel": {"version": "v3"}},
                  events=(Event("Warning", "RunFailed", "v4 failed"),))
    _record_metrics(state, failed)
    assert value("retrain_runs_started_total", trigger="manual", **labels) == before_started + 1
    assert value("retrain_runs_finished_total", outcome="failed", **labels) == before_failed + 1
    assert value("retrain_current_model_version", **labels) == 3
    assert value("retrain_training_duration_seconds_sum", **labels) >= 90
