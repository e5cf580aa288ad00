"""JSON in and out of the model server's endpoints, with orjson: the parse and dump are on the hot path."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from .schema import InputError


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
