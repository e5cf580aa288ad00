"""How every prediction endpoint answers what goes wrong, and counts it: one function, counted()."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from retrain_trainer.serving import scoring
from retrain_trainer.serving.keys import METRICS
from retrain_trainer.serving.metrics import ServingMetrics
from retrain_trainer.serving.responses import ModelFailed, NotFound, counted
from retrain_trainer.serving.schema import InputError


def request() -> web.Request:
    app = web.Application()
    app[METRICS] = ServingMetrics("v3")
    return make_mocked_request("POST", "/predict", app=app)


def count(req: web.Request, code: str) -> float:
    return req.app[METRICS].registry.get_sample_value("retrain_serving_requests_total",
                                                      {"version": "v3", "code": code}) or 0.0


@pytest.mark.parametrize(("error", "status"), [
    (InputError("row 0: feature age must be a finite number"), 400), (NotFound("no model 'x' here"), 404),
    (ModelFailed("prediction failed: ValueError: boom"), 500), (web.HTTPRequestEntityTooLarge(1, 2), 413)])
def test_each_error_is_its_status_with_a_message_and_is_counted(error: Exception, status: int):
    req = request()

    async def answer(_: web.Request) -> web.Response:
        raise error
    response = asyncio.run(counted(req, answer))
    assert response.status == status and "error" in orjson.loads(response.body)
    assert count(req, str(status)) == 1 and count(req, "200") == 0


def test_an_answer_is_counted_with_its_own_status():
    req = request()

    async def answer(_: web.Request) -> web.Response:
        return web.Response(status=200)
    assert asyncio.run(counted(req, answer)).status == 200 and count(req, "200") == 1


def test_a_model_that_raises_on_checked_input_is_a_model_failure_naming_the_error():
    class Broken:
        inline_rows = 1000

        def predict(self, columns, probabilities):
            raise ValueError("boom")

    class Loaded:
        predictor = Broken()
    with pytest.raises(ModelFailed, match="prediction failed: ValueError: boom"):
        asyncio.run(scoring.score(Loaded(), {}, 1, False))  # type: ignore[arg-type]
