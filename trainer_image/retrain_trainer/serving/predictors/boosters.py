"""`xgboost` and `lightgbm`: a raw Booster over the manifest's features, every one a number.

Imported only when such a model is served, so the image's other formats never load them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Columns, Prediction, from_scores, numeric_matrix


class _Booster:
    backend = ""
    inline_rows = 1000  # microseconds per row on one thread

    def __init__(self, features: list[str], task: str, classes: tuple[str, ...]):
        self.features, self.task, self.classes = features, task, classes
        self._labels = np.asarray(classes, dtype=object) if classes else None
        self.has_probabilities = task == "classification"

    @property
    def format(self) -> str:
        return self.backend

    def numeric(self, features: list[str]) -> frozenset[str] | None:
        return frozenset(features)

    def scores(self, matrix: np.ndarray) -> Any:
        raise NotImplementedError

    def predict(self, columns: Columns, probabilities: bool) -> Prediction:
        return from_scores(self.scores(numeric_matrix(columns, self.features)), self.task, self._labels, probabilities)


class XGBoostPredictor(_Booster):
    backend = "xgboost"

    def __init__(self, data: bytes, features: list[str], task: str, classes: tuple[str, ...]):
        import xgboost

        super().__init__(features, task, classes)
        self.booster = xgboost.Booster(params={"nthread": 1})
        self.booster.load_model(bytearray(data))  # UBJSON or JSON, told apart by the bytes

    def scores(self, matrix: np.ndarray) -> Any:
        return self.booster.inplace_predict(matrix, validate_features=False)


class LightGBMPredictor(_Booster):
    backend = "lightgbm"

    def __init__(self, data: bytes, features: list[str], task: str, classes: tuple[str, ...]):
        import lightgbm

        super().__init__(features, task, classes)
        self.booster = lightgbm.Booster(model_str=data.decode())

    def scores(self, matrix: np.ndarray) -> Any:
        return self.booster.predict(matrix, num_threads=1)
