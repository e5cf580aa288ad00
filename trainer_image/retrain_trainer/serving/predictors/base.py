"""What every served model format answers: labels or values, and class probabilities.

Requests arrive as checked columns (one list per feature: floats with NaN for a missing number,
strings, booleans or None for categorical values), so a format that needs no DataFrame never
pays for one, and each builds the arrays it takes in one step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

Columns = dict[str, list[Any]]


@dataclass(frozen=True)
class Prediction:
    values: np.ndarray  # labels (classification) or values (regression), one per row
    probabilities: np.ndarray | None = None  # [rows, classes], in the order of Predictor.classes


class Predictor(Protocol):
    format: str  # the manifest's model.format of the native model
    backend: str  # what computes: sklearn, onnxruntime, xgboost, lightgbm
    classes: tuple[str, ...]
    has_probabilities: bool
    inline_rows: int  # up to this many rows are scored on the event loop: cheaper than a thread hop

    def numeric(self, features: list[str]) -> frozenset[str] | None:
        """The features the model takes as numbers, when the model itself says; None: ask the profile."""

    def predict(self, columns: Columns, probabilities: bool) -> Prediction: ...


def from_scores(scores: np.ndarray, task: str, classes: np.ndarray | None, want: bool) -> Prediction:
    """Labels and probabilities from a booster's raw output: [N] of P(second class), or [N, classes].

    `classes` are the manifest's labels as an object array; without them a label is the column's index."""
    if task != "classification":
        return Prediction(np.asarray(scores, dtype=np.float64).ravel())
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        labels = (scores > 0.5).astype(np.intp)
        probabilities = np.column_stack([1.0 - scores, scores]) if want else None
    else:
        labels, probabilities = scores.argmax(axis=1), scores if want else None
    return Prediction(classes[labels] if classes is not None else labels.astype(str).astype(object), probabilities)


def numeric_matrix(columns: Columns, features: list[str], dtype: Any = np.float64) -> np.ndarray:
    """The features as one [rows, features] matrix: for models that take every feature as a number."""
    return np.ascontiguousarray(np.array([columns[name] for name in features], dtype=dtype).T)
