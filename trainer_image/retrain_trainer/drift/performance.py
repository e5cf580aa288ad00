"""Performance drift: does the model score worse on recent labelled rows than on its held-out set, beyond chance?

A fixed drop (`maxDrop`) on two point estimates cannot tell noise from change: on 300 rows an
accuracy of 0.90 reads anywhere from 0.86 to 0.93, so a drop threshold wide enough to ignore that
misses real drops, and one narrow enough to catch them fires on noise. Both estimates have a
known sampling error, the held-out one through the row count recorded at training time, so the
check bounds the drop itself:

- accuracy (a proportion of rows): Newcombe's hybrid score interval for the difference of two
  proportions, from the Wilson interval of each side;
- F1 (macro or weighted): a bootstrap of the rows of each side, the held-out rows rebuilt from the
  confusion matrix in metrics.json;
- rmse, mae, r2: a bootstrap of the recent rows; the held-out side's spread is that of the recent
  rows scaled to the held-out row count (under no change both come from one distribution, and
  metrics.json keeps no held-out residuals).

The model has drifted when the one-sided lower confidence bound of the drop exceeds `minDrop`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy import stats

from .. import evaluate

LOWER_IS_BETTER = frozenset({"rmse", "mae"})
BOOTSTRAP_RESAMPLES = 2000  # 20 replicates beyond the 1% quantile of the default one-sided bound
BOOTSTRAP_BATCH = 50  # resamples held in memory at once: 50 x 50,000 rows


@dataclass(frozen=True)
class PerformanceRule:
    """`triggers.drift.performance`; docs/drift.md has why the defaults are what they are."""

    metric: str = "accuracy"
    floor: float | None = None  # point estimate worse than this: drift (as before)
    max_drop: float | None = None  # point estimate worse than held-out by more than this: drift (as before)
    p_value: float = 0.01  # one-sided level of the bound on the drop; 0 turns the test off
    min_drop: float = 0.0  # the drop must be significantly larger than this
    min_rows: int = 100  # fewer labelled rows: not judged at all

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> PerformanceRule:
        """From the policy's camelCase fields; absent or null ones keep their defaults."""
        names = {"metric": "metric", "floor": "floor", "maxDrop": "max_drop", "pValue": "p_value",
                 "minDrop": "min_drop", "minRows": "min_rows"}
        kinds = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, name in names.items():
            if spec.get(key) is None:
                continue
            values[name] = (str(spec[key]) if name == "metric" else int(spec[key]) if kinds[name] == "int"
                            else float(spec[key]))
        return cls(**values)


def _wilson(successes: int, n: int, level: float) -> tuple[float, float]:
    interval = stats.binomtest(successes, n).proportion_ci(confidence_level=level, method="wilson")
    return float(interval.low), float(interval.high)


def newcombe(successes_a: int, n_a: int, successes_b: int, n_b: int, level: float) -> tuple[float, float]:
    """Interval for p_a - p_b (Newcombe 1998, method 10): well-behaved near 0 and 1 and at small n,
    where the Wald interval is too narrow."""
    p_a, p_b = successes_a / n_a, successes_b / n_b
    low_a, high_a = _wilson(successes_a, n_a, level)
    low_b, high_b = _wilson(successes_b, n_b, level)
    difference = p_a - p_b
    return (difference - float(np.hypot(p_a - low_a, high_b - p_b)),
            difference + float(np.hypot(high_a - p_a, p_b - low_b)))


def _f1_from_codes(labels: int, average: str, present: np.ndarray) -> Callable[..., np.ndarray]:
    """A vectorised F1 over rows coded true * labels + predicted, as sklearn's with zero_division=0
    over the labels `present` in the sample (evaluate.classification's label set)."""

    def statistic(codes: np.ndarray, axis: int = -1) -> np.ndarray:
        codes = np.moveaxis(np.asarray(codes), axis, -1)
        flat = codes.reshape(-1, codes.shape[-1])
        offsets = np.arange(len(flat))[:, None] * labels * labels
        cells = np.bincount((flat + offsets).ravel(), minlength=len(flat) * labels * labels)
        matrix = cells.reshape(len(flat), labels, labels).astype(float)
        true_positive = np.diagonal(matrix, axis1=1, axis2=2)
        support, predicted = matrix.sum(axis=2), matrix.sum(axis=1)
        denominator = support + predicted
        f1 = np.divide(2 * true_positive, denominator, out=np.zeros_like(true_positive), where=denominator > 0)
        if average == "f1Weighted":
            score = (f1 * support).sum(axis=1) / np.maximum(support.sum(axis=1), 1)
        else:
            score = f1[:, present].mean(axis=1)
        return score.reshape(codes.shape[:-1])

    return statistic


def _regression_statistic(metric: str) -> Callable[..., np.ndarray]:
    def statistic(y: np.ndarray, predicted: np.ndarray, axis: int = -1) -> np.ndarray:
        residual = y - predicted
        if metric == "rmse":
            return np.sqrt(np.mean(residual**2, axis=axis))
        if metric == "mae":
            return np.mean(np.abs(residual), axis=axis)
        spread = np.sum((y - np.mean(y, axis=axis, keepdims=True)) ** 2, axis=axis)
        return 1.0 - np.sum(residual**2, axis=axis) / np.where(spread > 0, spread, np.nan)

    return statistic


def _bootstrap(data: tuple[np.ndarray, ...], statistic: Callable[..., np.ndarray], level: float,
               seed: int) -> np.ndarray:
    """The bootstrap distribution of a statistic (scipy's resampling; paired when two arrays are rows)."""
    result = stats.bootstrap(data, statistic, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=level,
                             method="percentile", vectorized=True, paired=len(data) > 1, batch=BOOTSTRAP_BATCH,
                             random_state=np.random.default_rng(seed))
    return np.asarray(result.bootstrap_distribution, dtype=float)


def _held_out_codes(held_out: dict[str, Any], index: dict[str, int]) -> np.ndarray | None:
    """The held-out rows as codes, rebuilt from the confusion matrix (counts are all F1 needs)."""
    confusion = held_out.get("confusionMatrix") or {}
    names, matrix = confusion.get("labels"), confusion.get("matrix")
    if not names or not matrix:
        return None
    codes = [np.full(int(count), index[str(truth)] * len(index) + index[str(guess)], dtype=np.int64)
             for truth, row in zip(names, matrix, strict=True) for guess, count in zip(names, row, strict=True)]
    return np.concatenate(codes)


def _present(codes: np.ndarray, labels: int) -> np.ndarray:
    present = np.zeros(labels, dtype=bool)
    present[np.unique(codes // labels)] = True
    present[np.unique(codes % labels)] = True
    return present


def _distributions(metric: str, task: str, y_true: np.ndarray, y_pred: np.ndarray, value: float,
                   baseline: float, held_out: dict[str, Any], held_out_rows: int | None, level: float,
                   seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Bootstrap distributions of the recent and the held-out metric, and how the latter was had."""
    if task == "classification":
        confusion = held_out.get("confusionMatrix") or {}
        labels = sorted(set(map(str, confusion.get("labels") or [])) | set(y_true) | set(y_pred))
        index = {label: i for i, label in enumerate(labels)}
        codes = np.array([index[t] * len(labels) + index[p] for t, p in zip(y_true, y_pred, strict=True)])
        current = _bootstrap((codes,), _f1_from_codes(len(labels), metric, _present(codes, len(labels))), level,
                             seed)
        held_codes = _held_out_codes(held_out, index)
        if held_codes is not None:
            statistic = _f1_from_codes(len(labels), metric, _present(held_codes, len(labels)))
            return current, _bootstrap((held_codes,), statistic, level, seed + 1), "bootstrap"
    else:
        current = _bootstrap((y_true.astype(float), y_pred.astype(float)), _regression_statistic(metric), level,
                             seed)
    if held_out_rows:
        scale = np.sqrt(len(y_true) / held_out_rows)
        return current, baseline + (current - value) * scale, "bootstrap (held-out spread scaled from recent rows)"
    return current, np.full_like(current, baseline), "bootstrap (held-out value taken as exact)"


def _interval(values: np.ndarray, alpha: float) -> list[float]:
    values = values[np.isfinite(values)]
    return [float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))] if len(values) else [
        float("nan"), float("nan")]


def judge(rule: PerformanceRule, task: str, y_true: Any, y_pred: Any, held_out: dict[str, Any],
          held_out_rows: int | None, seed: int = 0) -> dict[str, Any]:
    """The performance part of drift.json; `drifted` is true only on enough rows and a real drop."""
    metric = rule.metric
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if task == "classification":
        y_true, y_pred = y_true.astype(str), y_pred.astype(str)
    n = len(y_true)
    value = None
    if n:
        scores = evaluate.classification(y_true, y_pred) if task == "classification" else \
            evaluate.regression(y_true, y_pred)
        value = float(scores[metric])
    baseline = held_out.get(metric)
    baseline = float(baseline) if baseline is not None else None
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0  # drop > 0 is worse either way
    drop = sign * (baseline - value) if value is not None and baseline is not None else None
    document: dict[str, Any] = {
        "metric": metric, "value": value, "heldOut": baseline, "rows": n, "heldOutRows": held_out_rows,
        "drop": drop, "minRows": rule.min_rows, "pValue": rule.p_value, "confidence": None, "method": None,
        "interval": None, "heldOutInterval": None, "dropInterval": None,
    }
    if n < max(rule.min_rows, 1):
        return {**document, "verdict": "insufficientData", "drifted": False, "reasons": [],
                "message": f"insufficient labelled data: {n} labelled rows, fewer than minRows={rule.min_rows}; "
                           "performance not judged"}
    assert value is not None
    worse = (lambda a, b: a > b) if metric in LOWER_IS_BETTER else (lambda a, b: a < b)
    reasons = []
    if baseline is not None and rule.p_value > 0:
        alpha = rule.p_value
        level = 1 - 2 * alpha  # two-sided, so each end is a one-sided bound at 1 - pValue
        if metric == "accuracy":
            rows = held_out_rows or _confusion_rows(held_out)
            correct, held_correct = round(value * n), round(baseline * rows)
            interval = list(_wilson(correct, n, level))
            if rows:
                held_interval = list(_wilson(held_correct, rows, level))
                drop_interval = list(newcombe(held_correct, rows, correct, n, level))
                method = "newcombe"
            else:  # a model trained before row counts were recorded
                held_interval, drop_interval = [baseline, baseline], [baseline - interval[1], baseline - interval[0]]
                method = "wilson (held-out value taken as exact)"
        else:
            current, held, method = _distributions(metric, task, y_true, y_pred, value, baseline, held_out,
                                                   held_out_rows, level, seed)
            interval, held_interval = _interval(current, alpha), _interval(held, alpha)
            drop_interval = _interval(sign * (held - current), alpha)
        document.update(confidence=level, method=method, interval=interval, heldOutInterval=held_interval,
                        dropInterval=drop_interval)
        if drop_interval[0] > rule.min_drop:
            reasons.append(f"{metric} {value:.4f} is significantly worse than held-out {baseline:.4f}: drop "
                           f"{drop:.4f}, {level:.0%} interval {drop_interval[0]:.4f}..{drop_interval[1]:.4f} "
                           f"on {n} rows (minDrop {rule.min_drop})")
    if rule.floor is not None and worse(value, rule.floor):
        reasons.append(f"{metric} {value:.4f} is worse than the floor {rule.floor}")
    if rule.max_drop is not None and drop is not None and drop > rule.max_drop:
        reasons.append(f"{metric} {value:.4f} is {drop:.4f} worse than held-out {baseline:.4f}")
    return {**document, "verdict": "drift" if reasons else "noDrift", "drifted": bool(reasons), "reasons": reasons}


def _confusion_rows(held_out: dict[str, Any]) -> int:
    matrix = (held_out.get("confusionMatrix") or {}).get("matrix") or []
    return int(sum(map(sum, matrix)))
