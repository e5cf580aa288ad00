"""The trainer image's entrypoint, run as the Job would run it: a subprocess, config in the environment,
data and artifacts in a real S3 (SeaweedFS)."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from retrain_contract.artifacts.store import ArtifactStore
from retrain_sandbox import dataset

TRAINER = str(Path(sys.executable).parent / "retrain-trainer")
START = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def config(bucket: str, version: str = "v1", parent: str | None = None, **sections: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "apiVersion": "retrain.mlops.dev/v1alpha1", "kind": "RunConfig",
        "policy": {"namespace": "ml", "name": "churn"}, "version": version, "parentVersion": parent,
        "trigger": {"type": "manual", "reason": "test", "at": "2026-11-24T00:00:00Z"},
        "model": {"estimator": "RandomForestClassifier", "task": "classification", "target": dataset.TARGET,
                  "features": dataset.FEATURES, "params": {"n_estimators": 10, "random_state": 0}},
        "data": {"history": f"s3://{bucket}/history/", "incoming": f"s3://{bucket}/incoming/",
                 "validation": {"minRows": 50}},
        "training": {"strategy": "full", "testFraction": 0.25},
        "storage": {"bucket": bucket, "prefix": "models", "endpoint": None, "region": "us-east-1"},
    }
    for key, value in sections.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) else value
    return base


def train(seaweed, run_config: dict[str, Any], wait: bool = True) -> subprocess.CompletedProcess | subprocess.Popen:
    run_config = json.loads(json.dumps(run_config))
    run_config["storage"]["endpoint"] = seaweed.endpoint
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **seaweed.env(),
           "RETRAIN_RUN_CONFIG": json.dumps(run_config)}
    if not wait:
        return subprocess.Popen([TRAINER, "train"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
    return subprocess.run([TRAINER, "train"], env=env, capture_output=True, text=True, timeout=180)


def prefix(version: str) -> str:
    return f"models/ml/churn/{version}/"


def test_full_training_writes_verified_artifacts(seaweed, s3, bucket):
    s3.put_object(Bucket=bucket, Key="history/a.parquet", Body=dataset.to_parquet(dataset.churn_table(2000, 1)))
    s3.put_object(Bucket=bucket, Key="incoming/b.csv", Body=dataset.to_csv(dataset.churn_table(500, 2)))
    result = train(seaweed, config(bucket))
    assert result.returncode == 0, result.stderr
    store = ArtifactStore(s3, bucket)
    manifest = store.read_manifest(prefix("v1"))
    assert manifest is not None and store.verify(prefix("v1"), manifest) == []
    assert manifest["data"]["rows"] == {"history": 2000, "new": 500, "train": 1875, "test": 625}
    assert {o["uri"] for o in manifest["data"]["objects"]} == {f"s3://{bucket}/history/a.parquet",
                                                                f"s3://{bucket}/incoming/b.csv"}
    assert manifest["training"]["accelerator"] == "none"
    assert manifest["libraries"]["scikit-learn"]
    metrics = json.loads(s3.get_object(Bucket=bucket, Key=prefix("v1") + "metrics.json")["Body"].read())
    assert metrics["heldOut"]["accuracy"] > 0.75
    assert set(metrics["heldOut"]["perClass"]) == {"yes", "no"}
    model = joblib.load(io.BytesIO(store.load_verified(prefix("v1"), manifest, "model.joblib")))
    assert set(model.predict(dataset.churn_table(10, 3).to_pandas()[dataset.FEATURES])) <= {"yes", "no"}


def test_incremental_training_continues_from_the_parent(seaweed, s3, bucket):
    s3.put_object(Bucket=bucket, Key="history/a.parquet", Body=dataset.to_parquet(dataset.churn_table(2000, 1)))
    assert train(seaweed, config(bucket)).returncode == 0
    s3.put_object(Bucket=bucket, Key="incoming/c.csv", Body=dataset.to_csv(dataset.churn_table(300, 4)))
    run = config(bucket, "v2", "v1", training={"strategy": "incremental", "replayFraction": 0.8})
    result = train(seaweed, run)
    assert result.returncode == 0, result.stderr
    store = ArtifactStore(s3, bucket)
    manifests = {v: store.read_manifest(prefix(v)) for v in ("v1", "v2")}
    models = {v: joblib.load(io.BytesIO(store.load_verified(prefix(v), m, "model.joblib")))
              for v, m in manifests.items()}
    parent_trees = models["v1"].named_steps["estimator"].estimators_
    child_trees = models["v2"].named_steps["estimator"].estimators_
    assert len(parent_trees) == 10 and len(child_trees) == 20  # warm start added 10 trees
    for parent, child in zip(parent_trees, child_trees[:10], strict=True):
        assert np.array_equal(parent.tree_.threshold, child.tree_.threshold)  # the parent's trees, unchanged
    rows = manifests["v2"]["data"]["rows"]
    assert rows["new"] == 300 and rows["replay"] == 1200
    assert manifests["v2"]["training"]["continuedFrom"] == "v1"
    assert manifests["v2"]["parentVersion"] == "v1"


def test_xgboost_continues_its_parents_booster_and_ships_a_verified_onnx_model(seaweed, s3, bucket):
    s3.put_object(Bucket=bucket, Key="history/a.parquet", Body=dataset.to_parquet(dataset.churn_table(2000, 1)))
    model = {"estimator": "XGBClassifier", "params": {"n_estimators": 20, "max_depth": 3, "random_state": 0}}
    assert train(seaweed, config(bucket, model=model)).returncode == 0
    s3.put_object(Bucket=bucket, Key="incoming/c.csv", Body=dataset.to_csv(dataset.churn_table(600, 4)))
    result = train(seaweed, config(bucket, "v2", "v1", model=model,
                                   training={"strategy": "incremental", "replayFraction": 0.5}))
    assert result.returncode == 0, result.stderr
    store = ArtifactStore(s3, bucket)
    manifests = {v: store.read_manifest(prefix(v)) for v in ("v1", "v2")}
    for version, manifest in manifests.items():
        assert store.verify(prefix(version), manifest) == []  # model.onnx's checksum too
        assert manifest["model"]["format"] == "sklearn-joblib" and manifest["model"]["classes"] == ["no", "yes"]
        onnx = manifest["model"]["onnx"]
        assert onnx["verified"] is True, onnx
        assert onnx["labelsIdentical"] is True and "model.onnx" in manifest["files"]
        assert onnx["maxProbabilityDifference"] <= onnx["tolerance"] == 1e-4
        assert manifest["training"]["device"] == "cpu" and "no GPU" in manifest["training"]["deviceReason"]
        assert manifest["libraries"]["xgboost"] and manifest["training"]["phases"]["onnxSeconds"] >= 0
    assert manifests["v1"]["training"]["trees"] == 20 and manifests["v2"]["training"]["trees"] == 40
    assert manifests["v2"]["training"]["continuedFrom"] == "v1"
    boosters = {v: joblib.load(io.BytesIO(store.load_verified(prefix(v), m, "model.joblib")))
                .named_steps["estimator"].get_booster().get_dump() for v, m in manifests.items()}
    assert boosters["v2"][:20] == boosters["v1"]  # the parent's trees, unchanged, then 20 new ones
    # The champion is measured as it was (v1), not as the continued copy.
    comparison = manifests["v2"]["evaluation"]["comparison"]
    assert comparison["rows"] > 0 and comparison["champion"] != comparison["challenger"]


def test_window_training_forgets_what_it_should(seaweed, s3, bucket):
    # Old data follows the opposite label rule (concept drift); the last day follows the current one.
    old = dataset.churn_table(3000, 5, start=START, flip=True)
    new = dataset.churn_table(1500, 6, start=START + dt.timedelta(days=30))
    s3.put_object(Bucket=bucket, Key="history/old.parquet", Body=dataset.to_parquet(old))
    s3.put_object(Bucket=bucket, Key="incoming/new.parquet", Body=dataset.to_parquet(new))
    timestamp = {"timestampColumn": dataset.TIMESTAMP}
    assert train(seaweed, config(bucket, "v1", data=timestamp)).returncode == 0
    window = config(bucket, "v2", data=timestamp, training={"strategy": "window", "window": {"duration": "2d"}})
    assert train(seaweed, window).returncode == 0
    store = ArtifactStore(s3, bucket)
    probe = dataset.churn_table(2000, 7).to_pandas()
    accuracy = {}
    for version in ("v1", "v2"):
        manifest = store.read_manifest(prefix(version))
        model = joblib.load(io.BytesIO(store.load_verified(prefix(version), manifest, "model.joblib")))
        accuracy[version] = float((model.predict(probe[dataset.FEATURES]) == probe[dataset.TARGET]).mean())
    assert store.read_manifest(prefix("v2"))["data"]["rows"]["window"] == 1500
    assert accuracy["v2"] > 0.8 > accuracy["v1"] + 0.2, accuracy


def test_regression_task(seaweed, s3, bucket):
    table = dataset.churn_table(1000, 8)
    s3.put_object(Bucket=bucket, Key="history/a.parquet", Body=dataset.to_parquet(table))
    run = config(bucket, model={"estimator": "Ridge", "task": "regression", "target": "monthly_spend",
                                "features": ["tenure_months", "support_calls", "plan"], "params": {}})
    assert train(seaweed, run).returncode == 0
    manifest = ArtifactStore(s3, bucket).read_manifest(prefix("v1"))
    assert set(manifest["metrics"]) == {"rmse", "mae", "r2"}


def test_a_corrupt_object_is_a_data_error_with_its_name(seaweed, s3, bucket):
    s3.put_object(Bucket=bucket, Key="history/a.parquet", Body=dataset.to_parquet(dataset.churn_table(500, 1)))
    s3.put_object(Bucket=bucket, Key="incoming/broken.parquet", Body=b"PAR1 garbage")
    result = train(seaweed, config(bucket))
    assert result.returncode == 3
    assert "retrain-trainer: error: DataError:" in result.stderr and "broken.parquet" in result.stderr
    store = ArtifactStore(s3, bucket)
    assert store.read_manifest(prefix("v1")) is None
    error = store.read_error(prefix("v1"))
    assert error["reason"] == "DataError" and error["exitCode"] == 3


@pytest.mark.parametrize("body, message", [
    (b"", "is empty"),
    (b"tenure_months,monthly_spend,support_calls,plan,region,event_time,churned\n", "has no rows"),
    (b"tenure_months,monthly_spend,support_calls,plan,region,event_time,churned\nabc,1,1,basic,n,"
     b"2026-01-01T00:00:00Z,yes\n" * 60, "mixes types"),
])
def test_bad_batches_are_data_errors(seaweed, s3, bucket, body, message):
    s3.put_object(Bucket=bucket, Key="history/a.parquet", Body=dataset.to_parquet(dataset.churn_table(500, 1)))
    s3.put_object(Bucket=bucket, Key="incoming/bad.csv", Body=body)
    result = train(seaweed, config(bucket))
    assert result.returncode == 3 and message in result.stderr, result.stderr


def test_a_missing_column_is_named(seaweed, s3, bucket):
    table = dataset.churn_table(500, 1).drop_columns(["plan"])
    s3.put_object(Bucket=bucket, Key="history/a.parquet", Body=dataset.to_parquet(table))
    result = train(seaweed, config(bucket))
    assert result.returncode == 3 and "lacks column(s) plan" in result.stderr


def test_a_missing_bucket_is_a_storage_error(seaweed, s3, bucket):
    run = config(bucket, storage={"bucket": "no-such-models"}, data={"history": "s3://no-such-data/x/"})
    result = train(seaweed, run)
    assert result.returncode == 4, result.stderr
    assert "BucketNotFound" in result.stderr


def test_an_unknown_estimator_is_a_config_error(seaweed, bucket):
    result = train(seaweed, config(bucket, model={"estimator": "EvilImport", "target": "y"}))
    assert result.returncode == 2 and "unknown estimator" in result.stderr


def test_a_run_killed_half_way_leaves_no_manifest(seaweed, s3, bucket):
    s3.put_object(Bucket=bucket, Key="history/a.parquet", Body=dataset.to_parquet(dataset.churn_table(60000, 1)))
    run = config(bucket, model={"params": {"n_estimators": 400, "random_state": 0}})
    process = train(seaweed, run, wait=False)
    time.sleep(4)  # loading done, fitting 400 trees
    assert process.poll() is None, "the trainer finished too early for this test to mean anything"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)
    assert ArtifactStore(s3, bucket).read_manifest(prefix("v1")) is None
