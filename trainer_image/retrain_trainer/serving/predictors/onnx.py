"""ONNX models in onnxruntime: a served `onnx` model, or the verified conversion beside a native one.

Two input conventions (docs/trainer-contract.md): one input per feature, named as the feature,
[N, 1], numeric (float/double/int64) or tensor(string); or a single 2-D numeric input with the
manifest's features as columns in order. Outputs: the label (or value) first; a classifier's
probabilities [N, classes] second, in the manifest's class order. The input mapping is worked out
once, at load, so a request only builds its arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from retrain_contract.artifacts.errors import DataError

from .base import Columns, Prediction, numeric_matrix

NUMERIC_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
                 "tensor(int32)": np.int32}


def _string_column(values: list[Any]) -> np.ndarray:
    # A missing category is the empty string: a string tensor has no null.
    return np.array(["" if v is None else str(v) for v in values], dtype=object).reshape(-1, 1)


class OnnxPredictor:
    backend = "onnxruntime"
    inline_rows = 1000

    def __init__(self, data: bytes, features: list[str], task: str, classes: tuple[str, ...], native_format: str):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # the server is one process per core: no thread pool to wake
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
        self.format, self.task, self.classes = native_format, task, classes
        self.features = features
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        self.has_probabilities = task == "classification" and len(outputs) > 1
        self.label_output = outputs[0].name
        self.outputs = [o.name for o in outputs[:2]] if self.has_probabilities else [self.label_output]
        self.feeds: list[tuple[str, Callable[[Columns], np.ndarray]]] = []
        self._numeric: frozenset[str]
        names = {i.name for i in inputs}
        if names == set(features):
            self._numeric = frozenset(i.name for i in inputs if i.type != "tensor(string)")
            self.feeds = [(i.name, self._per_feature(i.name, i.type)) for i in inputs]
        elif len(inputs) == 1 and inputs[0].type in NUMERIC_TYPES:
            dtype = NUMERIC_TYPES[inputs[0].type]
            self._numeric = frozenset(features)
            self.feeds = [(inputs[0].name, lambda columns: numeric_matrix(columns, features, dtype))]
        else:
            raise DataError(f"the ONNX model's inputs {sorted(names)} are neither one per feature {features} "
                            "nor a single numeric matrix")

    @staticmethod
    def _per_feature(name: str, kind: str) -> Callable[[Columns], np.ndarray]:
        if kind == "tensor(string)":
            return lambda columns: _string_column(columns[name])
        if kind not in NUMERIC_TYPES:
            raise DataError(f"the ONNX model's input {name} is {kind}: not a number or a string")
        dtype = NUMERIC_TYPES[kind]
        return lambda columns: np.array(columns[name], dtype=dtype).reshape(-1, 1)

    def numeric(self, features: list[str]) -> frozenset[str] | None:
        return self._numeric

    def predict(self, columns: Columns, probabilities: bool) -> Prediction:
        feeds = {name: build(columns) for name, build in self.feeds}
        want = probabilities and self.has_probabilities
        results = self.session.run(self.outputs if want else [self.label_output], feeds)
        values = np.asarray(results[0]).ravel()
        if not want:
            return Prediction(values)
        return Prediction(values, self._probabilities(results[1]))

    def _probabilities(self, output: Any) -> np.ndarray:
        if isinstance(output, list):  # a ZipMap output (list of {class: p}) despite the convention
            keys = list(output[0]) if output else []
            order = [next(k for k in keys if str(k) == c) for c in self.classes] if self.classes else keys
            return np.array([[row[k] for k in order] for row in output], dtype=np.float64)
        return np.asarray(output, dtype=np.float64)
