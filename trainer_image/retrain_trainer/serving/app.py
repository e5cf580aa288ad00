"""The HTTP surface of the model server (aiohttp): /predict, /healthz, /readyz, /metrics, /schema.

Prediction runs in a worker thread so that health checks and metrics stay answered while a
large request is being scored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .capture import RequestCapture
from .loaded import LoadedModel
from .metrics import ServingMetrics
from .schema import InputError

log = logging.getLogger(__name__)
MODEL = web.AppKey("model", LoadedModel)
METRICS = web.AppKey("metrics", ServingMetrics)
CAPTURE = web.AppKey("capture", RequestCapture)
MAX_BODY = 32 * 1024 * 1024


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _predict(loaded: LoadedModel, frame: Any, probabilities: bool) -> dict[str, Any]:
    predictions = loaded.model.predict(frame[list(loaded.schema.features)])
    answer: dict[str, Any] = {"modelVersion": loaded.version, "predictions": predictions.tolist()}
    if probabilities and loaded.has_probabilities:
        classes = [str(c) for c in loaded.model.classes_]
        answer["probabilities"] = [dict(zip(classes, map(float, row), strict=True))
                                   for row in loaded.model.predict_proba(frame[list(loaded.schema.features)])]
    return answer


async def predict(request: web.Request) -> web.Response:
    loaded, metrics = request.app[MODEL], request.app[METRICS]
    started = time.perf_counter()
    status = 200
    try:
        try:
            body = await request.json(loads=json.loads)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"the body is not JSON: {error}") from error
        frame = loaded.schema.frame(body)
        want_probabilities = bool(body.get("probabilities"))
        try:
            answer = await asyncio.get_running_loop().run_in_executor(
                None, _predict, loaded, frame, want_probabilities)
        except Exception as error:  # a model that fails on valid input is a server error, said plainly
            log.exception("prediction failed")
            status = 500
            return _error(500, f"prediction failed: {type(error).__name__}: {error}"[:500])
        labels = [str(p) for p in answer["predictions"]] if loaded.task == "classification" else None
        metrics.predictions(labels, len(frame))
        capture = request.app.get(CAPTURE)
        if capture is not None and capture.add(frame, answer["predictions"]):
            capture.flush_soon()
        return web.json_response(answer)
    except InputError as error:
        status = 400
        return _error(400, str(error))
    except web.HTTPRequestEntityTooLarge:
        status = 413
        return _error(413, f"the body is larger than {MAX_BODY} bytes")
    finally:
        metrics.request(status, time.perf_counter() - started)


async def healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    loaded = request.app[MODEL]
    return web.json_response({"ready": True, "modelVersion": loaded.version, "uri": loaded.uri})


async def schema(request: web.Request) -> web.Response:
    loaded = request.app[MODEL]
    return web.json_response({"modelVersion": loaded.version, "task": loaded.task,
                              "features": loaded.schema.describe(), "classes": list(loaded.classes)})


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
              flush_seconds: float = 60.0) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[MODEL], app[METRICS] = loaded, metrics
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
                    web.get("/schema", schema), web.get("/metrics", metrics_endpoint)])
    return app
