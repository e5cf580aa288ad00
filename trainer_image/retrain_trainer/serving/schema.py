"""The request schema of a model: which features, numeric or categorical, and row checks.

Pure: JSON rows in, a DataFrame or an InputError (a 400 with a message naming the row and the
feature) out, so a client learns what is wrong instead of getting a stack trace or, worse, a
prediction made from a string coerced to NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

MAX_ROWS = 10_000


class InputError(ValueError):
    """A request the model cannot answer; the message is for the client."""


@dataclass(frozen=True)
class FeatureSchema:
    features: tuple[str, ...]
    numeric: frozenset[str]

    @classmethod
    def of(cls, model: Any, features: list[str], profile: dict[str, Any] | None) -> FeatureSchema:
        """From the pipeline's own column split when it has one, else from the training profile."""
        prepare = getattr(model, "named_steps", {}).get("prepare")
        numeric: set[str] = set()
        if prepare is not None and hasattr(prepare, "transformers_"):
            for name, _, columns in prepare.transformers_:
                if name == "numeric":
                    numeric.update(columns)
        elif profile:
            numeric = {name for name, feature in (profile.get("features") or {}).items()
                       if feature.get("kind") == "numeric"}
        return cls(tuple(features), frozenset(numeric & set(features)))

    def describe(self) -> dict[str, str]:
        return {name: "number" if name in self.numeric else "string" for name in self.features}

    def frame(self, body: Any) -> pd.DataFrame:
        """The rows of a request body `{"rows": [{feature: value, ...}, ...]}`, checked."""
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
                columns[name].append(self._value(index, name, row[name]))
        return pd.DataFrame({name: pd.Series(values, dtype=float if name in self.numeric else object)
                             for name, values in columns.items()})

    def _value(self, index: int, name: str, value: Any) -> Any:
        if value is None:
            return math.nan if name in self.numeric else None  # imputed by the pipeline, as in training
        if name in self.numeric:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise InputError(f"row {index}: feature {name} must be a finite number, got {value!r}"[:300])
            return float(value)
        if not isinstance(value, str | int | float | bool):
            raise InputError(f"row {index}: feature {name} must be a string, got {type(value).__name__}")
        return value if isinstance(value, bool) else str(value)  # as the training data had them
