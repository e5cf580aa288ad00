"""Quality gates end to end: a challenger is measured against the champion by the real trainer
and judged by the operator; a worse one never becomes current."""

from __future__ import annotations

import pytest

from retrain_contract.api import names
from retrain_contract.artifacts.store import ArtifactStore
from retrain_operator.core.conditions import get_condition
from retrain_sandbox import dataset

from .conftest import Scenario

pytestmark = pytest.mark.integration


def reasons(scenario: Scenario, name: str) -> list[str]:
    return [e.get("reason") for e in scenario.cluster.events(scenario.namespace, name)]


def test_a_worse_challenger_is_rejected_and_the_champion_keeps_serving(scenario: Scenario):
    scenario.load_history(rows=3000)
    scenario.cluster.apply_policy(scenario.namespace, "gated", scenario.policy_spec(),
                                  annotations={names.ANNOTATION_TRIGGER: "1"})
    scenario.wait_recorded("gated", "v1")
    # New labeled data arrives, and someone regularises the model into uselessness.
    scenario.put("churn/incoming/batch-1.parquet", dataset.to_parquet(dataset.churn_table(1500, seed=5)))
    scenario.cluster.patch_policy(scenario.namespace, "gated", {"spec": {"model": {"params": {
        "loss": "log_loss", "random_state": 0, "alpha": 50.0}}}})
    scenario.cluster.trigger(scenario.namespace, "gated", "2")
    status = scenario.wait_recorded("gated", "v2")

    assert status["currentModel"]["version"] == "v1"
    last = status["lastRun"]
    assert last["phase"] == "Rejected" and last["reason"] == "GateFailed", last
    failed = [g for g in last["gates"] if g["result"] == "Failed"]
    assert any(g["gate"] == "compare f1Macro" for g in failed), last["gates"]
    assert "unseen rows" in last["message"]
    assert status["phase"] == "Ready" and "v2 was not promoted" in status["message"]
    assert get_condition(status["conditions"], "Trained")["reason"] == "GateFailed"
    assert status["history"][0]["version"] == "v2" and status["history"][0]["rejected"] == "GateFailed"
    scenario.cluster.wait(lambda: "GateFailed" in reasons(scenario, "gated"), 15, "the GateFailed Event")

    manifest = ArtifactStore(scenario.s3, scenario.model_bucket).read_manifest(scenario.model_prefix("gated", "v2"))
    comparison = manifest["evaluation"]["comparison"]
    assert comparison["rows"] >= 250 and comparison["objects"] == 1  # held-out rows of the new batch only
    assert comparison["challenger"]["f1Macro"] < comparison["champion"]["f1Macro"]
    assert manifest["evaluation"]["champion"] == {"version": "v1"}


def test_a_retrain_on_nothing_new_is_inconclusive_and_not_promoted(scenario: Scenario):
    scenario.load_history(rows=2000)
    scenario.cluster.apply_policy(scenario.namespace, "same", scenario.policy_spec(),
                                  annotations={names.ANNOTATION_TRIGGER: "1"})
    scenario.wait_recorded("same", "v1")
    scenario.cluster.trigger(scenario.namespace, "same", "2")
    status = scenario.wait_recorded("same", "v2")
    assert status["currentModel"]["version"] == "v1"
    assert status["lastRun"]["reason"] == "GateInconclusive"
    assert "only 0 held-out rows that neither model trained on" in status["lastRun"]["message"]
