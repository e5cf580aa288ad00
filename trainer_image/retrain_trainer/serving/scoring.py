"""Scoring a checked request, shared by /predict and the Open Inference Protocol's infer.

Small requests to a fast backend (onnxruntime, a booster) are scored on the event loop: a thread
hop costs more than the prediction. Anything slower runs in a worker thread so that health checks
and metrics stay answered while it is scored. Metrics and capture see every endpoint alike.
"""

from __future__ import annotations

import asyncio
import logging

from .capture import RequestCapture
from .loaded import LoadedModel
from .metrics import ServingMetrics
from .predictors import Columns, Prediction
from .responses import ModelFailed

log = logging.getLogger(__name__)


async def score(loaded: LoadedModel, columns: Columns, rows: int, probabilities: bool) -> Prediction:
    """The prediction; ModelFailed (logged) when the model raises on these checked columns."""
    predictor = loaded.predictor
    try:
        if rows <= predictor.inline_rows:
            return predictor.predict(columns, probabilities)
        return await asyncio.get_running_loop().run_in_executor(None, predictor.predict, columns, probabilities)
    except Exception as error:  # a model that fails on valid input is a server error, said plainly
        log.exception("prediction failed")
        raise ModelFailed(f"prediction failed: {type(error).__name__}: {error}"[:500]) from error


def record(loaded: LoadedModel, metrics: ServingMetrics, capture: RequestCapture | None, columns: Columns,
           prediction: Prediction) -> None:
    """Count the rows (and classes) answered and keep the capture's sample of them."""
    values = prediction.values
    labels = [str(v) for v in values] if loaded.task == "classification" else None
    metrics.predictions(labels, len(values))
    if capture is not None and capture.add(columns, values):
        capture.flush_soon()
