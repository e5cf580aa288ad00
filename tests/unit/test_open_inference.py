"""The Open Inference Protocol's infer request, checked into the columns /predict builds: pure, no server."""

from __future__ import annotations

import math

import pytest

from retrain_trainer.serving import v2
from retrain_trainer.serving.schema import MAX_ROWS, FeatureSchema, InputError


class Loaded:
    schema = FeatureSchema(("age", "plan"), frozenset({"age"}))
    task = "classification"
    has_probabilities = True


def tensor(name: str, datatype: str, data: list, shape: list | None = None) -> dict:
    return {"name": name, "datatype": datatype, "shape": shape if shape is not None else [len(data)], "data": data}


def test_inputs_become_the_same_columns_as_rows():
    body = {"inputs": [tensor("plan", "BYTES", [["a"], ["b"]], [2, 1]), tensor("age", "INT64", [3, None])]}
    columns, rows = v2.columns_of(Loaded(), body)
    assert rows == 2 and columns["plan"] == ["a", "b"]
    assert columns["age"][0] == 3.0 and math.isnan(columns["age"][1])
    assert Loaded.schema.columns({"rows": [{"age": 3, "plan": "a"}]}) == {"age": [3.0], "plan": ["a"]}


@pytest.mark.parametrize(("body", "message"), [
    ({"inputs": [tensor("age", "FP32", [1]), tensor("plan", "FP32", [1.5])]},
     "input plan has datatype 'FP32'; feature plan is categorical"),
    ({"inputs": [tensor("age", "FP32", [1]), tensor("plan", "BYTES", ["a", "b"])]},
     "input plan has 2 rows, the inputs before it 1"),
    ({"inputs": [tensor("age", "FP32", [1], [1, 2]), tensor("plan", "BYTES", ["a"])]},
     "input age: shape must be [N] or [N, 1], got [1, 2]"),
    ({"inputs": [tensor("age", "FP32", [1]), tensor("age", "FP32", [1])]}, "input age is given twice"),
    ({"inputs": [tensor("age", "FP32", [1]), tensor("plan", "BYTES", ["a"]), tensor("x", "FP32", [1])]},
     "unknown input 'x': the model's inputs are age, plan"),
    ({"inputs": [tensor("age", "FP32", ["old"]), tensor("plan", "BYTES", ["a"])]},
     "row 0: feature age must be a finite number"),
    ({"inputs": [tensor("age", "FP32", []), tensor("plan", "BYTES", [])]}, "the inputs have no rows"),
    ({"inputs": [tensor("age", "FP32", [1] * (MAX_ROWS + 1)), tensor("plan", "BYTES", ["a"] * (MAX_ROWS + 1))]},
     f"at most {MAX_ROWS} rows per request"),
    ({"inputs": "age"}, 'must be a JSON object with "inputs"'),
])
def test_bad_inputs_say_what_is_wrong(body, message):
    with pytest.raises(InputError) as raised:
        v2.columns_of(Loaded(), body)
    assert message in str(raised.value)


def test_outputs_default_to_all_and_unknown_ones_are_refused():
    assert v2._outputs(Loaded(), {}) == ["predict", "probabilities"]
    assert v2._outputs(Loaded(), {"outputs": [{"name": "predict"}]}) == ["predict"]
    with pytest.raises(InputError, match="unknown output"):
        v2._outputs(Loaded(), {"outputs": [{"name": "logits"}]})
