"""The model: a scikit-learn Pipeline that takes raw rows (numbers and strings) and predicts."""

from __future__ import annotations

import importlib
from typing import Any

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from retrain_contract.api.estimators import ESTIMATORS

from .errors import ConfigError

ESTIMATOR_STEP = "estimator"


def new_estimator(name: str, params: dict[str, Any]) -> Any:
    info = ESTIMATORS[name]
    cls = getattr(importlib.import_module(info.module), name)
    try:
        return cls(**params)
    except TypeError as error:
        raise ConfigError(f"model.params do not fit {name}: {error}") from error


def preprocessor(frame: pd.DataFrame, features: list[str]) -> ColumnTransformer:
    types = pd.api.types
    numeric = [c for c in features if types.is_numeric_dtype(frame[c]) and not types.is_bool_dtype(frame[c])]
    categorical = [c for c in features if c not in numeric]
    return ColumnTransformer([
        ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
        ("categorical", Pipeline([
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]), categorical),
    ])


def new_pipeline(name: str, params: dict[str, Any], frame: pd.DataFrame, features: list[str]) -> Pipeline:
    return Pipeline([("prepare", preprocessor(frame, features)), (ESTIMATOR_STEP, new_estimator(name, params))])
