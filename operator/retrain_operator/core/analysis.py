"""Canary analysis: is the canary as good as stable, judged in the same window?

The shell scrapes the model servers' cumulative counters (`snapshot_from_metrics`) for the
stable and the canary pods at each interval; the window is the difference between two
consecutive snapshots, so both versions are judged on the same minutes of traffic, not against
fixed numbers alone. Too little canary traffic is *inconclusive*, never a pass.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import mpmath
from prometheus_client.parser import text_string_to_metric_families

from retrain_contract.api.spec import AnalysisSpec

PASSED, FAILED, INCONCLUSIVE = "Passed", "Failed", "Inconclusive"
MIN_LATENCY_TO_COMPARE = 0.005  # below 5 ms, a ratio of two latencies is noise
SHIFT_PVALUE = 0.001
TAIL_REQUESTS = 10

Snapshot = dict[str, Any]  # {"requests": {code: n}, "buckets": {le: n}, "classes": {label: n}}


def snapshot_from_metrics(texts: list[str], version: str) -> Snapshot:
    """Counters of one version summed over its pods' /metrics pages (Prometheus text format)."""
    requests: dict[str, float] = {}
    buckets: dict[str, float] = {}
    classes: dict[str, float] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.labels.get("version") != version:
                    continue
                if sample.name == "retrain_serving_requests_total":
                    code = sample.labels["code"]
                    requests[code] = requests.get(code, 0.0) + sample.value
                elif sample.name == "retrain_serving_request_duration_seconds_bucket":
                    bound = sample.labels["le"]
                    buckets[bound] = buckets.get(bound, 0.0) + sample.value
                elif sample.name == "retrain_serving_predictions_total":
                    label = sample.labels["class"]
                    classes[label] = classes.get(label, 0.0) + sample.value
    return {"requests": requests, "buckets": buckets, "classes": classes}


def _delta(now: dict[str, float], before: dict[str, float]) -> dict[str, float] | None:
    """now - before per key; None when a counter went down (a pod restarted: the window is unusable)."""
    result = {}
    for key in set(now) | set(before):
        change = now.get(key, 0.0) - before.get(key, 0.0)
        if change < 0:
            return None
        result[key] = change
    return result


def _window(now: Snapshot, before: Snapshot | None) -> Snapshot | None:
    if before is None:
        return None
    parts = {part: _delta(now.get(part) or {}, before.get(part) or {}) for part in ("requests", "buckets", "classes")}
    if any(value is None for value in parts.values()):
        return None
    return parts


def _quantile(buckets: dict[str, float], q: float) -> float | None:
    """histogram_quantile(q): linear inside the bucket that holds the q-th quantile."""
    bounds = sorted(((math.inf if le == "+Inf" else float(le)), count) for le, count in buckets.items())
    if not bounds or bounds[-1][1] <= 0:
        return None
    target = q * bounds[-1][1]
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in bounds:
        if count >= target:
            if math.isinf(bound):
                return previous_bound
            inside = count - previous_count
            share = (target - previous_count) / inside if inside else 1.0
            return previous_bound + (bound - previous_bound) * share
        previous_bound, previous_count = bound, count
    return previous_bound


def _js_distance(left: dict[str, float], right: dict[str, float]) -> float:
    keys = sorted(set(left) | set(right))
    p = [left.get(k, 0.0) for k in keys]
    q = [right.get(k, 0.0) for k in keys]
    total_p, total_q = sum(p), sum(q)
    if not total_p or not total_q:
        return 0.0
    p = [v / total_p for v in p]
    q = [v / total_q for v in q]
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]

    def kl(a: list[float], b: list[float]) -> float:
        return sum(x * math.log2(x / y) for x, y in zip(a, b, strict=True) if x > 0)

    return math.sqrt(max(0.0, (kl(p, m) + kl(q, m)) / 2))


def render_query(template: str, stable: str, canary: str, namespace: str) -> str:
    """A Prometheus query of the policy with its placeholders filled: {{version}} (the stable
    version), {{canaryVersion}} and {{namespace}}. Values are substituted as they are: versions
    (`v12`) and namespaces (DNS labels) need no quoting inside PromQL label matchers."""
    return (template.replace("{{version}}", stable).replace("{{canaryVersion}}", canary)
            .replace("{{namespace}}", namespace))


def same_classes_pvalue(left: dict[str, float], right: dict[str, float]) -> float:
    """p-value of 'both versions predict the classes in the same proportions': Pearson's chi-squared
    test of the 2 x k table (no continuity correction), its tail from mpmath's regularized
    incomplete gamma function, so that the operator needs no SciPy."""
    keys = sorted(k for k in set(left) | set(right) if left.get(k, 0) + right.get(k, 0) > 0)
    if len(keys) < 2:
        return 1.0
    table = [[float(left.get(k, 0.0)) for k in keys], [float(right.get(k, 0.0)) for k in keys]]
    rows = [sum(row) for row in table]
    if min(rows) <= 0:
        return 1.0
    columns = [table[0][i] + table[1][i] for i in range(len(keys))]
    total = sum(rows)
    statistic = sum((table[r][c] - rows[r] * columns[c] / total) ** 2 / (rows[r] * columns[c] / total)
                    for r in range(2) for c in range(len(keys)))
    freedom = len(keys) - 1
    return float(mpmath.gammainc(freedom / 2, statistic / 2, mpmath.inf, regularized=True))


@dataclass(frozen=True)
class Measurement:
    name: str
    result: str
    message: str


@dataclass(frozen=True)
class AnalysisOutcome:
    result: str  # PASSED | FAILED | INCONCLUSIVE
    measurements: tuple[Measurement, ...]

    def summary(self) -> str:
        shown = [m for m in self.measurements if m.result != PASSED] or list(self.measurements)
        return "; ".join(m.message for m in shown)

    def as_status(self) -> dict[str, Any]:
        return {"result": self.result, "measurements": [asdict(m) for m in self.measurements]}


def combine(measurements: list[Measurement]) -> AnalysisOutcome:
    results = {m.result for m in measurements}
    result = FAILED if FAILED in results else INCONCLUSIVE if INCONCLUSIVE in results or not measurements else PASSED
    return AnalysisOutcome(result, tuple(measurements))


def _errors(requests: dict[str, float]) -> tuple[float, float]:
    total = sum(requests.values())
    server_errors = sum(v for code, v in requests.items() if code.startswith("5"))
    return total, server_errors


def judge_window(spec: AnalysisSpec, stable_now: Snapshot, canary_now: Snapshot,
                 stable_before: Snapshot | None, canary_before: Snapshot | None) -> AnalysisOutcome:
    """The verdict on one window, canary against stable."""
    stable, canary = _window(stable_now, stable_before), _window(canary_now, canary_before)
    if stable is None or canary is None:
        return combine([Measurement("window", INCONCLUSIVE, "no earlier measurement to compare with "
                                                             "(first window, or a pod restarted)")])
    canary_total, canary_errors = _errors(canary["requests"])
    stable_total, stable_errors = _errors(stable["requests"])
    if canary_total < spec.min_requests:
        return combine([Measurement("traffic", INCONCLUSIVE, f"{canary_total:.0f} canary requests in the window, "
                                                              f"fewer than minRequests {spec.min_requests}")])
    measurements = []
    canary_rate = canary_errors / canary_total
    stable_rate = stable_errors / stable_total if stable_total else 0.0
    allowed = stable_rate + spec.max_error_rate_increase
    measurements.append(Measurement(
        "errorRate", FAILED if canary_rate > allowed + 1e-12 else PASSED,
        f"canary 5xx rate {canary_rate:.4f} vs stable {stable_rate:.4f} over {canary_total:.0f}/"
        f"{stable_total:.0f} requests (allowed {allowed:.4f})"))

    # p99 where the window holds enough requests to estimate it; with fewer, the highest quantile
    # that still has TAIL_REQUESTS requests above it (one slow request is not a slow version).
    q = min(0.99, max(0.5, 1 - TAIL_REQUESTS / max(canary_total, 1)))
    canary_q, stable_q = _quantile(canary["buckets"], q), _quantile(stable["buckets"], q)
    name = f"p{round(q * 100)}"
    if canary_q is None or stable_q is None or stable_total < spec.min_requests:
        measurements.append(Measurement("latency", INCONCLUSIVE, "too few requests to compare latency"))
    else:
        limit = max(stable_q * spec.max_latency_ratio, MIN_LATENCY_TO_COMPARE)
        measurements.append(Measurement(
            "latency", FAILED if canary_q > limit else PASSED,
            f"canary {name} {canary_q * 1000:.1f} ms vs stable {stable_q * 1000:.1f} ms "
            f"(limit {limit * 1000:.1f} ms)"))

    canary_classes, stable_classes = canary_now.get("classes") or {}, stable_now.get("classes") or {}
    if canary_classes and stable_classes:
        # Over everything each version predicted so far, not one window: a few dozen predictions
        # say little about a distribution, and judging every window anew would raise false alarms
        # with each look. Like the drift verdicts, a shift counts when it is large *and* significant.
        shift = _js_distance(canary_classes, stable_classes)
        pvalue = same_classes_pvalue(canary_classes, stable_classes)
        shifted = shift > spec.max_prediction_shift and pvalue < SHIFT_PVALUE
        measurements.append(Measurement(
            "predictions", FAILED if shifted else PASSED,
            f"predicted classes differ by Jensen-Shannon {shift:.3f} (limit {spec.max_prediction_shift}, "
            f"p {pvalue:.3g})"))
    return combine(measurements)


_CONDITION = re.compile(r"^\s*result\s*(<=|>=|==|!=|<|>)\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*$")


def query_succeeds(condition: str, value: float | None) -> bool | None:
    """`result < 0.05` and friends, parsed (never eval'd); None when there is no value to judge."""
    match = _CONDITION.match(condition)
    if match is None:
        raise ValueError(f"not a success condition: {condition!r}")
    if value is None or math.isnan(value):
        return None
    comparison, bound = match.group(1), float(match.group(2))
    return {"<": value < bound, "<=": value <= bound, ">": value > bound, ">=": value >= bound,
            "==": value == bound, "!=": value != bound}[comparison]
