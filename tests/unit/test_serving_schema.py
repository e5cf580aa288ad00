"""The model server's request checks: pure, JSON in, a frame or a message for the client out."""

from __future__ import annotations

import math

import pytest

from retrain_trainer.serving.schema import MAX_ROWS, FeatureSchema, InputError

SCHEMA = FeatureSchema(("age", "plan"), frozenset({"age"}))


def test_rows_become_a_frame_with_numbers_and_strings():
    frame = SCHEMA.frame({"rows": [{"age": 3, "plan": "a"}, {"age": 4.5, "plan": 7, "extra": "ignored"}]})
    assert frame["age"].tolist() == [3.0, 4.5] and frame["plan"].tolist() == ["a", "7"]
    assert list(frame.columns) == ["age", "plan"]


def test_null_is_missing_and_left_to_the_pipelines_imputer():
    frame = SCHEMA.frame({"rows": [{"age": None, "plan": None}]})
    assert math.isnan(frame["age"][0]) and frame["plan"][0] is None


@pytest.mark.parametrize(("row", "message"), [
    ({"age": True, "plan": "a"}, "feature age must be a finite number, got True"),
    ({"age": "7", "plan": "a"}, "feature age must be a finite number, got '7'"),
    ({"age": float("inf"), "plan": "a"}, "must be a finite number"),
    ({"age": 1, "plan": {"x": 1}}, "feature plan must be a string, got dict"),
    ({"plan": "a"}, "row 0 lacks feature(s) age"),
    ("age=1", "row 0 is not an object"),
])
def test_bad_rows_are_named(row, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SCHEMA.frame({"rows": [row]})


def test_the_body_shape_and_size_are_checked():
    for body in ({}, {"rows": {}}, [{"age": 1}], None):
        with pytest.raises(InputError, match='"rows"'):
            SCHEMA.frame(body)
    with pytest.raises(InputError, match=f"at most {MAX_ROWS} rows"):
        SCHEMA.frame({"rows": [{"age": 1, "plan": "a"}] * (MAX_ROWS + 1)})


def test_the_schema_falls_back_to_the_training_profile_for_foreign_models():
    profile = {"features": {"age": {"kind": "numeric"}, "plan": {"kind": "categorical"}}}
    assert FeatureSchema.of(None, ["age", "plan"], profile) == SCHEMA
    assert SCHEMA.describe() == {"age": "number", "plan": "string"}
