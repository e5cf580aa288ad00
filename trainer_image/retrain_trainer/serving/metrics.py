"""Prometheus metrics of the model server, labelled with the model version they describe.

The canary analysis compares stable and canary pods on these: errors, latency and the
distribution of predicted classes, per version. Named as exposed (counters with `_total`);
docs/observability.md lists them.
"""

from __future__ import annotations

import collections
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

# No `<counter>_created` series: one more series per version and code that nothing reads.
disable_created_metrics()
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServingMetrics:
    def __init__(self, version: str, policy: str = "", model_format: str = "sklearn-joblib", backend: str = "sklearn"):
        self.registry = CollectorRegistry()
        self.version = version
        self.requests = Counter("retrain_serving_requests_total", "Prediction requests by HTTP status code.",
                                ["version", "code"], registry=self.registry)
        self.latency = Histogram("retrain_serving_request_duration_seconds", "Time to answer a prediction request.",
                                 ["version"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.rows = Counter("retrain_serving_rows_total", "Rows predicted.", ["version"], registry=self.registry)
        self.predicted = Counter("retrain_serving_predictions_total", "Predicted rows per class (classification).",
                                 ["version", "class"], registry=self.registry)
        self.captured = Counter("retrain_serving_captured_rows_total", "Rows written to the capture prefix.",
                                ["version"], registry=self.registry)
        info = Gauge("retrain_serving_model_info",
                     "The model version served, its format and what computes it (always 1).",
                     ["version", "policy", "format", "backend"], registry=self.registry)
        info.labels(version=version, policy=policy, format=model_format, backend=backend).set(1)
        # The series every answered request touches, looked up once: the hot path only increments.
        self._ok = self.requests.labels(version=version, code="200")
        self._latency = self.latency.labels(version=version)
        self._rows = self.rows.labels(version=version)
        self._classes: dict[str, Any] = {}

    def request(self, code: int, seconds: float) -> None:
        (self._ok if code == 200 else self.requests.labels(version=self.version, code=str(code))).inc()
        self._latency.observe(seconds)

    def predictions(self, labels: list[str] | None, rows: int) -> None:
        self._rows.inc(rows)
        if not labels:
            return
        for label, count in (collections.Counter(labels).items() if len(labels) > 1 else ((labels[0], 1),)):
            child = self._classes.get(label)
            if child is None:
                child = self._classes[label] = self.predicted.labels(version=self.version, **{"class": label})
            child.inc(count)
