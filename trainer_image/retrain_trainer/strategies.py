"""Which rows to train on, with what weights, and whether to start from the parent model.

Row selection is pure (frames in, frames out) so each strategy's choice is unit-tested without
S3; fitting is separate so the three strategies share one evaluation and one publication.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from retrain_contract.api.estimators import ESTIMATORS
from retrain_contract.artifacts.errors import DataError

from . import boosting
from .config import RunConfig
from .dataset import MODIFIED_COLUMN, OBJECT_COLUMN
from .errors import ConfigError
from .model import ESTIMATOR_STEP, PREPARE_STEP, categorical_fit_kwargs


@dataclass
class Selection:
    frame: pd.DataFrame
    weights: np.ndarray | None = None
    rows: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


def select_full(frame: pd.DataFrame, new_uris: set[str]) -> Selection:
    new = int(frame[OBJECT_COLUMN].isin(new_uris).sum())
    return Selection(frame, rows={"history": len(frame) - new, "new": new})


def select_incremental(frame: pd.DataFrame, new_uris: set[str], replay_fraction: float, seed: int) -> Selection:
    """New rows plus a replay sample of older rows, so replay is `replay_fraction` of the result."""
    is_new = frame[OBJECT_COLUMN].isin(new_uris)
    new, old = frame[is_new], frame[~is_new]
    if new.empty:
        raise DataError("no new data since the parent version: every object was used before")
    wanted = round(len(new) * replay_fraction / (1.0 - replay_fraction)) if replay_fraction else 0
    replay = old.sample(n=min(wanted, len(old)), random_state=seed) if wanted and len(old) else old.iloc[0:0]
    mixed = pd.concat([new, replay]).sample(frac=1.0, random_state=seed)
    return Selection(mixed, rows={"new": len(new), "replay": len(replay), "history": len(old)},
                     notes={"replayShare": (len(replay) / len(mixed)) if len(mixed) else 0.0})


def row_times(frame: pd.DataFrame, timestamp_column: str | None) -> pd.Series:
    if timestamp_column:
        return pd.to_datetime(frame[timestamp_column], utc=True)
    return pd.to_datetime(frame[MODIFIED_COLUMN], utc=True)


def select_window(frame: pd.DataFrame, timestamp_column: str | None, window_seconds: float,
                  half_life_seconds: float | None) -> Selection:
    times = row_times(frame, timestamp_column)
    newest = times.max()
    keep = times >= newest - pd.Timedelta(seconds=window_seconds)
    kept = frame[keep.to_numpy()]
    weights = None
    if half_life_seconds:
        age = (newest - times[keep]).dt.total_seconds().to_numpy()
        weights = np.power(0.5, age / half_life_seconds)
    return Selection(kept, weights=weights, rows={"history": len(frame), "window": len(kept)},
                     notes={"windowStart": str(newest - pd.Timedelta(seconds=window_seconds)),
                            "windowEnd": str(newest)})


def continue_from(parent: Any, config: RunConfig, device: boosting.Device | None = None) -> Any:
    """Make the parent's estimator ready to continue: more trees / iterations, reuse its state."""
    estimator = parent.named_steps[ESTIMATOR_STEP]
    info = ESTIMATORS[config.estimator]
    if type(estimator).__name__ != config.estimator:
        raise ConfigError(f"the parent model is a {type(estimator).__name__}, the policy asks for {config.estimator}: "
                          "use strategy full to switch estimators")
    if info.incremental == "warm_start":
        # Ensembles grow by the policy's own size per run (the new members learn the new data);
        # linear models start from the parent's coefficients.
        params = estimator.get_params()
        growing = "max_iter" if config.estimator.startswith("HistGradientBoosting") else \
            ("n_estimators" if "n_estimators" in params else None)
        extra: dict[str, Any] = {"warm_start": True}
        if growing:
            step = int(config.params.get(growing, type(estimator)().get_params()[growing]))
            extra[growing] = int(params[growing]) + step
        estimator.set_params(**extra)
    elif info.incremental == "boosting":
        # The continuation adds the policy's n_estimators trees (boosting.continue_kwargs), on this
        # run's device; the policy's other params apply to the new trees.
        own = boosting.construction_params(config.estimator, device or boosting.Device("cpu", "not asked"))
        estimator.set_params(n_estimators=boosting.new_trees(config.params), **own)
    return parent


def fit(pipeline: Any, selection: Selection, features: list[str], target: str, *, incremental: bool,
        config: RunConfig) -> Any:
    """Fit (or continue fitting) the pipeline on the selected rows."""
    x, y = selection.frame[features], selection.frame[target]
    estimator = pipeline.named_steps[ESTIMATOR_STEP]
    fit_params: dict[str, Any] = {}
    if selection.weights is not None:
        from sklearn.utils.validation import has_fit_parameter

        if not has_fit_parameter(estimator, "sample_weight"):
            raise ConfigError(f"{config.estimator} does not take sample weights: unset training.window.halfLife")
        fit_params["sample_weight"] = selection.weights
    fit_params.update(categorical_fit_kwargs(pipeline))
    if not incremental:
        pipeline.fit(x, y, **{f"{ESTIMATOR_STEP}__{k}": v for k, v in fit_params.items()})
        return pipeline
    prepared = pipeline.named_steps[PREPARE_STEP].transform(x)  # the parent's preprocessing, unchanged
    if ESTIMATORS[config.estimator].incremental == "boosting":
        boosting.check_classes(estimator, y)
        estimator.fit(prepared, y, **fit_params, **boosting.continue_kwargs(estimator))
    elif ESTIMATORS[config.estimator].incremental == "partial_fit":
        known = getattr(estimator, "classes_", None)
        if known is not None:
            unseen = sorted(set(map(str, pd.unique(y))) - set(map(str, known)))
            if unseen:
                raise DataError(f"labels {unseen} are new since the parent version; incremental training cannot "
                                "add classes: run strategy full")
        estimator.partial_fit(prepared, y, **fit_params)
    else:
        estimator.fit(prepared, y, **fit_params)
    return pipeline
