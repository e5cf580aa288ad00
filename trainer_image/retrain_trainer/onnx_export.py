"""The fitted pipeline as ONNX (`model.onnx`), shipped only when it answers as the pipeline does.

The model server can run ONNX without scikit-learn's Python overhead, but a conversion can be
subtly wrong (a converter without some option, a float32 input where the pipeline used float64).
So each conversion is checked here on held-out rows with onnxruntime before it is shipped: the
same labels (regressors: the same values within the tolerance) and probabilities within
PROBABILITY_TOLERANCE. A model that cannot be converted or verified ships without model.onnx
and says why; ONNX never fails a run.

The graph's contract (docs/trainer-contract.md): one input per feature, named after it, of shape
[None, 1]: float for numeric features, string for the others; classifiers output first the label,
then the probabilities [N, n_classes] in the order of the manifest's `model.classes`; regressors
output the values [N, 1].
"""

from __future__ import annotations

import copy
import logging
import warnings
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from . import boosting
from .model import (
    CATEGORICAL_STEP,
    ENCODE_STEP,
    ESTIMATOR_STEP,
    IMPUTE_STEP,
    MISSING_CATEGORY,
    PREPARE_STEP,
    split_columns,
)

log = logging.getLogger(__name__)

# float32 inputs and float32 tree sums: a few hundred trees accumulate rounding of about 1e-6;
# 1e-4 leaves room for that and is still far below any difference a decision threshold or a
# calibration would notice.
PROBABILITY_TOLERANCE = 1e-4
# Regression values: relative to the value's size (at least 1), for the same reason.
VALUE_TOLERANCE = 1e-4
VERIFY_ROWS = 5000
OPSET = {"": 17, "ai.onnx.ml": 3}
_registered = False


def _register() -> None:
    """skl2onnx knows scikit-learn; XGBoost's and LightGBM's converters come from onnxmltools."""
    global _registered
    if _registered:
        return
    from lightgbm import LGBMClassifier, LGBMRegressor
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
    from xgboost import XGBRegressor

    from .boosting import XGBClassifier

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    for cls, alias, converter in ((XGBClassifier, "RetrainXGBClassifier", convert_xgboost),
                                  (LGBMClassifier, "LightGbmLGBMClassifier", convert_lightgbm)):
        update_registered_converter(cls, alias, calculate_linear_classifier_output_shapes, converter,
                                    options=classifier_options)
    for cls, alias, converter in ((XGBRegressor, "XGBoostXGBRegressor", convert_xgboost),
                                  (LGBMRegressor, "LightGbmLGBMRegressor", convert_lightgbm)):
        update_registered_converter(cls, alias, calculate_linear_regressor_output_shapes, converter)
    _registered = True


def convert(pipeline: Any, frame: pd.DataFrame, features: list[str], task: str) -> bytes:
    """The serialized ONNX model of `pipeline`; raises whatever the converter raises."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    estimator = pipeline.named_steps[ESTIMATOR_STEP]
    if type(estimator).__name__ in boosting.BOOSTING:
        _register()
    numeric, _ = split_columns(frame, features)
    inputs = [(name, FloatTensorType([None, 1]) if name in numeric else StringTensorType([None, 1]))
              for name in features]
    options = {id(estimator): {"zipmap": False}} if task == "classification" else None
    # onnxmltools takes n_estimators for the number of boosting rounds; a continued model's is
    # only the rounds its last run added, so it would read a binary model as a multi-class one.
    rounds, step = boosting.trees(estimator), estimator.get_params().get("n_estimators")
    try:
        if rounds is not None:
            estimator.set_params(n_estimators=rounds)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = convert_sklearn(_without_category_imputer(pipeline), initial_types=inputs, options=options,
                                    target_opset=OPSET)
    finally:
        if rounds is not None:
            estimator.set_params(n_estimators=step)
    return model.SerializeToString()


def _without_category_imputer(pipeline: Any) -> Any:
    """The pipeline as ONNX sees it: skl2onnx cannot convert an imputer of strings, and needs none, since a
    missing category reaches the ONNX model as MISSING_CATEGORY already (feed() here, and the model server),
    which is what the imputer fills in. A copy: the pipeline itself is what model.joblib holds."""
    prepare = pipeline.named_steps.get(PREPARE_STEP)
    fitted = getattr(prepare, "transformers_", None)
    if not fitted:
        return pipeline
    changed = []
    for name, transformer, columns in fitted:
        steps = getattr(transformer, "named_steps", {})
        imputer = steps.get(IMPUTE_STEP)
        if name == CATEGORICAL_STEP and ENCODE_STEP in steps and getattr(imputer, "fill_value", None) == \
                MISSING_CATEGORY:
            transformer = steps[ENCODE_STEP]
        changed.append((name, transformer, columns))
    view = copy.copy(prepare)
    view.transformers_ = changed
    return Pipeline([(PREPARE_STEP, view), (ESTIMATOR_STEP, pipeline.named_steps[ESTIMATOR_STEP])])


def feed(frame: pd.DataFrame, features: list[str], numeric: list[str]) -> dict[str, np.ndarray]:
    """The ONNX inputs for these rows: float32 numbers (NaN for missing), strings ("" for missing)."""
    inputs: dict[str, np.ndarray] = {}
    for name in features:
        column = frame[name]
        if name in numeric:
            inputs[name] = column.to_numpy(dtype=np.float32, na_value=np.nan).reshape(-1, 1)
        else:
            inputs[name] = np.array([MISSING_CATEGORY if pd.isna(v) else str(v) for v in column],
                                    dtype=object).reshape(-1, 1)
    return inputs


def verify(data: bytes, pipeline: Any, rows: pd.DataFrame, features: list[str], task: str) -> dict[str, Any]:
    """Run the ONNX model and the pipeline on the same rows; the manifest's `model.onnx` fields."""
    import onnxruntime

    numeric, _ = split_columns(rows, features)
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    outputs = session.run(None, feed(rows, features, numeric))
    x = rows[features]
    result: dict[str, Any] = {"rows": len(rows)}
    if task == "classification":
        classes = [str(c) for c in pipeline.named_steps[ESTIMATOR_STEP].classes_]
        expected_labels = np.asarray(pipeline.predict(x)).astype(str)
        labels = np.asarray(outputs[0]).reshape(-1).astype(str)
        probabilities = np.asarray(outputs[1], dtype=np.float64)
        expected = np.asarray(pipeline.predict_proba(x), dtype=np.float64)
        if probabilities.shape != expected.shape:
            return {**result, "verified": False,
                    "reason": f"probabilities of shape {probabilities.shape}, the pipeline's are {expected.shape} "
                              f"(classes {classes})"}
        difference = float(np.max(np.abs(probabilities - expected))) if len(rows) else 0.0
        identical = bool(np.array_equal(labels, expected_labels))
        result.update(labelsIdentical=identical, maxProbabilityDifference=difference,
                      tolerance=PROBABILITY_TOLERANCE)
        ok = identical and difference <= PROBABILITY_TOLERANCE
        if not ok:
            mismatched = int(np.sum(labels != expected_labels))
            result["reason"] = (f"{mismatched} of {len(rows)} labels differ" if not identical else
                                f"probabilities differ by up to {difference:.3g} (tolerance {PROBABILITY_TOLERANCE})")
    else:
        values = np.asarray(outputs[0], dtype=np.float64).reshape(-1)
        expected = np.asarray(pipeline.predict(x), dtype=np.float64).reshape(-1)
        relative = np.abs(values - expected) / np.maximum(1.0, np.abs(expected))
        difference = float(np.max(relative)) if len(rows) else 0.0
        result.update(maxValueDifference=difference, tolerance=VALUE_TOLERANCE)
        ok = difference <= VALUE_TOLERANCE
        if not ok:
            result["reason"] = f"values differ by up to {difference:.3g} relative (tolerance {VALUE_TOLERANCE})"
    return {**result, "verified": ok}


def export(pipeline: Any, train: pd.DataFrame, held_out: pd.DataFrame, features: list[str],
           task: str) -> tuple[bytes | None, dict[str, Any]]:
    """(model.onnx's bytes or None, the manifest's `model.onnx`). Never raises: ONNX is an extra."""
    try:
        data = convert(pipeline, train, features, task)
    except Exception as error:  # an unsupported step or option: the run goes on without ONNX
        log.info("no ONNX model: the converter refused the pipeline: %r", error)
        return None, {"verified": False, "reason": f"conversion failed: {error!r}"[:500]}
    try:
        checked = verify(data, pipeline, held_out.head(VERIFY_ROWS), features, task)
    except Exception as error:
        log.info("no ONNX model: onnxruntime could not run the conversion: %r", error)
        return None, {"verified": False, "reason": f"verification failed: {error!r}"[:500]}
    if not checked["verified"]:
        log.info("no ONNX model: %s", checked.get("reason"))
        return None, checked
    return data, {"file": ONNX_FILE, **checked, "converter": f"skl2onnx {metadata.version('skl2onnx')}",
                  "opset": OPSET[""]}


ONNX_FILE = "model.onnx"
