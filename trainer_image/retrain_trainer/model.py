"""The model: a scikit-learn Pipeline that takes raw rows (numbers and strings) and predicts."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from retrain_contract.api.estimators import ESTIMATORS

from . import boosting
from .errors import ConfigError

ESTIMATOR_STEP = "estimator"
PREPARE_STEP = "prepare"
CATEGORICAL_STEP = "categorical"
IMPUTE_STEP, ENCODE_STEP = "impute", "encode"
MISSING_CATEGORY = ""


def new_estimator(name: str, params: dict[str, Any], device: boosting.Device | None = None) -> Any:
    """The allow-listed estimator with the policy's params (and, for XGBoost/LightGBM, the trainer's own)."""
    info = ESTIMATORS[name]
    cls = boosting.XGBClassifier if name == "XGBClassifier" else getattr(importlib.import_module(info.module), name)
    own = boosting.construction_params(name, device or boosting.Device("cpu", "not asked"))
    try:
        return cls(**{**params, **own})
    except TypeError as error:
        raise ConfigError(f"model.params do not fit {name}: {error}") from error


def split_columns(frame: pd.DataFrame, features: list[str]) -> tuple[list[str], list[str]]:
    """Numeric and categorical features (booleans count as categorical)."""
    types = pd.api.types
    numeric = [c for c in features if types.is_numeric_dtype(frame[c]) and not types.is_bool_dtype(frame[c])]
    return numeric, [c for c in features if c not in numeric]


def preprocessor(frame: pd.DataFrame, features: list[str]) -> ColumnTransformer:
    numeric, categorical = split_columns(frame, features)
    return ColumnTransformer([
        ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
        # A missing category is the category MISSING_CATEGORY (not the most frequent one): what the model
        # server sends an ONNX model for a missing value, so the converted model needs no imputer (onnx_export.py).
        (CATEGORICAL_STEP, Pipeline([
            (IMPUTE_STEP, SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
            (ENCODE_STEP, OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]), categorical),
    ])


def native_preprocessor(frame: pd.DataFrame, features: list[str]) -> ColumnTransformer:
    """For XGBoost/LightGBM: numbers as they are (trees need no scaling and route NaN themselves),
    categories as ordinal codes the estimator splits on natively; an unknown or missing category is NaN."""
    numeric, categorical = split_columns(frame, features)
    return ColumnTransformer([
        ("numeric", "passthrough", numeric),
        ("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                       encoded_missing_value=np.nan, dtype=np.float64), categorical),
    ])


def new_pipeline(name: str, params: dict[str, Any], frame: pd.DataFrame, features: list[str],
                 device: boosting.Device | None = None) -> Pipeline:
    estimator = new_estimator(name, params, device)
    if name in boosting.BOOSTING:
        prepare = native_preprocessor(frame, features)
        numeric, categorical = split_columns(frame, features)
        boosting.mark_categoricals(estimator, len(numeric), len(categorical))
    else:
        prepare = preprocessor(frame, features)
    return Pipeline([(PREPARE_STEP, prepare), (ESTIMATOR_STEP, estimator)])


def categorical_fit_kwargs(pipeline: Pipeline) -> dict[str, Any]:
    """LightGBM's `categorical_feature` for this pipeline's prepared columns ({} for the others)."""
    estimator = pipeline.named_steps[ESTIMATOR_STEP]
    if type(estimator).__name__ not in boosting.LIGHTGBM:
        return {}
    columns = {name: list(cols) for name, _, cols in pipeline.named_steps[PREPARE_STEP].transformers}
    return boosting.mark_categoricals(estimator, len(columns.get("numeric", [])), len(columns.get("categorical", [])))
