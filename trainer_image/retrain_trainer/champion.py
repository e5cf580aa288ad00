"""Challenger against champion, measured so the comparison is fair to both.

The champion was trained on most of the data the challenger is now tested on; scored on those
rows it would look better than it is (a random forest nearly memorises its training set). So
the two models are compared only on held-out rows from objects the champion never saw
(`comparison`), and forgetting is judged by the challenger on held-out rows of data the champion
knew, against the champion's own held-out value (`olderData`). The operator's gates judge these
numbers (retrain_operator.core.gates); this module only measures.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from . import evaluate
from .dataset import OBJECT_COLUMN

log = logging.getLogger(__name__)


def _scores(task: str, y_true: Any, y_pred: Any) -> dict[str, Any]:
    if task != "classification":
        return evaluate.regression(y_true, y_pred)
    scores = evaluate.classification(y_true, y_pred)
    scores.pop("confusionMatrix", None)  # the held-out one is in metrics.json; keep manifests small
    return scores


def classes_of(model: Any) -> list[str]:
    estimator = getattr(model, "named_steps", {}).get("estimator", model)
    return [str(c) for c in getattr(estimator, "classes_", [])]


def measure(challenger: Any, test: pd.DataFrame, features: list[str], target: str, task: str,
            etags: dict[str, str | None], champion: tuple[Any, dict[str, Any]] | None,
            champion_problem: str | None = None) -> dict[str, Any]:
    """The `evaluation` section of the manifest, apart from `heldOut`."""
    result: dict[str, Any] = {}
    if champion is None:
        if champion_problem:
            result["comparison"] = {"rows": 0, "error": champion_problem}
        return result
    model, manifest = champion
    result["champion"] = {"version": manifest.get("version")}
    seen = {(o.get("uri"), o.get("etag")) for o in ((manifest.get("data") or {}).get("objects") or [])}
    unseen = ~test[OBJECT_COLUMN].map(lambda uri: (uri, etags.get(uri)) in seen).to_numpy(dtype=bool)
    fresh, older = test[unseen], test[~unseen]

    comparison: dict[str, Any] = {"rows": len(fresh), "objects": int(fresh[OBJECT_COLUMN].nunique())}
    wanted = list((manifest.get("model") or {}).get("features") or features)
    missing = [name for name in wanted if name not in test.columns]
    if missing:
        comparison["error"] = f"the champion needs column(s) {', '.join(missing)}, absent from the new data"
    elif len(fresh):
        try:
            champion_predictions = model.predict(fresh[wanted])
        except Exception as error:  # a champion that cannot score new data is a finding, not a crash
            log.warning("the champion cannot score the comparison rows: %r", error)
            comparison["error"] = f"the champion cannot score the new data: {error!r}"[:500]
        else:
            comparison["challenger"] = _scores(task, fresh[target], challenger.predict(fresh[features]))
            comparison["champion"] = _scores(task, fresh[target], champion_predictions)
    result["comparison"] = comparison

    older_data: dict[str, Any] = {"rows": len(older), "championHeldOut": dict(manifest.get("metrics") or {})}
    if len(older):
        older_data["challenger"] = _scores(task, older[target], challenger.predict(older[features]))
    result["olderData"] = older_data

    if task == "classification":
        before, after = set(classes_of(model)), set(classes_of(challenger))
        result["newClasses"] = sorted(after - before)
        result["lostClasses"] = sorted(before - after)
    return result
