"""The Open Inference Protocol (KServe V2) over REST, beside /predict.

The model is addressed by the name the server was started with (`--model-name`, by default the
policy's name) and its version; each feature is one named input of shape [N] or [N, 1]. Outputs:
`predict` (class labels as BYTES, or FP64 values) and, for classifiers, `probabilities` [N, classes]
in the order of the metadata's `classes` parameter. Errors are `{"error": "..."}` with 400 (a bad
request) or 404 (no such model or version). JSON only: the binary tensor extension is refused.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .keys import CAPTURE, DRAINING, METRICS, MODEL, MODEL_NAME
from .loaded import LoadedModel
from .responses import NotFound, counted, error_response, json_response, read_json
from .schema import MAX_ROWS, InputError
from .scoring import record, score

NUMBERS = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
CATEGORIES = {"BYTES", "BOOL", *NUMBERS - {"FP16", "FP32", "FP64"}}  # as /predict, an integer category is its text
OUTPUTS = ("predict", "probabilities")


def _model(request: web.Request) -> LoadedModel:
    """The served model if the path names it (and its version, when it names one)."""
    loaded, name = request.app[MODEL], request.app[MODEL_NAME]
    if request.match_info["name"] != name:
        raise NotFound(f"no model {request.match_info['name']!r} here: this server serves {name!r}")
    version = request.match_info.get("version")
    if version is not None and version != loaded.version:
        raise NotFound(f"model {name!r} has no version {version!r} here: this server serves {loaded.version!r}")
    return loaded


async def live(_: web.Request) -> web.Response:
    return web.Response(status=200)


async def ready(request: web.Request) -> web.Response:
    draining = request.app.get(DRAINING)
    return web.Response(status=503 if draining is not None and draining.is_set() else 200)


async def server_metadata(_: web.Request) -> web.Response:
    return json_response({"name": "retrain-trainer", "version": "1", "extensions": []})


async def model_ready(request: web.Request) -> web.Response:
    try:
        _model(request)
    except NotFound as error:
        return error_response(404, str(error))
    return web.Response(status=200)


def metadata(loaded: LoadedModel, name: str) -> dict[str, Any]:
    numeric = loaded.schema.numeric
    inputs = [{"name": f, "datatype": "FP64" if f in numeric else "BYTES", "shape": [-1, 1]}
              for f in loaded.schema.features]
    outputs = [{"name": "predict", "datatype": "BYTES" if loaded.task == "classification" else "FP64", "shape": [-1]}]
    if loaded.has_probabilities:
        outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [-1, len(loaded.classes)]})
    return {"name": name, "versions": [loaded.version], "platform": f"{loaded.format}/{loaded.backend}",
            "inputs": inputs, "outputs": outputs,
            "parameters": {"task": loaded.task, "classes": list(loaded.classes), "format": loaded.format,
                           "backend": loaded.backend}}


async def model_metadata(request: web.Request) -> web.Response:
    try:
        loaded = _model(request)
    except NotFound as error:
        return error_response(404, str(error))
    return json_response(metadata(loaded, request.app[MODEL_NAME]))


def _flat(data: Any, name: str) -> list[Any]:
    if not isinstance(data, list):
        raise InputError(f"input {name}: data must be a list")
    if data and isinstance(data[0], list):  # row-major nested lists, [[v], [v], ...]
        return [value for row in data for value in (row if isinstance(row, list) else [row])]
    return data


def _rows(item: dict[str, Any], name: str, values: int) -> int:
    shape = item.get("shape")
    if not isinstance(shape, list) or not 1 <= len(shape) <= 2 or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape) or shape[1:] not in ([], [1]):
        raise InputError(f"input {name}: shape must be [N] or [N, 1], got {shape!r}"[:300])
    if shape[0] != values:
        raise InputError(f"input {name}: shape {shape} says {shape[0]} values, data has {values}")
    return shape[0]


def columns_of(loaded: LoadedModel, body: Any) -> tuple[dict[str, Any], int]:
    """An infer request's inputs, checked, as the columns /predict builds from rows."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise InputError('the body must be a JSON object with "inputs": a list of tensors')
    schema, given = loaded.schema, {}
    for item in body["inputs"]:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise InputError("every input must be an object with a name")
        if name not in schema.features:
            raise InputError(f"unknown input {name!r}: the model's inputs are {', '.join(schema.features)}"[:500])
        if name in given:
            raise InputError(f"input {name} is given twice")
        given[name] = item
    missing = [f for f in schema.features if f not in given]
    if missing:
        raise InputError(f"missing input(s) {', '.join(missing)}")
    rows: int | None = None
    columns: dict[str, Any] = {}
    for name in schema.features:
        item = given[name]
        datatype = item.get("datatype")
        allowed = NUMBERS if name in schema.numeric else CATEGORIES
        if datatype not in allowed:
            kind = "numeric" if name in schema.numeric else "categorical"
            raise InputError(f"input {name} has datatype {datatype!r}; feature {name} is {kind}: "
                             f"send one of {', '.join(sorted(allowed))}"[:300])
        data = _flat(item.get("data"), name)
        count = _rows(item, name, len(data))
        if rows is not None and count != rows:
            raise InputError(f"input {name} has {count} rows, the inputs before it {rows}")
        rows = count
        columns[name] = [schema.value(index, name, value) for index, value in enumerate(data)]
    if not rows:
        raise InputError("the inputs have no rows")
    if rows > MAX_ROWS:
        raise InputError(f"at most {MAX_ROWS} rows per request, got {rows}")
    return columns, rows


def _outputs(loaded: LoadedModel, body: dict[str, Any]) -> list[str]:
    asked = body.get("outputs")
    available = list(OUTPUTS if loaded.has_probabilities else OUTPUTS[:1])
    if asked is None:
        return available  # none asked: every output, as the protocol says
    if not isinstance(asked, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in asked):
        raise InputError('"outputs" must be a list of objects with a name')
    names = [o["name"] for o in asked]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise InputError(f"unknown output(s) {', '.join(unknown)}: the model's outputs are {', '.join(available)}")
    return names


async def infer(request: web.Request) -> web.Response:
    return await counted(request, _infer)


async def _infer(request: web.Request) -> web.Response:
    loaded = _model(request)
    if "Inference-Header-Content-Length" in request.headers:
        raise InputError("the binary tensor data extension is not supported: send the tensors as JSON")
    body = await read_json(request)
    columns, rows = columns_of(loaded, body)
    wanted = _outputs(loaded, body)
    prediction = await score(loaded, columns, rows, "probabilities" in wanted)
    record(loaded, request.app[METRICS], request.app.get(CAPTURE), columns, prediction)
    outputs = []
    for name in wanted:
        if name == "predict" and loaded.task == "classification":
            outputs.append({"name": name, "datatype": "BYTES", "shape": [rows],
                            "data": [str(v) for v in prediction.values.tolist()]})
        elif name == "predict":
            outputs.append({"name": name, "datatype": "FP64", "shape": [rows],
                            "data": prediction.values.astype(float).tolist()})
        else:
            probabilities = prediction.probabilities
            assert probabilities is not None  # asked for, so computed
            outputs.append({"name": name, "datatype": "FP64", "shape": list(probabilities.shape),
                            "data": probabilities.ravel().tolist()})
    answer: dict[str, Any] = {"model_name": request.app[MODEL_NAME], "model_version": loaded.version,
                              "outputs": outputs}
    if isinstance(body.get("id"), str):
        answer["id"] = body["id"]
    return json_response(answer)


def routes() -> list[web.RouteDef]:
    model = "/v2/models/{name}"
    version = model + "/versions/{version}"
    return [web.get("/v2", server_metadata), web.get("/v2/health/live", live), web.get("/v2/health/ready", ready),
            web.get(model, model_metadata), web.get(version, model_metadata),
            web.get(model + "/ready", model_ready), web.get(version + "/ready", model_ready),
            web.post(model + "/infer", infer), web.post(version + "/infer", infer)]
