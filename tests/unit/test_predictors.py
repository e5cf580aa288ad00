"""The served model behind one interface, per manifest: each format loaded from bytes and answering as the
model itself does; a verified ONNX conversion preferred, the native model the fallback."""

from __future__ import annotations

import io
import logging

import joblib
import lightgbm
import numpy as np
import pytest
import xgboost
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import LinearRegression

from retrain_contract.artifacts.errors import DataError
from retrain_sandbox import dataset
from retrain_sandbox.model_versions import churn_frame, fit_pipeline, numeric_matrix, to_onnx
from retrain_trainer.serving.predictors import load_predictor
from retrain_trainer.serving.schema import FeatureSchema

FEATURES = dataset.FEATURES


@pytest.fixture(scope="module")
def pipeline():
    features, target = churn_frame(1500)
    return fit_pipeline(features, target)


@pytest.fixture(scope="module")
def files(pipeline) -> dict[str, bytes]:
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    return {"model.joblib": buffer.getvalue(), "model.onnx": to_onnx(pipeline)}


def _info(**extra):
    return {"file": "model.joblib", "task": "classification", "classes": ["no", "yes"], **extra}


def _columns(predictor, frame) -> dict:
    schema = FeatureSchema.of(predictor.numeric(FEATURES), FEATURES, None)
    return schema.columns({"rows": frame.to_dict("records")})


def test_a_verified_conversion_is_served_by_onnxruntime_with_the_native_labels(pipeline, files):
    onnx = load_predictor(_info(onnx={"file": "model.onnx", "verified": True}), files, files.__getitem__, FEATURES)
    native = load_predictor(_info(), files, files.__getitem__, FEATURES)
    assert (onnx.format, onnx.backend, native.format, native.backend) == (
        "sklearn-joblib", "onnxruntime", "sklearn-joblib", "sklearn")
    assert onnx.numeric(FEATURES) == native.numeric(FEATURES) == {"tenure_months", "monthly_spend", "support_calls"}
    frame, _ = churn_frame(500, seed=4)
    fast, slow = onnx.predict(_columns(onnx, frame), True), native.predict(_columns(native, frame), True)
    assert fast.values.tolist() == slow.values.tolist() == pipeline.predict(frame).tolist()
    assert np.abs(fast.probabilities - slow.probabilities).max() < 1e-5
    assert onnx.predict(_columns(onnx, frame), False).probabilities is None


def test_a_conversion_not_marked_verified_is_not_used(files):
    for converted in ({"file": "model.onnx", "verified": False}, {"file": "missing.onnx", "verified": True}):
        assert load_predictor(_info(onnx=converted), files, files.__getitem__, FEATURES).backend == "sklearn"


def test_a_conversion_onnxruntime_cannot_load_falls_back_to_the_native_model(files, caplog):
    broken = {**files, "model.onnx": b"verified bytes, but not an ONNX graph"}
    with caplog.at_level(logging.WARNING):
        predictor = load_predictor(_info(onnx={"file": "model.onnx", "verified": True}), broken, broken.__getitem__,
                                   FEATURES)
    assert predictor.backend == "sklearn" and "cannot be used" in caplog.text


def test_only_verified_bytes_are_read(files):
    read: list[str] = []

    def verified(name: str) -> bytes:
        read.append(name)
        return files[name]

    load_predictor(_info(onnx={"file": "model.onnx", "verified": True}), files, verified, FEATURES)
    assert read == ["model.onnx"]  # the native model is not even read when the conversion serves


def test_a_missing_category_reaches_onnx_as_the_empty_string(files):
    onnx = load_predictor(_info(onnx={"file": "model.onnx", "verified": True}), files, files.__getitem__, FEATURES)
    row = {"tenure_months": 12, "monthly_spend": None, "support_calls": 3, "plan": None, "region": "eu"}
    schema = FeatureSchema.of(onnx.numeric(FEATURES), FEATURES, None)
    assert onnx.predict(schema.columns({"rows": [row]}), True).probabilities.shape == (1, 2)


def test_an_onnx_model_with_one_matrix_input_takes_every_feature_as_a_number():
    frame, target = churn_frame(400)
    matrix = numeric_matrix(frame)
    model = LinearRegression().fit(matrix, (target == "yes").to_numpy(float))
    data = convert_sklearn(model, initial_types=[("X", FloatTensorType([None, 5]))]).SerializeToString()
    files = {"model.onnx": data}
    predictor = load_predictor({"file": "model.onnx", "format": "onnx", "task": "regression"}, files,
                               files.__getitem__, FEATURES)
    assert predictor.numeric(FEATURES) == set(FEATURES) and not predictor.has_probabilities
    columns = {name: matrix[:, i].tolist() for i, name in enumerate(FEATURES)}
    assert np.allclose(predictor.predict(columns, False).values, model.predict(matrix), atol=1e-4)


def test_onnx_inputs_that_fit_neither_convention_are_refused(files):
    bad = {"model.onnx": files["model.onnx"]}
    with pytest.raises(DataError, match="neither one per feature"):
        load_predictor({"file": "model.onnx", "format": "onnx"}, bad, bad.__getitem__, ["a", "b"])


def test_xgboost_multiclass_labels_come_from_the_manifests_classes():
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(300, 5))
    labels = np.digitize(matrix[:, 0], [-0.5, 0.5])
    booster = xgboost.train({"objective": "multi:softprob", "num_class": 3}, xgboost.DMatrix(matrix, label=labels), 10)
    files = {"model.json": bytes(booster.save_raw("json"))}
    predictor = load_predictor({"file": "model.json", "format": "xgboost", "task": "classification",
                                "classes": ["low", "mid", "high"]}, files, files.__getitem__, FEATURES)
    answer = predictor.predict({name: matrix[:, i].tolist() for i, name in enumerate(FEATURES)}, True)
    expected = booster.predict(xgboost.DMatrix(matrix))
    assert np.allclose(answer.probabilities, expected, atol=1e-6)
    assert answer.values.tolist() == [["low", "mid", "high"][i] for i in expected.argmax(axis=1)]


def test_lightgbm_regression_answers_values():
    rng = np.random.default_rng(1)
    matrix = rng.normal(size=(300, 5))
    target = matrix @ np.arange(5)
    booster = lightgbm.train({"objective": "regression", "verbose": -1}, lightgbm.Dataset(matrix, target), 20)
    files = {"model.txt": booster.model_to_string().encode()}
    predictor = load_predictor({"file": "model.txt", "format": "lightgbm", "task": "regression"}, files,
                               files.__getitem__, FEATURES)
    answer = predictor.predict({name: matrix[:, i].tolist() for i, name in enumerate(FEATURES)}, False)
    assert (predictor.format, predictor.backend) == ("lightgbm", "lightgbm")
    assert np.allclose(answer.values, booster.predict(matrix))


def test_an_unknown_format_is_a_data_error():
    with pytest.raises(DataError, match=r"model\.format 'pmml' is not one of sklearn-joblib, xgboost, lightgbm, onnx"):
        load_predictor({"format": "pmml"}, {}, lambda name: b"", FEATURES)
