"""`sklearn-joblib`: the project's trainer's Pipeline, unpickled from verified bytes, scored on a DataFrame."""

from __future__ import annotations

import io
from typing import Any

import joblib
import numpy as np

from ..schema import frame_of
from .base import Columns, Prediction


class SklearnPredictor:
    format = "sklearn-joblib"
    backend = "sklearn"
    inline_rows = 0  # a pipeline takes milliseconds even on one row: always off the event loop

    def __init__(self, data: bytes, features: list[str], task: str):
        self.model: Any = joblib.load(io.BytesIO(data))
        self.features = features
        self.classes = tuple(str(c) for c in getattr(self.model, "classes_", ()))
        self.has_probabilities = task == "classification" and hasattr(self.model, "predict_proba")

    def numeric(self, features: list[str]) -> frozenset[str] | None:
        prepare = getattr(self.model, "named_steps", {}).get("prepare")
        if prepare is None or not hasattr(prepare, "transformers_"):
            return None
        return frozenset(c for name, _, columns in prepare.transformers_ if name == "numeric" for c in columns)

    def predict(self, columns: Columns, probabilities: bool) -> Prediction:
        chosen = {name: columns[name] for name in self.features}
        # Checked numeric values are floats (NaN when missing); a categorical value never is one.
        numeric = frozenset(n for n, values in chosen.items() if all(isinstance(v, float) for v in values))
        frame = frame_of(chosen, numeric)
        values = np.asarray(self.model.predict(frame))
        if probabilities and self.has_probabilities:
            return Prediction(values, np.asarray(self.model.predict_proba(frame)))
        return Prediction(values)
