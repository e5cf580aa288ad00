"""Held-out metrics, in the shape metrics.json documents."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics


def classification(y_true: Any, y_pred: Any) -> dict[str, Any]:
    labels = sorted(set(map(str, np.unique(y_true))) | set(map(str, np.unique(y_pred))))
    y_true = np.asarray(y_true).astype(str)
    y_pred = np.asarray(y_pred).astype(str)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    return {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "f1Weighted": float(metrics.f1_score(y_true, y_pred, average="weighted", zero_division=0)),
        "f1Macro": float(metrics.f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "perClass": {label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                     for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)},
        "confusionMatrix": {"labels": labels,
                            "matrix": metrics.confusion_matrix(y_true, y_pred, labels=labels).tolist()},
    }


def regression(y_true: Any, y_pred: Any) -> dict[str, Any]:
    return {
        "rmse": float(np.sqrt(metrics.mean_squared_error(y_true, y_pred))),
        "mae": float(metrics.mean_absolute_error(y_true, y_pred)),
        "r2": float(metrics.r2_score(y_true, y_pred)),
    }


def headline(task: str, held_out: dict[str, Any]) -> dict[str, float]:
    keys = ("accuracy", "f1Weighted", "f1Macro") if task == "classification" else ("rmse", "mae", "r2")
    return {key: held_out[key] for key in keys}
