"""`retrain-trainer drift` as the drift Job runs it, against a trained version in a real S3."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess

import pyarrow as pa
import pytest

from retrain_contract.artifacts.store import ArtifactStore
from retrain_operator.core.timeutil import to_rfc3339
from retrain_sandbox import dataset

from .test_trainer_entrypoint import TRAINER, config, train


def drift_config(bucket: str, check: str, **extra) -> dict:
    return {
        "kind": "DriftCheckConfig", "policy": {"namespace": "ml", "name": "churn"}, "checkId": check,
        "modelVersion": "v1", "data": f"s3://{bucket}/recent/", "windowSeconds": 3600,
        "now": to_rfc3339(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)),
        "features": None, "keyFeatures": [], "thresholds": {}, "target": dataset.TARGET,
        "task": "classification", "performance": None,
        "storage": {"bucket": bucket, "prefix": "models", "region": "us-east-1"}, **extra,
    }


def run_drift(seaweed, run_config: dict) -> subprocess.CompletedProcess:
    run_config = {**run_config, "storage": {**run_config["storage"], "endpoint": seaweed.endpoint}}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **seaweed.env(),
           "RETRAIN_RUN_CONFIG": json.dumps(run_config)}
    return subprocess.run([TRAINER, "drift"], env=env, capture_output=True, text=True, timeout=180)


@pytest.fixture()
def trained(seaweed, s3, bucket) -> str:
    s3.put_object(Bucket=bucket, Key="history/a.parquet", Body=dataset.to_parquet(dataset.churn_table(20000, 1)))
    result = train(seaweed, config(bucket))
    assert result.returncode == 0, result.stderr
    manifest = ArtifactStore(s3, bucket).read_manifest("models/ml/churn/v1/")
    assert "profile.json" in manifest["files"]
    return bucket


def result_of(s3, bucket: str, check: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=f"models/ml/churn/drift/{check}/drift.json")["Body"].read())


def test_a_shifted_window_is_flagged_and_a_stable_one_is_not(seaweed, s3, trained):
    stable = dataset.churn_table(5000, 2)
    s3.put_object(Bucket=trained, Key="recent/stable.parquet", Body=dataset.to_parquet(stable))
    assert run_drift(seaweed, drift_config(trained, "d1")).returncode == 0
    assert result_of(s3, trained, "d1")["drift"] is False

    shifted = stable.set_column(stable.schema.get_field_index("monthly_spend"), "monthly_spend",
                                pa.array(stable["monthly_spend"].to_numpy() * 1.8))
    shifted = shifted.set_column(shifted.schema.get_field_index("tenure_months"), "tenure_months",
                                 pa.array(stable["tenure_months"].to_numpy() // 3))
    s3.put_object(Bucket=trained, Key="recent/stable.parquet", Body=dataset.to_parquet(shifted))
    completed = run_drift(seaweed, drift_config(trained, "d2"))
    assert completed.returncode == 0, completed.stderr
    document = result_of(s3, trained, "d2")
    assert document["drift"] is True
    assert set(document["driftedFeatures"]) >= {"monthly_spend", "tenure_months"}
    assert document["topFeatures"][0]["name"] in {"monthly_spend", "tenure_months"}
    assert document["objects"] == [f"s3://{trained}/recent/stable.parquet"]


def test_performance_drift_on_recent_labels(seaweed, s3, trained):
    flipped = dataset.churn_table(3000, 3, flip=True)  # same features, the opposite labels: concept drift
    s3.put_object(Bucket=trained, Key="recent/labeled.parquet", Body=dataset.to_parquet(flipped))
    check = drift_config(trained, "d3", performance={"metric": "accuracy", "floor": 0.7, "maxDrop": 0.1})
    assert run_drift(seaweed, check).returncode == 0
    document = result_of(s3, trained, "d3")
    assert document["datasetDrift"] is False and document["performance"]["drifted"] is True
    assert document["drift"] is True and document["performance"]["value"] < 0.5


@pytest.mark.parametrize("body, message", [
    (None, "no data under"),
    (dataset.to_parquet(dataset.churn_table(100, 4).drop_columns(["plan"])), "column(s) plan missing from s3://"),
    (b"tenure_months,monthly_spend,support_calls,plan,region,churned\n1,abc,1,basic,north,yes\n2,3.5,0,pro,south,no\n",
     "non-numeric values in numeric column(s): monthly_spend"),
])
def test_bad_input_fails_the_check_with_a_clear_message(seaweed, s3, trained, body, message):
    if body is not None:
        key = "recent/bad.parquet" if body.startswith(b"PAR1") else "recent/bad.csv"
        s3.put_object(Bucket=trained, Key=key, Body=body)
    completed = run_drift(seaweed, drift_config(trained, "bad"))
    assert completed.returncode == 3 and message in completed.stderr, completed.stderr
    error = ArtifactStore(s3, trained).read_error("models/ml/churn/drift/bad/")
    assert error["reason"] == "DataError" and message in error["message"]


def test_too_few_rows_are_a_result_saying_so_not_drift_and_not_a_failure(seaweed, s3, trained):
    """Exit 0 (the check ran) with verdict insufficient-data: 20 far-off rows and a header-only CSV."""
    few = dataset.churn_table(20, 5)
    few = few.set_column(few.schema.get_field_index("monthly_spend"), "monthly_spend",
                         pa.array(few["monthly_spend"].to_numpy() * 3))
    s3.put_object(Bucket=trained, Key="recent/few.parquet", Body=dataset.to_parquet(few))
    s3.put_object(Bucket=trained, Key="recent/header.csv", Body=dataset.to_csv(few.slice(0, 0)))
    completed = run_drift(seaweed, drift_config(trained, "few"))
    assert completed.returncode == 0, completed.stderr
    document = result_of(s3, trained, "few")
    assert document["verdict"] == "insufficient-data" and document["drift"] is False
    assert document["verdictReason"] == "20 current rows, at least 200 needed" and document["minRows"] == 200
    assert set(document["insufficientFeatures"]) == set(dataset.FEATURES)
    assert dataset.TARGET not in document["features"]  # the label is not a feature

    assert run_drift(seaweed, drift_config(trained, "few10", minRows=10)).returncode == 0
    assert result_of(s3, trained, "few10")["verdict"] == "drift"  # the minimum is the policy's to set


def test_the_target_is_no_feature_and_extra_columns_are_reported(seaweed, s3, trained):
    profile = json.loads(s3.get_object(Bucket=trained, Key="models/ml/churn/v1/profile.json")["Body"].read())
    assert profile["target"] == dataset.TARGET  # recorded for `compare --reference profile.json`
    recent = dataset.churn_table(2000, 6)
    s3.put_object(Bucket=trained, Key="recent/extra.parquet",
                  Body=dataset.to_parquet(recent.append_column("coupon", pa.array(["c"] * 2000))))
    assert run_drift(seaweed, drift_config(trained, "extra")).returncode == 0
    document = result_of(s3, trained, "extra")
    assert document["verdict"] == "no-drift" and document["extraColumns"] == ["coupon"]
    assert sorted(document["features"]) == sorted(dataset.FEATURES)


@pytest.mark.parametrize("extra, message", [
    ({"keyFeatures": ["nosuch"]}, "keyFeatures: nosuch not among the checked features"),
    ({"features": ["plan", dataset.TARGET]}, f"{dataset.TARGET} is the target"),
    ({"minRows": 0}, "minRows: must be a whole number of at least 1"),
])
def test_names_that_are_not_features_fail_the_check_as_configuration_errors(seaweed, s3, trained, extra, message):
    s3.put_object(Bucket=trained, Key="recent/ok.parquet", Body=dataset.to_parquet(dataset.churn_table(500, 7)))
    completed = run_drift(seaweed, drift_config(trained, "cfg", **extra))
    assert completed.returncode == 2 and message in completed.stderr, completed.stderr
    assert "Traceback" not in completed.stderr
