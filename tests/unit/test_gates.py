"""Quality gates: pure verdicts on the numbers a trainer recorded."""

from __future__ import annotations

from retrain_contract.api.spec import GatesSpec
from retrain_operator.core.gates import FAILED, INCONCLUSIVE, PASSED, judge


def gates(task: str = "classification", **raw) -> GatesSpec:
    return GatesSpec.from_dict(raw, task)


def evaluation(challenger: float = 0.80, champion: float = 0.80, rows: int = 200, older: float | None = 0.79,
               older_rows: int = 300, champion_held_out: float = 0.80, metric: str = "f1Macro", **extra) -> dict:
    document = {
        "heldOut": {metric: challenger, "accuracy": 0.85,
                    "perClass": {"yes": {"recall": 0.6, "support": 40}, "no": {"recall": 0.9, "support": 160}}},
        "comparison": {"rows": rows, "challenger": {metric: challenger}, "champion": {metric: champion}},
        "olderData": {"rows": older_rows, "challenger": {metric: older} if older is not None else None,
                      "championHeldOut": {metric: champion_held_out}},
    }
    return {**document, **extra}


def results(verdict) -> dict[str, str]:
    return {check.gate: check.result for check in verdict.checks}


def test_the_default_gate_allows_noise_but_not_a_real_regression():
    assert judge(gates(), evaluation(challenger=0.795, champion=0.80), "v1").passed
    verdict = judge(gates(), evaluation(challenger=0.75, champion=0.80), "v1")
    assert verdict.reason == "GateFailed" and results(verdict)["compare f1Macro"] == FAILED
    assert "0.75 vs v1 0.8 on 200 unseen rows: worse by 0.05, allowed 0.01" in verdict.summary()


def test_min_improvement_and_relative_amounts():
    rule = {"compare": [{"metric": "accuracy", "minImprovement": 0.05, "relative": True}]}
    document = evaluation(metric="accuracy", challenger=0.84, champion=0.80)
    assert judge(gates(**rule), document, "v1").passed  # 0.04 >= 5 % of 0.80
    assert not judge(gates(**rule), evaluation(metric="accuracy", challenger=0.83, champion=0.80), "v1").passed


def test_lower_is_better_metrics_are_compared_the_right_way_round():
    rule = {"compare": [{"metric": "rmse", "maxRegression": 0.1}], "olderData": {"enabled": False}}
    assert judge(gates("regression", **rule), evaluation(metric="rmse", challenger=2.0, champion=2.5), "v1").passed
    assert not judge(gates("regression", **rule), evaluation(metric="rmse", challenger=2.7, champion=2.5),
                     "v1").passed


def test_too_few_unseen_rows_is_inconclusive_never_a_silent_pass():
    verdict = judge(gates(), evaluation(rows=10), "v1")
    assert verdict.reason == "GateInconclusive" and not verdict.passed
    assert "only 10 held-out rows that neither model trained on" in verdict.summary()


def test_a_trainer_without_a_comparison_or_a_champion_that_could_not_score_is_inconclusive():
    assert judge(gates(), {"heldOut": {"f1Macro": 0.9}}, "v1").reason == "GateInconclusive"
    broken = evaluation()
    broken["comparison"] = {"rows": 0, "error": "the champion needs column(s) plan"}
    verdict = judge(gates(), broken, "v1")
    assert verdict.reason == "GateInconclusive" and "plan" in verdict.summary()


def test_an_empty_compare_list_turns_comparisons_off():
    assert judge(gates(compare=[]), {"heldOut": {"f1Macro": 0.2}}, "v1").passed


def test_forgetting_on_older_data_fails_the_gate():
    verdict = judge(gates(), evaluation(older=0.70, champion_held_out=0.80), "v1")
    assert results(verdict)["olderData f1Macro"] == FAILED and "forgetting" in verdict.summary()
    assert judge(gates(olderData={"maxRegression": 0.2}), evaluation(older=0.70), "v1").passed


def test_older_data_with_too_few_rows_is_skipped_and_says_so():
    verdict = judge(gates(), evaluation(older_rows=5), "v1")
    assert results(verdict)["olderData f1Macro"] == PASSED and verdict.passed
    assert any("skipped" in check.message for check in verdict.checks)


def test_bounds_apply_to_the_first_model_and_comparisons_do_not():
    rule = {"bounds": [{"metric": "accuracy", "min": 0.9}]}
    first = judge(gates(**rule), {"heldOut": {"accuracy": 0.85}}, None)
    assert first.reason == "GateFailed" and [c.gate for c in first.checks] == ["bound accuracy"]
    assert judge(gates(), {"heldOut": {"accuracy": 0.85}}, None).passed  # no champion: nothing to compare
    assert judge(gates(bounds=[{"metric": "rmse", "max": 3}]), {"heldOut": {"rmse": 3.5}}, None).reason == "GateFailed"


def test_per_class_recall():
    assert not judge(gates(minClassRecall={"yes": 0.7}), evaluation(), "v1").passed
    assert judge(gates(minClassRecall={"yes": 0.5}), evaluation(), "v1").passed
    missing = judge(gates(minClassRecall={"maybe": 0.5}), evaluation(), "v1")
    assert results(missing)["recall maybe"] == INCONCLUSIVE


def test_the_verdict_is_kept_in_status_form():
    status = judge(gates(), evaluation(), "v1").as_status()
    assert {entry["gate"] for entry in status} == {"compare f1Macro", "olderData f1Macro"}
    assert all(set(entry) == {"gate", "result", "message"} for entry in status)
