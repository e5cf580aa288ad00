"""Performance drift: a statistical bound on the drop from the held-out value, not a fixed drop."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from retrain_contract.api.spec import PolicySpec
from retrain_operator.core.jobs import DriftRequest, PolicyRef, drift_config
from retrain_trainer import drift_check
from retrain_trainer.drift.performance import PerformanceRule, judge, newcombe

from .policies import spec


def labels(rng: np.random.Generator, n: int, accuracy: float) -> tuple[np.ndarray, np.ndarray]:
    """Binary labels and predictions that are right with probability `accuracy`."""
    truth = rng.integers(0, 2, n)
    return truth, np.where(rng.random(n) < accuracy, truth, 1 - truth)


def test_a_drop_from_090_to_080_on_300_rows_is_found_where_a_fixed_015_drop_is_not():
    rng = np.random.default_rng(0)
    found = fixed = 0
    for _ in range(40):
        truth, predicted = labels(rng, 300, 0.80)
        result = judge(PerformanceRule(max_drop=0.15), "classification", truth, predicted, {"accuracy": 0.90}, 2000)
        found += result["drifted"]
        fixed += result["drop"] > 0.15
        low, high = result["dropInterval"]
        assert low < result["drop"] < high and result["method"] == "newcombe" and result["confidence"] == 0.98
    assert found >= 36 and fixed <= 4  # the test finds nearly every one, the fixed drop almost none


def test_a_low_held_out_value_at_5000_rows():
    rng = np.random.default_rng(1)
    truth, predicted = labels(rng, 5000, 0.55)
    result = judge(PerformanceRule(max_drop=0.1), "classification", truth, predicted, {"accuracy": 0.60}, 4000)
    assert result["drifted"] and result["dropInterval"][0] > 0 and result["drop"] < 0.1


@pytest.mark.parametrize("p_value", [0.05, 0.01])
def test_false_alarms_on_the_same_accuracy_stay_near_the_nominal_level(p_value: float):
    rng = np.random.default_rng(2)
    rule = PerformanceRule(p_value=p_value)
    alarms = 0
    runs = 1000
    for _ in range(runs):
        held_out = rng.binomial(2000, 0.9) / 2000  # the held-out estimate is a sample too
        correct = rng.binomial(300, 0.9)
        # newcombe is what judge applies to accuracy (asserted above); called directly for speed
        alarms += newcombe(round(held_out * 2000), 2000, correct, 300, 1 - 2 * rule.p_value)[0] > 0
    assert alarms / runs <= p_value * 1.5 + 0.005
    assert alarms / runs >= p_value * 0.4


def test_judge_matches_its_interval_on_the_same_accuracy():
    rng = np.random.default_rng(3)
    results = [judge(PerformanceRule(), "classification", *labels(rng, 400, 0.9), {"accuracy": 0.9}, 2000)
               for _ in range(50)]
    assert sum(r["drifted"] for r in results) <= 3
    assert all(r["verdict"] in {"drift", "noDrift"} for r in results)


def test_too_few_labelled_rows_is_neither_drift_nor_fine():
    rng = np.random.default_rng(4)
    truth, predicted = labels(rng, 60, 0.5)
    result = judge(PerformanceRule(floor=0.8, max_drop=0.05), "classification", truth, predicted,
                   {"accuracy": 0.9}, 2000)
    assert result["verdict"] == "insufficientData" and result["drifted"] is False and result["reasons"] == []
    assert "insufficient labelled data: 60 labelled rows" in result["message"] and result["dropInterval"] is None
    none = judge(PerformanceRule(), "classification", [], [], {"accuracy": 0.9}, 2000)
    assert none["verdict"] == "insufficientData" and none["value"] is None
    assert judge(PerformanceRule(min_rows=50), "classification", truth, predicted, {"accuracy": 0.9},
                 2000)["verdict"] == "drift"


def test_floor_and_max_drop_keep_their_meaning():
    rng = np.random.default_rng(5)
    truth, predicted = labels(rng, 3000, 0.85)
    off = PerformanceRule(p_value=0.0)  # the test off: the two point rules alone, as before
    assert not judge(off, "classification", truth, predicted, {"accuracy": 0.86}, 2000)["drifted"]
    floor = judge(PerformanceRule(p_value=0.0, floor=0.9), "classification", truth, predicted, {"accuracy": 0.86},
                  2000)
    assert floor["drifted"] and "floor" in floor["reasons"][0] and floor["dropInterval"] is None
    assert judge(PerformanceRule(p_value=0.0, max_drop=0.0), "classification", truth, predicted,
                 {"accuracy": 0.90}, 2000)["drifted"]
    # minDrop: a significant drop of ~0.05 is not significantly larger than 0.1.
    drop = judge(PerformanceRule(min_drop=0.1), "classification", truth, predicted, {"accuracy": 0.90}, 20000)
    assert not drop["drifted"] and drop["dropInterval"][0] > 0


def test_without_a_held_out_row_count_the_held_out_value_is_taken_as_exact():
    rng = np.random.default_rng(6)
    truth, predicted = labels(rng, 300, 0.8)
    result = judge(PerformanceRule(), "classification", truth, predicted, {"accuracy": 0.9}, None)
    assert result["method"].startswith("wilson") and result["heldOutInterval"] == [0.9, 0.9]
    assert result["drifted"]


def confusion(rng: np.random.Generator, n: int, accuracy: float) -> dict[str, Any]:
    truth, predicted = labels(rng, n, accuracy)
    matrix = [[int(np.sum((truth == t) & (predicted == p))) for p in (0, 1)] for t in (0, 1)]
    return {"labels": ["0", "1"], "matrix": matrix}


@pytest.mark.parametrize("metric", ["f1Macro", "f1Weighted"])
def test_f1_is_bootstrapped_on_both_sides(metric: str):
    rng = np.random.default_rng(7)
    held_out = {metric: 0.9, "confusionMatrix": confusion(rng, 2000, 0.9)}
    dropped = judge(PerformanceRule(metric=metric), "classification", *labels(rng, 300, 0.8), held_out, 2000)
    assert dropped["drifted"] and dropped["method"] == "bootstrap"
    assert dropped["heldOutInterval"][0] < 0.9 < dropped["heldOutInterval"][1]
    assert dropped["interval"][0] < dropped["value"] < dropped["interval"][1]
    same = [judge(PerformanceRule(metric=metric), "classification", *labels(rng, 300, 0.9), held_out, 2000)
            for _ in range(10)]
    assert sum(r["drifted"] for r in same) <= 1


@pytest.mark.parametrize("metric, worse_noise", [("rmse", 1.3), ("mae", 1.3), ("r2", 1.3)])
def test_regression_metrics_are_bootstrapped_and_judged_in_their_direction(metric: str, worse_noise: float):
    rng = np.random.default_rng(8)
    truth = rng.normal(0, 2, 400)
    baseline = judge(PerformanceRule(metric=metric), "regression", truth, truth + rng.normal(0, 1, 400), {
        "rmse": 1.0, "mae": 0.8, "r2": 0.75}, 1000)
    assert not baseline["drifted"] and baseline["method"].startswith("bootstrap")
    worse = judge(PerformanceRule(metric=metric), "regression", truth, truth + rng.normal(0, worse_noise, 400),
                  {"rmse": 1.0, "mae": 0.8, "r2": 0.75}, 1000)
    assert worse["drifted"] and worse["drop"] > 0 and worse["dropInterval"][0] > 0


def test_rules_come_from_the_policy_through_the_operator():
    policy = PolicySpec.from_dict(spec(triggers={"drift": {"data": "s3://d/recent/", "performance": {
        "metric": "f1Macro", "maxDrop": 0.1, "pValue": 0.05, "minRows": 300}}}))
    config = drift_config(PolicyRef("churn", "ml", "uid-1"), policy, DriftRequest("c1", "v1", "2026-01-01T00:00:00Z"))
    rule = PerformanceRule.from_spec(config["performance"])
    assert rule == PerformanceRule(metric="f1Macro", max_drop=0.1, p_value=0.05, min_rows=300)
    assert PerformanceRule.from_spec({"metric": "accuracy"}) == PerformanceRule()


class _Echo:
    """A model that predicts the column `guess`."""

    def predict(self, frame: Any) -> np.ndarray:
        return frame["guess"].to_numpy()


def test_rows_without_a_label_are_not_counted_as_labelled():
    config = drift_check.DriftConfig({"target": "y", "task": "classification",
                                      "performance": {"metric": "accuracy", "minRows": 100}})
    rows = pa.table({"guess": ["a"] * 80 + ["b"] * 70, "y": ["a"] * 80 + ["b"] * 10 + [None] * 60})
    result = drift_check._performance(config, _Echo(), ["guess"], rows, {"accuracy": 0.9}, 1000)
    assert result is not None and result["rows"] == 90 and result["verdict"] == "insufficientData"
    assert drift_check._performance(drift_check.DriftConfig({"target": "y"}), _Echo(), ["guess"], rows, {}) is None
