"""The operator's Prometheus metrics, from each decision's typed outcomes and the status it wrote.

Counters count the outcomes the decision returns with its Events (a run started, finished,
skipped; a drift check; a rollout's end), so every counted run has an Event a person can read.
Gauges are read off the status the decision wrote, so they show what `kubectl get` shows.

Names follow Prometheus' conventions (tests/unit/test_metric_conventions.py holds them to it, and
docs/observability.md lists each): counters end in `_total`, ratios in `_ratio` (0-1), points in
time in `_timestamp_seconds` (Unix time); a series that stands for something under way (a rollout,
drift waiting for a run) exists only while it is. Outcome counters start at 0 as soon as a policy
could move them (a run, drift check or rollout under way; a finished reconcile): `increase()`
cannot see a series' first sample, so a first failure counted on a new series would never alert.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

import prometheus_client
from prometheus_client import Counter, Gauge, Histogram

from ..core import rollout
from ..core.decision.outcomes import DriftChecked, Outcome, RolloutEnded, RunFinished, RunSkipped, RunStarted
from ..core.runs import version_index
from ..core.timeutil import from_rfc3339

# No `_created` series next to each counter and histogram: one more series per child, read by no
# dashboard or alert (the model server does the same, serving/metrics.py).
prometheus_client.disable_created_metrics()

RUNS_STARTED = Counter(
    "retrain_runs_started_total", "Training runs started", ["namespace", "policy", "trigger"])
RUNS_FINISHED = Counter(
    "retrain_runs_finished_total", "Training runs finished, by trigger and outcome (succeeded, failed, rejected)",
    ["namespace", "policy", "trigger", "outcome"])
RUNS_SKIPPED = Counter(
    "retrain_runs_skipped_total", "Triggers that did not start a run (guards)", ["namespace", "policy"])
TRAINING_DURATION = Histogram(
    "retrain_training_duration_seconds", "Wall time of finished training runs", ["namespace", "policy"],
    buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400))
RECONCILES = Counter(
    "retrain_reconciles_total", "Reconciles that finished (those that raised count in retrain_reconcile_errors_total)",
    ["namespace", "policy"])
RECONCILE_ERRORS = Counter(
    "retrain_reconcile_errors_total", "Reconciles that raised", ["namespace", "policy"])
CURRENT_VERSION = Gauge(
    "retrain_current_model_version", "Index of the current model version (v3 -> 3)", ["namespace", "policy"])
PHASE = Gauge(
    "retrain_policy_phase", "1 for the policy's current phase, 0 for the others", ["namespace", "policy", "phase"])
DRIFT_CHECKS = Counter(
    "retrain_drift_checks_total", "Drift checks finished, by result (drift, no_drift, insufficient_data, failed)",
    ["namespace", "policy", "result"])
DRIFT_SHARE = Gauge(
    "retrain_drift_share_ratio", "Share of features that drifted in the last drift check (0-1)",
    ["namespace", "policy"])
DRIFT_FEATURE_SCORE = Gauge(
    "retrain_drift_feature_score", "Per-feature drift score of the last drift check (KS D or Jensen-Shannon)",
    ["namespace", "policy", "feature"])
DRIFT_PENDING = Gauge(
    "retrain_drift_pending_timestamp_seconds",
    "When the drift that waits for a training run was found (Unix time); no series while none waits",
    ["namespace", "policy"])
CANARY_WEIGHT = Gauge(
    "retrain_canary_weight_ratio", "Share of traffic the canary gets now (0-1; 0 without a rollout)",
    ["namespace", "policy"])
ROLLOUT_STARTED = Gauge(
    "retrain_rollout_started_timestamp_seconds",
    "When the canary rollout under way started (Unix time); no series without one", ["namespace", "policy"])
ROLLOUT_PAUSED = Gauge(
    "retrain_rollout_paused_timestamp_seconds",
    "Since when the canary rollout under way is paused (Unix time); no series unless it is", ["namespace", "policy"])
ROLLOUTS = Counter(
    "retrain_rollouts_total", "Canary rollouts ended, by outcome (Succeeded, RolledBack, Aborted)",
    ["namespace", "policy", "outcome"])
NOTIFICATIONS = Counter(
    "retrain_notifications_total", "Webhook notifications by result: sent, failed (given up), retried (an attempt "
    "that will be tried again)", ["namespace", "policy", "notifier", "result"])

RUN_OUTCOMES = ("succeeded", "failed", "rejected")
DRIFT_RESULTS = ("drift", "no_drift", "insufficient_data", "failed")
ROLLOUT_OUTCOMES = (rollout.SUCCEEDED, rollout.ROLLED_BACK, rollout.ABORTED)
NOTIFY_RESULTS = ("sent", "failed", "retried")
PHASES = ("Pending", "Training", "RollingOut", "Ready", "Degraded", "Blocked", "Invalid", "Suspended")
# Features with a gauge, per policy: a feature that leaves the top of a later check loses its series.
_features: dict[tuple[str, str], set[str]] = {}


def record(namespace: str, policy: str, status: Mapping[str, Any], outcomes: Iterable[Outcome]) -> None:
    """Update every metric from one decision: counters from what it did, gauges from the status it wrote."""
    labels = {"namespace": namespace, "policy": policy}
    for outcome in outcomes:
        if isinstance(outcome, RunStarted):
            RUNS_STARTED.labels(trigger=outcome.trigger, **labels).inc()
            _finished_from_zero(labels, outcome.trigger)
        elif isinstance(outcome, RunFinished):
            RUNS_FINISHED.labels(trigger=outcome.trigger, outcome=outcome.outcome, **labels).inc()
            if outcome.seconds is not None:
                TRAINING_DURATION.labels(**labels).observe(outcome.seconds)
        elif isinstance(outcome, RunSkipped):
            RUNS_SKIPPED.labels(**labels).inc()
        elif isinstance(outcome, DriftChecked):
            DRIFT_CHECKS.labels(result=outcome.result, **labels).inc()
        elif isinstance(outcome, RolloutEnded):
            ROLLOUTS.labels(outcome=outcome.outcome, **labels).inc()
    running = ((status.get("activeRun") or {}).get("trigger") or {}).get("type")
    if running:  # also after a restart mid-run, when no RunStarted comes again
        _finished_from_zero(labels, str(running))
    if status.get("activeDriftCheck"):
        for result in DRIFT_RESULTS:
            DRIFT_CHECKS.labels(result=result, **labels)
    current = (status.get("currentModel") or {}).get("version")
    if current:
        CURRENT_VERSION.labels(**labels).set(version_index(current))
    for phase in PHASES:
        PHASE.labels(phase=phase, **labels).set(1 if status.get("phase") == phase else 0)
    _record_drift(labels, status.get("drift") or {})
    _since(DRIFT_PENDING, labels, (status.get("pendingDriftTrigger") or {}).get("at"))
    rolling = status.get("rollout") or {}
    active = rollout.is_active(rolling)
    if active:
        for ended in ROLLOUT_OUTCOMES:
            ROLLOUTS.labels(outcome=ended, **labels)
    CANARY_WEIGHT.labels(**labels).set(int(rolling.get("weight") or 0) / 100 if active else 0)
    _since(ROLLOUT_STARTED, labels, rolling.get("startedAt") if active else None)
    _since(ROLLOUT_PAUSED, labels, rolling.get("pausedAt") if active and rolling.get("phase") == rollout.PAUSED
           else None)


def reconciled(namespace: str, policy: str) -> None:
    """A reconcile finished; its error counter exists from now on (at 0), so the first error shows."""
    RECONCILES.labels(namespace=namespace, policy=policy).inc()
    RECONCILE_ERRORS.labels(namespace=namespace, policy=policy)


def notifiers(namespace: str, policy: str, names: Iterable[str]) -> None:
    """The policy's notifiers' counters exist from now on (at 0), so the first failure shows."""
    for name in names:
        for result in NOTIFY_RESULTS:
            NOTIFICATIONS.labels(namespace=namespace, policy=policy, notifier=name, result=result)


def notified(namespace: str, policy: str, notifier: str, result: str) -> None:
    NOTIFICATIONS.labels(namespace=namespace, policy=policy, notifier=notifier, result=result).inc()


def _finished_from_zero(labels: dict[str, str], trigger: str) -> None:
    for outcome in RUN_OUTCOMES:
        RUNS_FINISHED.labels(trigger=trigger, outcome=outcome, **labels)


def _since(gauge: Gauge, labels: dict[str, str], at: str | None) -> None:
    """A timestamp gauge: set while `at` is (a parseable time), no series otherwise."""
    try:
        when = from_rfc3339(at)
    except ValueError:  # not a time: nothing to measure from
        when = None
    if when is None:
        with contextlib.suppress(KeyError):
            gauge.remove(labels["namespace"], labels["policy"])
    else:
        gauge.labels(**labels).set(when.timestamp())


def _record_drift(labels: dict[str, str], drift: Mapping[str, Any]) -> None:
    if drift.get("drift") is None:  # no check yet, or the last one failed or had too few rows: keep the last scores
        return
    DRIFT_SHARE.labels(**labels).set(float(drift.get("score") or 0.0))
    scores = {str(name): float(score) for name, score in (drift.get("featureScores") or {}).items()}
    key = (labels["namespace"], labels["policy"])
    for gone in _features.get(key, set()) - set(scores):
        DRIFT_FEATURE_SCORE.remove(labels["namespace"], labels["policy"], gone)
    for name, score in scores.items():
        DRIFT_FEATURE_SCORE.labels(feature=name, **labels).set(score)
    _features[key] = set(scores)


def forget(namespace: str, policy: str) -> None:
    """A deleted policy's gauges go with it; its counters stay until the process restarts."""
    series = [(gauge, (namespace, policy)) for gauge in (CURRENT_VERSION, DRIFT_SHARE, DRIFT_PENDING, CANARY_WEIGHT,
                                                          ROLLOUT_STARTED, ROLLOUT_PAUSED)]
    series += [(PHASE, (namespace, policy, phase)) for phase in PHASES]
    series += [(DRIFT_FEATURE_SCORE, (namespace, policy, feature))
               for feature in _features.pop((namespace, policy), set())]
    for gauge, labels in series:
        with contextlib.suppress(KeyError):  # never set for this policy
            gauge.remove(*labels)
