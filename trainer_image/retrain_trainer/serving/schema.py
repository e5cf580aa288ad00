"""The request schema of a model: which features, numeric or categorical, and row checks.

Pure: JSON rows in, columns (one list per feature) or an InputError (a 400 with a message naming
the row and the feature) out, so a client learns what is wrong instead of getting a stack trace or,
worse, a prediction made from a string coerced to NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

MAX_ROWS = 10_000


def frame_of(columns: dict[str, list[Any]], numeric: frozenset[str]) -> pd.DataFrame:
    """Checked columns as the DataFrame a pipeline takes: floats (NaN missing), or objects as they came."""
    return pd.DataFrame({name: pd.Series(values, dtype=float if name in numeric else object)
                         for name, values in columns.items()})


class InputError(ValueError):
    """A request the model cannot answer; the message is for the client."""


@dataclass(frozen=True)
class FeatureSchema:
    features: tuple[str, ...]
    numeric: frozenset[str]

    @classmethod
    def of(cls, model_numeric: frozenset[str] | None, features: list[str],
           profile: dict[str, Any] | None) -> FeatureSchema:
        """From the model's own column split when it has one (a pipeline, an ONNX graph's input types),
        else from the training profile."""
        numeric: set[str] = set(model_numeric or ())
        if model_numeric is None and profile:
            numeric = {name for name, feature in (profile.get("features") or {}).items()
                       if feature.get("kind") == "numeric"}
        return cls(tuple(features), frozenset(numeric & set(features)))

    def describe(self) -> dict[str, str]:
        return {name: "number" if name in self.numeric else "string" for name in self.features}

    def frame(self, body: Any) -> pd.DataFrame:
        """The rows of a request body as a DataFrame (what a scikit-learn pipeline takes)."""
        return frame_of(self.columns(body), self.numeric)

    def columns(self, body: Any) -> dict[str, list[Any]]:
        """The rows of a request body `{"rows": [{feature: value, ...}, ...]}`, checked, as columns: plain
        lists, from which each predictor builds the arrays it takes in one step."""
        if not isinstance(body, dict) or not isinstance(body.get("rows"), list):
            raise InputError('the body must be a JSON object with "rows": a list of objects')
        rows = body["rows"]
        if not rows:
            raise InputError('"rows" is empty')
        if len(rows) > MAX_ROWS:
            raise InputError(f"at most {MAX_ROWS} rows per request, got {len(rows)}")
        columns: dict[str, list[Any]] = {name: [] for name in self.features}
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                raise InputError(f"row {index} is not an object")
            missing = [name for name in self.features if name not in row]
            if missing:
                raise InputError(f"row {index} lacks feature(s) {', '.join(missing)}")
            for name in self.features:
                columns[name].append(self.value(index, name, row[name]))
        return columns

    def value(self, index: int, name: str, value: Any) -> Any:
        """One value checked: a float (NaN when missing) for a numeric feature, else a string or None."""
        if value is None:
            return math.nan if name in self.numeric else None  # imputed by the pipeline, as in training
        if name in self.numeric:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise InputError(f"row {index}: feature {name} must be a finite number, got {value!r}"[:300])
            return float(value)
        if not isinstance(value, str | int | float | bool):
            raise InputError(f"row {index}: feature {name} must be a string, got {type(value).__name__}")
        return value if isinstance(value, bool) else str(value)  # as the training data had them
