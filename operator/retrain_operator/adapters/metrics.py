"""The operator's Prometheus metrics, derived from the Events a decision emits.

Counting from Events (not from scattered calls) keeps metrics and `kubectl describe` in
agreement: every run that a metric counts has an Event a person can read.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RUNS_STARTED = Counter(
    "retrain_runs_started_total", "Training runs started", ["namespace", "policy", "trigger"])
RUNS_FINISHED = Counter(
    "retrain_runs_finished_total", "Training runs finished", ["namespace", "policy", "outcome"])
RUNS_SKIPPED = Counter(
    "retrain_runs_skipped_total", "Triggers that did not start a run (guards)", ["namespace", "policy"])
TRAINING_DURATION = Histogram(
    "retrain_training_duration_seconds", "Wall time of finished training runs", ["namespace", "policy"],
    buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400))
RECONCILE_ERRORS = Counter(
    "retrain_reconcile_errors_total", "Reconciles that raised", ["namespace", "policy"])
CURRENT_VERSION = Gauge(
    "retrain_current_model_version", "Index of the current model version (v3 -> 3)", ["namespace", "policy"])
