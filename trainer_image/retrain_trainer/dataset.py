"""Loading and validating the training data: clear errors that name the object and the column."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from retrain_contract.artifacts.errors import DataError
from retrain_contract.artifacts.objects import DataObject, list_data_objects

from .config import RunConfig
from .tables import read_table

OBJECT_COLUMN = "__object__"
MODIFIED_COLUMN = "__modified__"


@dataclass
class Loaded:
    frame: pd.DataFrame  # every row, with the object it came from
    objects: list[DataObject]
    history_uris: set[str]


def _read(client: Any, obj: DataObject, required: list[str]) -> pd.DataFrame:
    table = read_table(client, obj)
    if table.num_rows == 0:
        raise DataError(f"{obj.uri} has no rows")
    missing = [column for column in required if column not in table.column_names]
    if missing:
        raise DataError(f"{obj.uri} lacks column(s) {', '.join(missing)}")
    frame = table.to_pandas()
    frame[OBJECT_COLUMN] = obj.uri
    frame[MODIFIED_COLUMN] = pd.Timestamp(obj.last_modified).tz_convert("UTC") if obj.last_modified else pd.NaT
    return frame


def load(client: Any, config: RunConfig) -> Loaded:
    required = [config.target, *(config.features or ())]
    if config.timestamp_column:
        required.append(config.timestamp_column)
    history = list_data_objects(client, config.history) if config.history else []
    incoming = list_data_objects(client, config.incoming) if config.incoming else []
    objects = history + [obj for obj in incoming if obj.uri not in {h.uri for h in history}]
    if not objects:
        raise DataError(f"no data objects (.parquet, .csv) under {config.history or ''} {config.incoming or ''}")
    frames = [_read(client, obj, required) for obj in objects]
    frame = pd.concat(frames, ignore_index=True)
    return Loaded(frame=frame, objects=objects, history_uris={obj.uri for obj in history})


def feature_columns(frame: pd.DataFrame, config: RunConfig) -> list[str]:
    if config.features:
        return list(config.features)
    excluded = {config.target, config.timestamp_column, OBJECT_COLUMN, MODIFIED_COLUMN}
    return [c for c in frame.columns if c not in excluded and not pd.api.types.is_datetime64_any_dtype(frame[c])]


def validate(frame: pd.DataFrame, features: list[str], config: RunConfig) -> None:
    """The checks a bad batch fails before any training time is spent."""
    if len(frame) < config.min_rows:
        raise DataError(f"{len(frame)} rows, fewer than validation.minRows={config.min_rows}")
    for column in [*features, config.target]:
        null_share = float(frame[column].isna().mean())
        if null_share > config.max_null_fraction:
            raise DataError(f"column {column!r} is {null_share:.0%} null, more than "
                            f"validation.maxNullFraction={config.max_null_fraction}")
    if frame[config.target].isna().any():
        raise DataError(f"the target column {config.target!r} has nulls")
    if config.task == "regression" and not pd.api.types.is_numeric_dtype(frame[config.target]):
        raise DataError(f"the target column {config.target!r} is not numeric, but the task is regression")
    if config.task == "classification":
        if frame[config.target].nunique() < 2:
            raise DataError(f"the target column {config.target!r} has a single class")
        if config.labels is not None:
            unknown = sorted(set(map(str, frame[config.target].unique())) - set(map(str, config.labels)))
            if unknown:
                raise DataError(f"labels {unknown} are not in validation.labels {list(config.labels)}")
    for column in features:
        values = frame[column]
        if values.dtype == object:
            kinds = {type(v).__name__ for v in values.dropna().head(1000)}
            if len(kinds) > 1:
                raise DataError(f"column {column!r} mixes types {sorted(kinds)}")
