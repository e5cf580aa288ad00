"""Every model format the server takes (docs/trainer-contract.md, "Model formats"), each served from real
S3 (SeaweedFS) by `retrain-trainer serve` after the sha256 check, answering as the model itself does."""

from __future__ import annotations

import json

import lightgbm
import numpy as np
import pytest
import xgboost
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import LogisticRegression

from retrain_contract.artifacts.store import ArtifactStore
from retrain_sandbox.model_versions import churn_frame, numeric_matrix, publish, sklearn_version

from .test_model_server import Server, http

CLASSES = ["no", "yes"]


def _serve_and_predict(seaweed, uri: str, rows: list[dict]) -> tuple[dict, str, str]:
    server = Server(seaweed, uri)
    try:
        server.wait_ready()
        status, body = http("POST", server.url + "/predict", {"rows": rows, "probabilities": True})
        assert status == 200, body
        schema = json.loads(http("GET", server.url + "/schema")[1])
        return json.loads(body), schema["format"], schema["backend"]
    finally:
        server.stop()


def _numeric_rows(matrix: np.ndarray) -> list[dict]:
    names = ["tenure_months", "monthly_spend", "support_calls", "plan", "region"]
    return [dict(zip(names, map(float, row), strict=True)) for row in matrix]


@pytest.fixture()
def data():
    features, target = churn_frame(800, seed=3)
    return numeric_matrix(features), (target == "yes").to_numpy(int)


def test_xgboost_booster(seaweed, s3, bucket, data):
    matrix, labels = data
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 3}, xgboost.DMatrix(matrix, label=labels),
                            num_boost_round=20)
    uri = publish(ArtifactStore(s3, bucket), "m/xgb/v1/", "v1", {"model.ubj": bytes(booster.save_raw("ubj"))},
                  {"file": "model.ubj", "format": "xgboost", "task": "classification", "classes": CLASSES})
    answer, fmt, backend = _serve_and_predict(seaweed, uri, _numeric_rows(matrix[:20]))
    expected = booster.predict(xgboost.DMatrix(matrix[:20]))
    assert (fmt, backend) == ("xgboost", "xgboost")
    assert answer["predictions"] == [CLASSES[int(p > 0.5)] for p in expected]
    assert np.allclose([p["yes"] for p in answer["probabilities"]], expected, atol=1e-6)


def test_lightgbm_booster(seaweed, s3, bucket, data):
    matrix, labels = data
    booster = lightgbm.train({"objective": "binary", "verbose": -1, "num_leaves": 7}, lightgbm.Dataset(matrix, labels),
                             num_boost_round=20)
    uri = publish(ArtifactStore(s3, bucket), "m/lgb/v1/", "v1", {"model.txt": booster.model_to_string().encode()},
                  {"file": "model.txt", "format": "lightgbm", "task": "classification", "classes": CLASSES})
    answer, fmt, backend = _serve_and_predict(seaweed, uri, _numeric_rows(matrix[:20]))
    expected = booster.predict(matrix[:20])
    assert (fmt, backend) == ("lightgbm", "lightgbm")
    assert answer["predictions"] == [CLASSES[int(p > 0.5)] for p in expected]
    assert np.allclose([p["yes"] for p in answer["probabilities"]], expected, atol=1e-6)


def test_onnx_with_a_single_matrix_input(seaweed, s3, bucket, data):
    matrix, labels = data
    model = LogisticRegression(max_iter=500).fit(matrix, np.array(CLASSES, dtype=object)[labels])
    onnx = convert_sklearn(model, initial_types=[("X", FloatTensorType([None, 5]))],
                           options={id(model): {"zipmap": False}}).SerializeToString()
    uri = publish(ArtifactStore(s3, bucket), "m/onnx/v1/", "v1", {"model.onnx": onnx},
                  {"file": "model.onnx", "format": "onnx", "task": "classification", "classes": CLASSES})
    answer, fmt, backend = _serve_and_predict(seaweed, uri, _numeric_rows(matrix[:20]))
    assert (fmt, backend) == ("onnx", "onnxruntime")
    assert answer["predictions"] == model.predict(matrix[:20]).tolist()
    assert np.allclose([p["yes"] for p in answer["probabilities"]], model.predict_proba(matrix[:20])[:, 1], atol=1e-5)


def test_a_pipeline_without_a_verified_conversion_is_served_natively(seaweed, s3, bucket):
    uri, pipeline = sklearn_version(ArtifactStore(s3, bucket), "m/plain/v1/", onnx=False)
    features, _ = churn_frame(10, seed=5)
    answer, fmt, backend = _serve_and_predict(seaweed, uri, features.to_dict("records"))
    assert (fmt, backend) == ("sklearn-joblib", "sklearn")
    assert answer["predictions"] == pipeline.predict(features).tolist()


def test_a_tampered_onnx_model_refuses_the_version_rather_than_falling_back(seaweed, s3, bucket):
    store = ArtifactStore(s3, bucket)
    uri, _ = sklearn_version(store, "m/tampered/v1/")
    store.put_bytes("m/tampered/v1/model.onnx", b"not the conversion that was verified")
    server = Server(seaweed, uri)
    assert server.process.wait(timeout=30) == 3
    assert "model.onnx: sha256 does not match" in server.stop()


def test_an_unknown_format_is_refused(seaweed, s3, bucket):
    uri = publish(ArtifactStore(s3, bucket), "m/pt/v1/", "v1", {"model.pt": b"weights"},
                  {"file": "model.pt", "format": "torchscript", "task": "classification"})
    server = Server(seaweed, uri)
    assert server.process.wait(timeout=30) == 3
    assert "model.format 'torchscript' is not one of" in server.stop()
