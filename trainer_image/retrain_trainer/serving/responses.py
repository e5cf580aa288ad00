"""JSON in and out of the model server's endpoints, with orjson: the parse and dump are on the hot path."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from .keys import MAX_BODY, METRICS
from .schema import InputError


class NotFound(LookupError):
    """No such model or version here: a 404."""


class ModelFailed(Exception):
    """The model raised on a valid request: a 500 that says so plainly."""


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def error_response(status: int, message: str) -> web.Response:
    """`{"error": "..."}`: the shape of an error for /predict and for the Open Inference Protocol alike."""
    return json_response({"error": message}, status=status)


async def read_json(request: web.Request) -> Any:
    """The body as JSON, or an InputError (a 400) saying why not."""
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError as error:
        raise InputError(f"the body is not JSON: {error}") from error


async def counted(request: web.Request, answer: Callable[[web.Request], Awaitable[web.Response]]) -> web.Response:
    """A prediction request of any endpoint: its answer, or its error as a status and `{"error": ...}`, and
    in either case its status and time in the metrics."""
    started = time.perf_counter()
    status = 500
    try:
        response = await answer(request)
        status = response.status
        return response
    except NotFound as error:
        status = 404
        return error_response(404, str(error))
    except InputError as error:
        status = 400
        return error_response(400, str(error))
    except ModelFailed as error:
        return error_response(500, str(error))
    except web.HTTPRequestEntityTooLarge:
        status = 413
        return error_response(413, f"the body is larger than {MAX_BODY} bytes")
    finally:
        request.app[METRICS].request(status, time.perf_counter() - started)
