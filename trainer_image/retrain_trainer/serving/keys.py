"""What the model server's application holds, shared by its endpoint modules."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .capture import RequestCapture
from .loaded import LoadedModel
from .metrics import ServingMetrics

MODEL = web.AppKey("model", LoadedModel)
METRICS = web.AppKey("metrics", ServingMetrics)
CAPTURE = web.AppKey("capture", RequestCapture)
MODEL_NAME = web.AppKey("model_name", str)  # the name the Open Inference Protocol addresses the model by
# Set on SIGTERM: not ready any more (so endpoints drop the pod), still answering while they catch up.
DRAINING = web.AppKey("draining", asyncio.Event)
MAX_BODY = 32 * 1024 * 1024
