"""XGBoost and LightGBM inside the scikit-learn pipeline: labels, native categoricals, device, continuation.

The model stays a scikit-learn Pipeline (preprocessing + estimator) so that the model server,
the champion comparison and drift checks treat it like every other; only what these two
frameworks do differently is here. Categoricals reach them as ordinal codes marked categorical
(XGBoost `feature_types="c"`, LightGBM `categorical_feature`) instead of dense one-hot columns.
A continued model keeps its parent's fitted preprocessing, so a category's code never changes
between parent and child; a category the parent never saw becomes a missing value (NaN).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from retrain_contract.artifacts.errors import DataError

XGBOOST = ("XGBClassifier", "XGBRegressor")
LIGHTGBM = ("LGBMClassifier", "LGBMRegressor")
BOOSTING = (*XGBOOST, *LIGHTGBM)
DEFAULT_TREES = 100


def __getattr__(name: str) -> Any:
    """`XGBClassifier`, made on first use: a policy of another estimator never loads XGBoost (0.4-0.9 s)."""
    if name == "XGBClassifier":
        return _labeled_xgb_classifier()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _labeled_xgb_classifier() -> type:
    import xgboost

    class XGBClassifier(xgboost.XGBClassifier):
        """XGBoost's classifier taking any labels, as scikit-learn's classifiers do.

        XGBoost accepts only the labels 0..n-1; the training data's labels are strings ("yes", "no").
        The labels are kept in `labels_` (sorted, as scikit-learn orders `classes_`), so `predict`
        answers with them and `classes_` names predict_proba's columns; a continued model encodes the
        new rows with its parent's labels, so class k means the same class in both.
        """

        labels_: np.ndarray | None = None

        def fit(self, X: Any, y: Any, *, sample_weight: Any = None, **kwargs: Any) -> XGBClassifier:
            values = np.asarray(y)
            labels = self.labels_ if kwargs.get("xgb_model") is not None and self.labels_ is not None \
                else np.unique(values)
            codes = np.clip(np.searchsorted(labels, values), 0, len(labels) - 1)
            if not np.array_equal(labels[codes], values):
                unseen = sorted(set(map(str, values)) - set(map(str, labels)))
                raise DataError(f"labels {unseen} are new since the parent version; incremental training cannot "
                                "add classes: run strategy full")
            self.labels_ = None  # while XGBoost fits, classes_ is its own 0..n-1
            try:
                super().fit(X, codes, sample_weight=sample_weight, **kwargs)
            finally:
                self.labels_ = labels
            return self

        @property
        def classes_(self) -> np.ndarray:  # type: ignore[override]
            return np.arange(self.n_classes_) if self.labels_ is None else self.labels_

        def predict(self, X: Any, **kwargs: Any) -> Any:
            predicted = super().predict(X, **kwargs)
            if kwargs.get("output_margin") or self.labels_ is None:
                return predicted
            return self.labels_[np.asarray(predicted, dtype=int)]

    # Pickled as retrain_trainer.boosting.XGBClassifier, found again through __getattr__ above.
    XGBClassifier.__module__, XGBClassifier.__qualname__ = __name__, "XGBClassifier"
    return XGBClassifier


@dataclass(frozen=True)
class Device:
    """Where the estimator trains, and why there."""

    name: str  # "cuda" or "cpu"
    reason: str


def choose_device(estimator: str, gpus: int, detected: str) -> Device:
    """`cuda` only for XGBoost, when the policy gives the Job a GPU and the container sees one."""
    if estimator not in XGBOOST:
        return Device("cpu", f"{estimator} trains on the CPU")
    if gpus <= 0:
        return Device("cpu", "the policy gives training no GPU (training.resources.limits nvidia.com/gpu)")
    if detected != "cuda":
        return Device("cpu", f"the policy asks for {gpus} GPU(s) but nvidia-smi lists none in this container")
    return Device("cuda", f"the policy asks for {gpus} GPU(s) and nvidia-smi lists one")


def construction_params(estimator: str, device: Device) -> dict[str, Any]:
    """Parameters the trainer sets itself, over the policy's: the device, quiet logs."""
    if estimator in XGBOOST:
        return {"device": device.name}
    if estimator in LIGHTGBM:
        return {"verbosity": -1}
    return {}


def mark_categoricals(estimator: Any, numeric: int, categorical: int) -> dict[str, Any]:
    """Tell the estimator which prepared columns are category codes; the fit keyword arguments this needs.

    The preprocessor puts `numeric` columns first, then `categorical` code columns.
    """
    if type(estimator).__name__ in XGBOOST:
        if categorical:
            estimator.set_params(enable_categorical=True, feature_types=["q"] * numeric + ["c"] * categorical)
        return {}
    if type(estimator).__name__ in LIGHTGBM and categorical:
        return {"categorical_feature": list(range(numeric, numeric + categorical))}
    return {}


def continue_kwargs(estimator: Any) -> dict[str, Any]:
    """The fit keyword that continues boosting from the fitted `estimator`'s trees.

    The refit adds `new_trees` trees to the parent's (strategies.continue_from sets n_estimators);
    the parent's trees are kept as they are.
    """
    name = type(estimator).__name__
    if name in XGBOOST:
        return {"xgb_model": estimator.get_booster()}
    if name in LIGHTGBM:
        return {"init_model": estimator.booster_}
    raise ValueError(f"{name} does not continue a booster")


def new_trees(params: dict[str, Any]) -> int:
    """Trees a run adds: model.params.n_estimators, else 100 (both frameworks' default; XGBoost's param is None)."""
    return int(params.get("n_estimators") or DEFAULT_TREES)


def check_classes(estimator: Any, y: Any) -> None:
    """Continued boosting keeps the parent's classes: the rows must have all of them and no other."""
    known = getattr(estimator, "classes_", None)
    if known is None or not hasattr(estimator, "predict_proba"):
        return
    present, before = set(map(str, np.unique(np.asarray(y)))), set(map(str, known))
    if present - before:
        raise DataError(f"labels {sorted(present - before)} are new since the parent version; incremental "
                        "training cannot add classes: run strategy full")
    if before - present:
        raise DataError(f"the new rows and their replay have no example of {sorted(before - present)}; continued "
                        "boosting needs every class the parent knows: raise training.incremental.replayFraction "
                        "or run strategy full")


def trees(estimator: Any) -> int | None:
    """How many boosting rounds the fitted model has (a continued one: its parent's and its own)."""
    name = type(estimator).__name__
    if name in XGBOOST:
        return int(estimator.get_booster().num_boosted_rounds())
    if name in LIGHTGBM:
        return int(estimator.booster_.current_iteration())
    return None


def device_used(estimator: Any, planned: Device) -> str:
    """The device the fitted booster reports (XGBoost's own configuration); the plan elsewhere."""
    if type(estimator).__name__ not in XGBOOST:
        return planned.name
    config = json.loads(estimator.get_booster().save_config())
    return str(config["learner"]["generic_param"].get("device", planned.name))
