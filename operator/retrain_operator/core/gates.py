"""May a challenger replace the champion? Quality gates on the numbers the trainer recorded.

The trainer measures (manifest `evaluation`: held-out metrics, challenger and champion on the
held-out rows neither trained on, the challenger on older data); this module only judges, so
a policy's gates can change without retraining and every verdict is unit-tested without I/O.
A gate that cannot be judged (too few rows, a number the trainer did not record) is
*inconclusive*, and an inconclusive challenger is not promoted: never a silent pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from retrain_contract.api.spec import GatesSpec

LOWER_IS_BETTER = frozenset({"rmse", "mae"})
PASSED, FAILED, INCONCLUSIVE = "Passed", "Failed", "Inconclusive"
EPSILON = 1e-9  # 0.84 - 0.80 is 0.0399999...: a limit met exactly is met


@dataclass(frozen=True)
class Check:
    gate: str
    result: str  # PASSED | FAILED | INCONCLUSIVE
    message: str


@dataclass(frozen=True)
class Verdict:
    checks: tuple[Check, ...]

    @property
    def reason(self) -> str:
        results = {check.result for check in self.checks}
        if FAILED in results:
            return "GateFailed"
        return "GateInconclusive" if INCONCLUSIVE in results else "GatesPassed"

    @property
    def passed(self) -> bool:
        return self.reason == "GatesPassed"

    def summary(self) -> str:
        shown = [c for c in self.checks if c.result != PASSED] or list(self.checks)
        return "; ".join(c.message for c in shown) or "no gates"

    def as_status(self) -> list[dict[str, Any]]:
        return [asdict(check) for check in self.checks]


def _improvement(metric: str, challenger: float, baseline: float) -> float:
    """Positive when the challenger is better, whichever direction the metric goes."""
    return baseline - challenger if metric in LOWER_IS_BETTER else challenger - baseline


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _bounds(gates: GatesSpec, held_out: dict[str, Any]) -> list[Check]:
    checks = []
    for bound in gates.bounds:
        value = _number(held_out.get(bound.metric))
        name = f"bound {bound.metric}"
        if value is None:
            checks.append(Check(name, INCONCLUSIVE, f"{bound.metric} was not recorded"))
        elif bound.min is not None and value < bound.min:
            checks.append(Check(name, FAILED, f"{bound.metric} {value:.4g} is below the minimum {bound.min}"))
        elif bound.max is not None and value > bound.max:
            checks.append(Check(name, FAILED, f"{bound.metric} {value:.4g} is above the maximum {bound.max}"))
        else:
            checks.append(Check(name, PASSED, f"{bound.metric} {value:.4g} is within bounds"))
    return checks


def _class_recall(gates: GatesSpec, held_out: dict[str, Any]) -> list[Check]:
    per_class = held_out.get("perClass") or {}
    checks = []
    for label, minimum in sorted(gates.min_class_recall.items()):
        entry = per_class.get(label) or {}
        recall, support = _number(entry.get("recall")), int(entry.get("support") or 0)
        name = f"recall {label}"
        if recall is None or support == 0:
            checks.append(Check(name, INCONCLUSIVE, f"no held-out rows of class {label!r} to measure recall on"))
        elif recall < minimum:
            checks.append(Check(name, FAILED, f"recall of class {label!r} {recall:.4g} is below {minimum} "
                                              f"({support} rows)"))
        else:
            checks.append(Check(name, PASSED, f"recall of class {label!r} {recall:.4g} ≥ {minimum}"))
    return checks


def _comparisons(gates: GatesSpec, evaluation: dict[str, Any], champion: str) -> list[Check]:
    if not gates.compare:
        return []
    comparison = evaluation.get("comparison")
    problem = None
    if not isinstance(comparison, dict):
        problem = f"the trainer recorded no comparison with {champion}"
    elif comparison.get("error"):
        problem = f"{champion} could not be compared: {comparison['error']}"
    elif int(comparison.get("rows") or 0) < gates.min_comparison_rows:
        problem = (f"only {int(comparison.get('rows') or 0)} held-out rows that neither model trained on, fewer "
                   f"than minComparisonRows {gates.min_comparison_rows}")
    if problem:
        return [Check(f"compare {c.metric}", INCONCLUSIVE, problem) for c in gates.compare]
    assert isinstance(comparison, dict)
    rows = int(comparison["rows"])
    checks = []
    for rule in gates.compare:
        name = f"compare {rule.metric}"
        new = _number((comparison.get("challenger") or {}).get(rule.metric))
        old = _number((comparison.get("champion") or {}).get(rule.metric))
        if new is None or old is None:
            checks.append(Check(name, INCONCLUSIVE, f"{rule.metric} was not recorded for both models"))
            continue
        scale = abs(old) if rule.relative else 1.0
        gain = _improvement(rule.metric, new, old)
        shown = f"{rule.metric} {new:.4g} vs {champion} {old:.4g} on {rows} unseen rows"
        if rule.min_improvement is not None:
            needed = rule.min_improvement * scale
            ok = gain >= needed - EPSILON
            detail = f"better by {gain:.4g}, needs {needed:.4g}"
        else:
            allowed = (rule.max_regression or 0.0) * scale
            ok = gain >= -allowed - EPSILON
            detail = ("equal" if abs(gain) <= EPSILON else f"worse by {-gain:.4g}, allowed {allowed:.4g}"
                      if gain < 0 else f"better by {gain:.4g}")
        checks.append(Check(name, PASSED if ok else FAILED, f"{shown}: {detail}"))
    return checks


def _older_data(gates: GatesSpec, evaluation: dict[str, Any], champion: str) -> list[Check]:
    metric = gates.older_data_metric
    if not metric:
        return []
    older = evaluation.get("olderData") or {}
    rows = int(older.get("rows") or 0)
    name = f"olderData {metric}"
    if rows < gates.min_comparison_rows:
        # Secondary check: a run with no older rows in its held-out split (a window strategy on
        # fresh data) has nothing to forget against. Skipped, and said so.
        return [Check(name, PASSED, f"skipped: {rows} held-out rows of older data, fewer than "
                                    f"minComparisonRows {gates.min_comparison_rows}")]
    new = _number((older.get("challenger") or {}).get(metric))
    old = _number((older.get("championHeldOut") or {}).get(metric))
    if new is None or old is None:
        return [Check(name, INCONCLUSIVE, f"{metric} on older data was not recorded for both models")]
    gain = _improvement(metric, new, old)
    allowed = gates.older_data_max_regression
    shown = f"{metric} {new:.4g} on {rows} older rows vs {champion}'s held-out {old:.4g}"
    if gain < -allowed - EPSILON:
        return [Check(name, FAILED, f"{shown}: worse by {-gain:.4g}, allowed {allowed:.4g} (forgetting)")]
    return [Check(name, PASSED, f"{shown}: within {allowed:.4g}")]


def judge(gates: GatesSpec, evaluation: dict[str, Any], champion: str | None) -> Verdict:
    """The verdict on one challenger; `champion` is the version it would replace (None: the first)."""
    held_out = evaluation.get("heldOut") or {}
    checks = _bounds(gates, held_out) + _class_recall(gates, held_out)
    if champion:
        checks += _comparisons(gates, evaluation, champion) + _older_data(gates, evaluation, champion)
    return Verdict(tuple(checks))
