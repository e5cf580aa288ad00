"""The HTTP surface of the model server (aiohttp): /predict, the Open Inference Protocol (/v2/...),
/healthz, /readyz, /metrics, /schema.

Bodies are parsed and written with orjson and requests are checked straight into numpy columns,
so a one-row request to an ONNX model costs tens of microseconds beyond HTTP itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import v2
from .capture import RequestCapture
from .keys import CAPTURE, DRAINING, MAX_BODY, METRICS, MODEL, MODEL_NAME
from .loaded import LoadedModel
from .metrics import ServingMetrics
from .predictors import Prediction
from .responses import counted, json_response, read_json
from .scoring import record, score

__all__ = ["CAPTURE", "MAX_BODY", "METRICS", "MODEL", "MODEL_NAME", "build_app"]


def _answer(loaded: LoadedModel, prediction: Prediction) -> dict[str, Any]:
    answer: dict[str, Any] = {"modelVersion": loaded.version, "predictions": prediction.values.tolist()}
    if prediction.probabilities is not None:
        classes = loaded.classes
        answer["probabilities"] = [dict(zip(classes, row, strict=True)) for row in prediction.probabilities.tolist()]
    return answer


async def predict(request: web.Request) -> web.Response:
    return await counted(request, _predict)


async def _predict(request: web.Request) -> web.Response:
    loaded = request.app[MODEL]
    body = await read_json(request)
    columns = loaded.schema.columns(body)
    want_probabilities = bool(body.get("probabilities")) and loaded.has_probabilities
    prediction = await score(loaded, columns, len(body["rows"]), want_probabilities)
    record(loaded, request.app[METRICS], request.app.get(CAPTURE), columns, prediction)
    return json_response(_answer(loaded, prediction))


async def healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    loaded = request.app[MODEL]
    draining = request.app.get(DRAINING)
    if draining is not None and draining.is_set():  # stopping: no new traffic, what comes is still answered
        return json_response({"ready": False, "modelVersion": loaded.version, "uri": loaded.uri,
                              "reason": "shutting down"}, status=503)
    return json_response({"ready": True, "modelVersion": loaded.version, "uri": loaded.uri})


async def schema(request: web.Request) -> web.Response:
    loaded = request.app[MODEL]
    return json_response({"modelVersion": loaded.version, "task": loaded.task, "format": loaded.format,
                          "backend": loaded.backend, "features": loaded.schema.describe(),
                          "classes": list(loaded.classes)})


async def metrics_endpoint(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _periodic_flush(app: web.Application, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        capture = app.get(CAPTURE)
        if capture is not None:
            await capture.flush()


def build_app(loaded: LoadedModel, metrics: ServingMetrics, capture: RequestCapture | None = None,
              flush_seconds: float = 60.0, model_name: str = "model") -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[MODEL], app[METRICS], app[MODEL_NAME] = loaded, metrics, model_name
    if capture is not None:
        app[CAPTURE] = capture
        capture.on_written = metrics.captured.labels(version=metrics.version).inc

        async def flusher(app: web.Application):
            task = asyncio.ensure_future(_periodic_flush(app, flush_seconds))
            yield
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await capture.flush()  # what is pending when the pod stops is not lost

        app.cleanup_ctx.append(flusher)
    app.add_routes([web.post("/predict", predict), web.get("/healthz", healthz), web.get("/readyz", readyz),
                    web.get("/schema", schema), web.get("/metrics", metrics_endpoint), *v2.routes()])
    return app
