"""Prometheus metrics: counters from a decision's typed outcomes, gauges from the status it writes."""

from __future__ import annotations

from prometheus_client import REGISTRY

from retrain_operator.adapters import metrics
from retrain_operator.core.decide import feature_scores
from retrain_operator.core.decision.outcomes import DriftChecked, RolloutEnded, RunFinished, RunStarted

LABELS = {"namespace": "ml", "policy": "churn"}


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def count(name: str, **labels: str) -> float:
    return value(name, **labels) or 0.0


def test_started_and_finished_runs_are_counted_by_trigger_and_outcome_rejections_included():
    before_started = count("retrain_runs_started_total", trigger="manual", **LABELS)
    before_failed = count("retrain_runs_finished_total", trigger="schedule", outcome="failed", **LABELS)
    before_rejected = count("retrain_runs_finished_total", trigger="drift", outcome="rejected", **LABELS)
    before_seconds = count("retrain_training_duration_seconds_sum", **LABELS)
    metrics.record("ml", "churn", {"activeRun": {"version": "v1"}}, [RunStarted("manual")])
    metrics.record("ml", "churn", {"currentModel": {"version": "v3"}, "phase": "Degraded"},
                   [RunFinished("schedule", "failed", 90.0)])
    metrics.record("ml", "churn", {"phase": "Ready"}, [RunFinished("drift", "rejected")])
    assert count("retrain_runs_started_total", trigger="manual", **LABELS) == before_started + 1
    assert count("retrain_runs_finished_total", trigger="schedule", outcome="failed", **LABELS) == before_failed + 1
    assert count("retrain_runs_finished_total", trigger="drift", outcome="rejected", **LABELS) == before_rejected + 1
    assert value("retrain_current_model_version", **LABELS) == 3
    assert count("retrain_training_duration_seconds_sum", **LABELS) == before_seconds + 90  # unknown: not observed
    assert value("retrain_policy_phase", phase="Ready", **LABELS) == 1
    assert value("retrain_policy_phase", phase="Degraded", **LABELS) == 0


def test_drift_scores_per_feature_follow_the_last_check_and_stale_features_disappear():
    labels = {"namespace": "ml", "policy": "drifty"}
    before = count("retrain_drift_checks_total", result="drift", **labels)
    first = {"drift": {"checkId": "d1", "drift": True, "score": 0.5,
                       "featureScores": {"spend": 0.31, "tenure": 0.12}}}
    metrics.record("ml", "drifty", first, [DriftChecked("drift")])
    assert count("retrain_drift_checks_total", result="drift", **labels) == before + 1
    assert value("retrain_drift_share", **labels) == 0.5
    assert value("retrain_drift_feature_score", feature="spend", **labels) == 0.31
    second = {"drift": {"checkId": "d2", "drift": False, "score": 0.0, "featureScores": {"spend": 0.01}}}
    metrics.record("ml", "drifty", second, [DriftChecked("no_drift")])
    assert value("retrain_drift_feature_score", feature="spend", **labels) == 0.01
    assert value("retrain_drift_feature_score", feature="tenure", **labels) is None
    failed = {"drift": {"checkId": "d3", "error": {"reason": "DataError"}}}
    metrics.record("ml", "drifty", failed, [DriftChecked("failed")])
    assert count("retrain_drift_checks_total", result="failed", **labels) == 1
    assert value("retrain_drift_feature_score", feature="spend", **labels) == 0.01  # the last good check
    metrics.forget("ml", "drifty")
    assert value("retrain_drift_feature_score", feature="spend", **labels) is None
    assert value("retrain_drift_share", **labels) is None


def test_canary_weight_follows_status_and_rollouts_are_counted_from_their_outcome_only():
    labels = {"namespace": "ml", "policy": "rolling"}
    at_30 = {"rollout": {"version": "v2", "phase": "Progressing", "weight": 30}}
    metrics.record("ml", "rolling", at_30, [])
    assert value("retrain_canary_weight_percent", **labels) == 30
    ended = {"rollout": {"version": "v2", "phase": "RolledBack", "weight": 30}}
    metrics.record("ml", "rolling", ended, [RolloutEnded("RolledBack")])
    metrics.record("ml", "rolling", ended, [])  # later reconciles of the same ended rollout
    assert count("retrain_rollouts_total", outcome="RolledBack", **labels) == 1
    assert value("retrain_canary_weight_percent", **labels) == 0  # an ended rollout has no canary traffic


def test_feature_scores_keep_the_highest_and_stay_small():
    features = {f"f{i}": {"score": i / 1000} for i in range(80)}
    scores = feature_scores({**features, "broken": "not a dict"})
    assert len(scores) == 50 and next(iter(scores)) == "f79" and "f0" not in scores
