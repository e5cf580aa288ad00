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
    assert value("retrain_drift_share_ratio", **labels) == 0.5
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
    assert value("retrain_drift_share_ratio", **labels) is None


def test_canary_weight_follows_status_and_rollouts_are_counted_from_their_outcome_only():
    labels = {"namespace": "ml", "policy": "rolling"}
    at_30 = {"rollout": {"version": "v2", "phase": "Progressing", "weight": 30}}
    metrics.record("ml", "rolling", at_30, [])
    assert value("retrain_canary_weight_ratio", **labels) == 0.3
    ended = {"rollout": {"version": "v2", "phase": "RolledBack", "weight": 30}}
    metrics.record("ml", "rolling", ended, [RolloutEnded("RolledBack")])
    metrics.record("ml", "rolling", ended, [])  # later reconciles of the same ended rollout
    assert count("retrain_rollouts_total", outcome="RolledBack", **labels) == 1
    assert value("retrain_canary_weight_ratio", **labels) == 0  # an ended rollout has no canary traffic


def test_feature_scores_keep_the_highest_and_stay_small():
    features = {f"f{i}": {"score": i / 1000} for i in range(80)}
    scores = feature_scores({**features, "broken": "not a dict"})
    assert len(scores) == 50 and next(iter(scores)) == "f79" and "f0" not in scores


def test_rollout_timestamps_exist_while_the_rollout_runs_or_waits():
    labels = {"namespace": "ml", "policy": "stuck"}
    running = {"rollout": {"version": "v2", "phase": "Progressing", "weight": 50, "startedAt": "2026-11-25T10:00:00Z"}}
    metrics.record("ml", "stuck", running, [])
    assert value("retrain_rollout_started_timestamp_seconds", **labels) == 1795600800
    assert value("retrain_rollout_paused_timestamp_seconds", **labels) is None
    paused = {"rollout": {**running["rollout"], "phase": "Paused", "pausedAt": "2026-11-25T11:00:00Z"}}
    metrics.record("ml", "stuck", paused, [])
    assert value("retrain_rollout_paused_timestamp_seconds", **labels) == 1795600800 + 3600
    assert value("retrain_canary_weight_ratio", **labels) == 0.5
    ended = {"rollout": {**paused["rollout"], "phase": "Aborted", "weight": 0}}
    metrics.record("ml", "stuck", ended, [RolloutEnded("Aborted")])
    assert value("retrain_rollout_started_timestamp_seconds", **labels) is None
    assert value("retrain_rollout_paused_timestamp_seconds", **labels) is None


def test_drift_waiting_for_a_run_has_a_timestamp_until_the_run_starts():
    labels = {"namespace": "ml", "policy": "waiting"}
    pending = {"pendingDriftTrigger": {"checkId": "d4", "reason": "drift", "at": "2026-11-25T10:00:00Z"}}
    metrics.record("ml", "waiting", pending, [DriftChecked("drift")])
    assert value("retrain_drift_pending_timestamp_seconds", **labels) == 1795600800
    running = {"activeRun": {"version": "v2", "trigger": {"type": "drift"}}}
    metrics.record("ml", "waiting", running, [RunStarted("drift")])
    assert value("retrain_drift_pending_timestamp_seconds", **labels) is None
    metrics.record("ml", "waiting", pending, [])
    metrics.forget("ml", "waiting")
    assert value("retrain_drift_pending_timestamp_seconds", **labels) is None


def test_the_counters_alerts_watch_start_at_zero_before_their_first_event():
    """`increase()` cannot see a series' first sample: a failure counted on a new series would never alert."""
    labels = {"namespace": "ml", "policy": "fresh"}
    metrics.record("ml", "fresh", {"activeRun": {"version": "v1", "trigger": {"type": "schedule"}}}, [])
    for outcome in ("succeeded", "failed", "rejected"):
        assert value("retrain_runs_finished_total", trigger="schedule", outcome=outcome, **labels) == 0
    metrics.record("ml", "fresh", {}, [RunStarted("manual")])
    assert value("retrain_runs_finished_total", trigger="manual", outcome="failed", **labels) == 0
    checking = {"activeDriftCheck": {"checkId": "d1"},
                "rollout": {"version": "v2", "phase": "Progressing", "weight": 0}}
    metrics.record("ml", "fresh", checking, [])
    assert [value("retrain_drift_checks_total", result=r, **labels) for r in ("drift", "no_drift", "failed")] == [0] * 3
    assert [value("retrain_rollouts_total", outcome=o, **labels) for o in ("Succeeded", "RolledBack", "Aborted")] == \
        [0] * 3
    assert value("retrain_reconcile_errors_total", **labels) is None
    metrics.reconciled("ml", "fresh")
    assert value("retrain_reconciles_total", **labels) == 1
    assert value("retrain_reconcile_errors_total", **labels) == 0
