"""Drift-triggered retraining end to end: operator, drift check Jobs, trainer, S3."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from retrain_contract.api import names
from retrain_operator.core.conditions import get_condition
from retrain_operator.core.timeutil import to_rfc3339
from retrain_sandbox import dataset

from .conftest import Scenario

pytestmark = pytest.mark.integration


def shifted(table: pa.Table) -> pa.Table:
    spend = table.schema.get_field_index("monthly_spend")
    tenure = table.schema.get_field_index("tenure_months")
    table = table.set_column(spend, "monthly_spend", pa.array(table["monthly_spend"].to_numpy() * 1.8))
    return table.set_column(tenure, "tenure_months", pa.array(table["tenure_months"].to_numpy() // 3))


def drift_policy(scenario: Scenario) -> dict:
    # The shift below changes how features relate to the label, so a model that learns the new
    # relation gets worse on the old data: the forgetting gate must allow for that here.
    return scenario.policy_spec(triggers={"drift": {"data": f"s3://{scenario.data_bucket}/recent/",
                                                    "window": "24h", "interval": "1h"}},
                                promotion={"gates": {"olderData": {"maxRegression": 0.2}}})


def reasons(scenario: Scenario, name: str) -> list[str]:
    return [e.get("reason") for e in scenario.cluster.events(scenario.namespace, name)]


def test_drifted_batches_trigger_a_retraining_and_stable_ones_do_not(scenario: Scenario, clock_file):
    scenario.load_history(rows=5000)
    recent = dataset.churn_table(3000, seed=21)
    scenario.put("recent/batch-1.parquet", dataset.to_parquet(recent))
    scenario.cluster.apply_policy(scenario.namespace, "watched", drift_policy(scenario),
                                  annotations={names.ANNOTATION_TRIGGER: "first"})
    status = scenario.wait_status("watched", lambda s: (s.get("drift") or {}).get("checkId") == "d1",
                                  "the first drift check")
    assert status["drift"]["drift"] is False, status["drift"]
    assert get_condition(status["conditions"], "DriftDetected")["reason"] == "NoDrift"
    assert status["currentModel"]["version"] == "v1" and not status.get("activeRun")

    scenario.put("recent/batch-1.parquet", dataset.to_parquet(shifted(recent)))
    # Labels for the shifted data arrive too: a challenger is only promoted on rows the champion
    # never saw (without them the gates are inconclusive: see test_promotion_gates).
    scenario.put("churn/incoming/batch-1.parquet", dataset.to_parquet(shifted(dataset.churn_table(3000, seed=22))))
    clock_file.write_text(to_rfc3339(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1, minutes=5)))
    try:
        status = scenario.wait_recorded("watched", "v2", timeout=120)
    finally:
        clock_file.write_text("")
    assert status["drift"]["checkId"] == "d2" and status["drift"]["drift"] is True
    assert {"monthly_spend", "tenure_months"} <= set(status["drift"]["driftedFeatures"])
    assert status["lastRun"]["trigger"] == "drift"
    assert "drift check d2" in status["lastRun"]["triggerReason"]
    assert status["currentModel"]["version"] == "v2", status["lastRun"]["message"]
    scenario.cluster.wait(lambda: "DriftDetected" in reasons(scenario, "watched"), 15, "the DriftDetected Event")
    report = status["drift"]["reportUri"].removeprefix(f"s3://{scenario.model_bucket}/")
    scenario.s3.head_object(Bucket=scenario.model_bucket, Key=report.replace("report.html", "drift.json"))


def test_a_drift_check_on_bad_data_is_reported_and_never_retrains(scenario: Scenario):
    scenario.load_history(rows=3000)
    scenario.put("recent/bad.parquet", dataset.to_parquet(dataset.churn_table(500, seed=3).drop_columns(["plan"])))
    scenario.cluster.apply_policy(scenario.namespace, "badrecent", drift_policy(scenario),
                                  annotations={names.ANNOTATION_TRIGGER: "first"})
    status = scenario.wait_status("badrecent", lambda s: (s.get("drift") or {}).get("checkId") == "d1",
                                  "the drift check")
    assert status["drift"]["error"]["reason"] == "DataError"
    assert "plan" in status["drift"]["error"]["message"]
    assert get_condition(status["conditions"], "DriftDetected")["reason"] == "CheckFailed"
    scenario.cluster.wait(lambda: "DriftCheckFailed" in reasons(scenario, "badrecent"), 15, "the Event")
    assert [j["metadata"]["name"] for j in scenario.cluster.jobs(scenario.namespace)
            if j["metadata"]["labels"].get(names.LABEL_RUN)] == ["badrecent-v1"]
