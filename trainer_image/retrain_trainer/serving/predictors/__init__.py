"""The served model behind one interface, chosen by the manifest: `model.format` and `model.onnx`.

Every loader gets bytes that already matched the manifest's sha256 (`read`); nothing else is
ever parsed or unpickled. A verified ONNX conversion (`model.onnx.verified`) is served with
onnxruntime in place of the native model; without one, or when onnxruntime cannot take it, the
native model is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from retrain_contract.artifacts.errors import DataError
from retrain_contract.artifacts.formats import MODEL_FORMATS, SKLEARN_JOBLIB
from retrain_contract.artifacts.layout import MODEL_FILE

from .base import Columns, Prediction, Predictor

log = logging.getLogger(__name__)
__all__ = ["Columns", "Prediction", "Predictor", "load_predictor"]


def _native(fmt: str, data: bytes, features: list[str], task: str, classes: tuple[str, ...]) -> Predictor:
    if fmt == SKLEARN_JOBLIB:
        from .sklearn import SklearnPredictor

        return SklearnPredictor(data, features, task)
    if fmt == "onnx":
        from .onnx import OnnxPredictor

        return OnnxPredictor(data, features, task, classes, "onnx")
    from .boosters import LightGBMPredictor, XGBoostPredictor

    return (XGBoostPredictor if fmt == "xgboost" else LightGBMPredictor)(data, features, task, classes)


def load_predictor(info: dict[str, Any], files: dict[str, Any], read: Callable[[str], bytes],
                   features: list[str]) -> Predictor:
    """The predictor for the manifest's `model` section; `read(name)` returns sha256-verified bytes."""
    fmt = str(info.get("format") or SKLEARN_JOBLIB)
    if fmt not in MODEL_FORMATS:
        raise DataError(f"model.format {fmt!r} is not one of {', '.join(MODEL_FORMATS)}")
    task = str(info.get("task") or "classification")
    classes = tuple(str(c) for c in info.get("classes") or ())
    converted = info.get("onnx") if isinstance(info.get("onnx"), dict) else None
    if fmt != "onnx" and converted and converted.get("verified") is True and converted.get("file") in files:
        data = read(str(converted["file"]))  # a checksum mismatch refuses the version: never a fallback
        try:
            from .onnx import OnnxPredictor

            return OnnxPredictor(data, features, task, classes, fmt)
        except Exception as error:  # onnxruntime's own errors share no base class worth naming
            log.warning("serving the native %s model: the verified ONNX model cannot be used: %s", fmt, error)
    return _native(fmt, read(str(info.get("file") or MODEL_FILE)), features, task, classes)
