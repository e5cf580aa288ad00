"""The model formats a manifest's `model.format` may name: what the model server can load.

Shared by the policy schema (a trainer image of your own declares one), the trainers and the
server, so the three never disagree on a name. Absent means `sklearn-joblib`: manifests written
before formats existed.
"""

from __future__ import annotations

SKLEARN_JOBLIB = "sklearn-joblib"
MODEL_FORMATS = (SKLEARN_JOBLIB, "xgboost", "lightgbm", "onnx")
