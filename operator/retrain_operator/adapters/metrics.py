"""The operator's Prometheus metrics, derived from each decision's Events and status.

Counting from Events (not from scattered calls) keeps metrics and `kubectl describe` in
agreement: every run that a metric counts has an Event a person can read. Gauges are read off
the status the decision wrote, so they show what `kubectl get` shows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from prometheus_client import Counter, Gauge, Histogram

from ..core.rollout import FINAL as ROLLOUT_ENDS
from ..core.runs import version_index
from ..core.timeutil import from_rfc3339

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
RECONCILE_ERRORS = Counter(
    "retrain_reconcile_errors_total", "Reconciles that raised", ["namespace", "policy"])
CURRENT_VERSION = Gauge(
    "retrain_current_model_version", "Index of the current model version (v3 -> 3)", ["namespace", "policy"])
PHASE = Gauge(
    "retrain_policy_phase", "1 for the policy's current phase, 0 for the others", ["namespace", "policy", "phase"])
DRIFT_CHECKS = Counter(
    "retrain_drift_checks_total", "Drift checks finished, by result (drift, no_drift, failed)",
    ["namespace", "policy", "result"])
DRIFT_SHARE = Gauge(
    "retrain_drift_share", "Share of features that drifted in the last drift check", ["namespace", "policy"])
DRIFT_FEATURE_SCORE = Gauge(
    "retrain_drift_feature_score", "Per-feature drift score of the last drift check (KS D or Jensen-Shannon)",
    ["namespace", "policy", "feature"])
CANARY_WEIGHT = Gauge(
    "retrain_canary_weight_percent", "Share of traffic the canary gets now (0 without a rollout)",
    ["namespace", "policy"])
ROLLOUTS = Counter(
    "retrain_rollouts_total", "Canary rollouts ended, by outcome (Succeeded, RolledBack, Aborted)",
    ["namespace", "policy", "outcome"])

PHASES = ("Pending", "Training", "RollingOut", "Ready", "Degraded", "Blocked", "Invalid", "Suspended")
# The Event that ends a run, and the outcome it means when status.lastRun has no phase.
RUN_ENDS = {"RunSucceeded": "succeeded", "RunFailed": "failed", "GateFailed": "rejected",
            "GateInconclusive": "rejected"}
DRIFT_RESULTS = {"DriftDetected": "drift", "NoDrift": "no_drift", "DriftCheckFailed": "failed"}
# Features with a gauge, per policy: a feature that leaves the top of a later check loses its series.
_features: dict[tuple[str, str], set[str]] = {}


class EventLike(Protocol):
    type: str
    reason: str
    message: str


def record(namespace: str, policy: str, before: Mapping[str, Any], status: Mapping[str, Any],
           events: Iterable[EventLike]) -> None:
    """Update every metric from one decision: its Events, and the status before and after it."""
    labels = {"namespace": namespace, "policy": policy}
    for event in events:
        if event.reason == "RunStarted":
            trigger = ((status.get("activeRun") or {}).get("trigger") or {}).get("type", "unknown")
            RUNS_STARTED.labels(trigger=trigger, **labels).inc()
        elif event.reason in RUN_ENDS:
            last = status.get("lastRun") or {}
            outcome = str(last.get("phase") or RUN_ENDS[event.reason]).lower()
            RUNS_FINISHED.labels(trigger=str(last.get("trigger") or "unknown"), outcome=outcome, **labels).inc()
            started, finished = from_rfc3339(last.get("startedAt")), from_rfc3339(last.get("finishedAt"))
            if started and finished:
                TRAINING_DURATION.labels(**labels).observe((finished - started).total_seconds())
        elif event.reason == "RunSkipped":
            RUNS_SKIPPED.labels(**labels).inc()
        elif event.reason in DRIFT_RESULTS:
            DRIFT_CHECKS.labels(result=DRIFT_RESULTS[event.reason], **labels).inc()
    current = (status.get("currentModel") or {}).get("version")
    if current:
        CURRENT_VERSION.labels(**labels).set(version_index(current))
    for phase in PHASES:
        PHASE.labels(phase=phase, **labels).set(1 if status.get("phase") == phase else 0)
    _record_drift(labels, status.get("drift") or {})
    _record_rollout(labels, before.get("rollout") or {}, status.get("rollout") or {})


def _record_drift(labels: dict[str, str], drift: Mapping[str, Any]) -> None:
    if drift.get("drift") is None:  # no check yet, or the last one failed: keep the last scores
        return
    DRIFT_SHARE.labels(**labels).set(float(drift.get("score") or 0.0))
    scores = {str(name): float(score) for name, score in (drift.get("featureScores") or {}).items()}
    key = (labels["namespace"], labels["policy"])
    for gone in _features.get(key, set()) - set(scores):
        DRIFT_FEATURE_SCORE.remove(labels["namespace"], labels["policy"], gone)
    for name, score in scores.items():
        DRIFT_FEATURE_SCORE.labels(feature=name, **labels).set(score)
    _features[key] = set(scores)


def _record_rollout(labels: dict[str, str], before: Mapping[str, Any], rolling: Mapping[str, Any]) -> None:
    phase = rolling.get("phase")
    CANARY_WEIGHT.labels(**labels).set(0 if not rolling or phase in ROLLOUT_ENDS else int(rolling.get("weight") or 0))
    ended_now = phase in ROLLOUT_ENDS and (before.get("version") != rolling.get("version")
                                            or before.get("phase") not in ROLLOUT_ENDS)
    if ended_now:
        ROLLOUTS.labels(outcome=phase, **labels).inc()


def forget(namespace: str, policy: str) -> None:
    """A deleted policy's gauges go with it; its counters stay until the process restarts."""
    series = [(gauge, (namespace, policy)) for gauge in (CURRENT_VERSION, DRIFT_SHARE, CANARY_WEIGHT)]
    series += [(PHASE, (namespace, policy, phase)) for phase in PHASES]
    series += [(DRIFT_FEATURE_SCORE, (namespace, policy, feature))
               for feature in _features.pop((namespace, policy), set())]
    for gauge, labels in series:
        with contextlib.suppress(KeyError):  # never set for this policy
            gauge.remove(*labels)
