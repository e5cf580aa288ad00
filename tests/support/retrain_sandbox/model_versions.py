"""Model versions of every served format, written to S3 as a trainer would (files, then the manifest).

For the model server's tests and benchmark: a scikit-learn pipeline with its verified ONNX
conversion beside it (what the project's trainer ships), and raw xgboost, lightgbm and ONNX
models as a trainer image of one's own would write them.
"""

from __future__ import annotations

import io
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import Pipeline

from retrain_contract.artifacts.checksums import sha256_bytes
from retrain_contract.artifacts.store import ArtifactStore
from retrain_trainer import model as trainer_model
from retrain_trainer import onnx_export

from . import dataset

NUMERIC = ["tenure_months", "monthly_spend", "support_calls"]
CATEGORICAL = ["plan", "region"]


def churn_frame(rows: int, seed: int = 1) -> tuple[pd.DataFrame, pd.Series]:
    table = dataset.churn_table(rows, seed).to_pandas()
    features = table[dataset.FEATURES].copy()
    for name in CATEGORICAL:
        features[name] = features[name].astype(object)
    for name in NUMERIC:
        features[name] = features[name].astype(float)
    return features, table[dataset.TARGET].astype(object)


def fit_pipeline(features: pd.DataFrame, target: pd.Series, estimator: Any = None) -> Pipeline:
    """The project's trainer's pipeline (retrain_trainer.model's preprocessing) around `estimator`."""
    model = estimator if estimator is not None else SGDClassifier(loss="log_loss", random_state=0)
    prepare = trainer_model.preprocessor(features, dataset.FEATURES)
    return Pipeline([(trainer_model.PREPARE_STEP, prepare), (trainer_model.ESTIMATOR_STEP, model)]).fit(
        features, target)


def to_onnx(pipeline: Pipeline) -> bytes:
    """As the project's trainer converts it (retrain_trainer.onnx_export): one input per feature, label then
    probabilities."""
    return onnx_export.convert(pipeline, churn_frame(10)[0], dataset.FEATURES, "classification")


def publish(store: ArtifactStore, prefix: str, version: str, files: dict[str, bytes], model: dict[str, Any]) -> str:
    """Write the files, then a manifest listing their sha256; the version's s3:// URI."""
    for name, body in files.items():
        store.put_bytes(prefix + name, body)
    manifest = {"version": version, "files": {n: {"sha256": sha256_bytes(b), "size": len(b)} for n, b in files.items()},
                "metrics": {}, "model": {"features": dataset.FEATURES, **model}}
    store.put_manifest(prefix + "manifest.json", manifest)
    return f"s3://{store.bucket}/{prefix}"


def sklearn_version(store: ArtifactStore, prefix: str, version: str = "v1", onnx: bool = True,
                    rows: int = 2000) -> tuple[str, Pipeline]:
    """A scikit-learn pipeline and, with `onnx`, its conversion verified on `rows` rows as the contract says."""
    features, target = churn_frame(rows)
    pipeline = fit_pipeline(features, target)
    files = {"model.joblib": _joblib(pipeline)}
    model: dict[str, Any] = {"file": "model.joblib", "format": "sklearn-joblib", "task": "classification",
                             "estimator": "SGDClassifier", "classes": [str(c) for c in pipeline.classes_]}
    if onnx:
        import skl2onnx

        files["model.onnx"] = to_onnx(pipeline)
        model["onnx"] = {"file": "model.onnx", "verified": True, "rows": rows, "labelsIdentical": True,
                         "maxProbabilityDifference": 0.0, "tolerance": 1e-4,
                         "converter": f"skl2onnx {skl2onnx.__version__}", "opset": 15}
    return publish(store, prefix, version, files, model), pipeline


def numeric_matrix(features: pd.DataFrame) -> np.ndarray:
    """Every feature as a number, for the raw boosters (categories as their index)."""
    columns = [features[name].to_numpy(float) for name in NUMERIC]
    columns += [pd.Categorical(features[name], categories=sorted(set(features[name]))).codes.astype(float)
                for name in CATEGORICAL]
    return np.column_stack(columns)


def _joblib(model: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()
