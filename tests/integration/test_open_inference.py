"""The Open Inference Protocol (KServe V2) of `retrain-trainer serve`, driven by a real client of the
protocol (tritonclient's HTTP client), against a server process with its model in real S3 (SeaweedFS)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import numpy as np
import pyarrow.parquet as pq
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from retrain_contract.artifacts.store import ArtifactStore
from retrain_sandbox import dataset
from retrain_sandbox.model_versions import CATEGORICAL, churn_frame, sklearn_version

from .test_model_server import ROW, Server, http

NAME = "churn"


@pytest.fixture()
def served(seaweed, s3, bucket) -> Iterator[tuple[Server, object]]:
    uri, pipeline = sklearn_version(ArtifactStore(s3, bucket), "ml/churn/uid/v1/")
    server = Server(seaweed, uri, "--policy", NAME, "--capture-uri", f"s3://{bucket}/captured/",
                    "--capture-fraction", "1", "--capture-flush-rows", "1000000")
    try:
        server.wait_ready()
        yield server, pipeline
    finally:
        server.stop()


def client(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")


def inputs(rows: list[dict]) -> list[triton.InferInput]:
    tensors = []
    for name in dataset.FEATURES:
        if name in CATEGORICAL:
            data = np.array([[row[name]] for row in rows], dtype=object)
            tensor = triton.InferInput(name, list(data.shape), "BYTES")
        else:
            data = np.array([[row[name]] for row in rows], dtype=np.float32)
            tensor = triton.InferInput(name, list(data.shape), "FP32")
        tensor.set_data_from_numpy(data, binary_data=False)
        tensors.append(tensor)
    return tensors


def outputs(*names: str) -> list[triton.InferRequestedOutput]:
    return [triton.InferRequestedOutput(name, binary_data=False) for name in names]


def test_health_metadata_and_readiness_through_the_client(served):
    server, pipeline = served
    with client(server) as v2:
        assert v2.is_server_live() and v2.is_server_ready()
        assert v2.is_model_ready(NAME) and v2.is_model_ready(NAME, "v1")
        assert not v2.is_model_ready("other") and not v2.is_model_ready(NAME, "v9")
        metadata = v2.get_model_metadata(NAME)
        assert metadata["name"] == NAME and metadata["versions"] == ["v1"]
        assert metadata["platform"] == "sklearn-joblib/onnxruntime"
        assert {i["name"]: i["datatype"] for i in metadata["inputs"]} == {
            "tenure_months": "FP64", "monthly_spend": "FP64", "support_calls": "FP64", "plan": "BYTES",
            "region": "BYTES"}
        assert [o["name"] for o in metadata["outputs"]] == ["predict", "probabilities"]
        assert metadata["parameters"]["classes"] == [str(c) for c in pipeline.classes_]
        assert v2.get_model_metadata(NAME, "v1") == metadata


def test_infer_by_name_and_by_version_answers_as_the_model_does(served):
    server, pipeline = served
    features, _ = churn_frame(50, seed=7)
    rows = features.to_dict("records")
    with client(server) as v2:
        by_name = v2.infer(NAME, inputs(rows), outputs=outputs("predict", "probabilities"), request_id="r1")
        by_version = v2.infer(NAME, inputs(rows), model_version="v1")  # no outputs asked: all of them
    assert by_name.get_response()["model_version"] == "v1" and by_name.get_response()["id"] == "r1"
    labels = by_name.as_numpy("predict")
    assert labels.shape == (50,) and [str(v) for v in labels] == [str(v) for v in pipeline.predict(features)]
    probabilities = by_name.as_numpy("probabilities")
    assert probabilities.shape == (50, 2)
    assert np.abs(probabilities - pipeline.predict_proba(features)).max() < 1e-4
    assert (by_version.as_numpy("predict") == labels).all()
    assert np.allclose(by_version.as_numpy("probabilities"), probabilities)
    # /predict answers the same rows with the same labels: one model behind both endpoints.
    status, body = http("POST", server.url + "/predict", {"rows": rows})
    assert status == 200 and json.loads(body)["predictions"] == [str(v) for v in labels]


def test_only_the_outputs_asked_for(served):
    server, _ = served
    with client(server) as v2:
        answer = v2.infer(NAME, inputs([ROW]), outputs=outputs("predict"))
    assert [o["name"] for o in answer.get_response()["outputs"]] == ["predict"]
    assert answer.as_numpy("probabilities") is None


def test_a_wrong_name_or_version_is_a_404_the_client_reports(served):
    server, _ = served
    with client(server) as v2:
        for model, version in (("other", ""), (NAME, "v9")):
            with pytest.raises(InferenceServerException) as raised:
                v2.infer(model, inputs([ROW]), model_version=version)
            assert raised.value.status() == "404"
    assert "no model 'other' here" in json.loads(http("POST", server.url + "/v2/models/other/infer", {})[1])["error"]


@pytest.mark.parametrize(("body", "message"), [
    ({"inputs": [{"name": f, "datatype": "BYTES" if f == "tenure_months" else ("BYTES" if f in CATEGORICAL else "FP64"),
                  "shape": [1], "data": [str(ROW[f]) if f == "tenure_months" else ROW[f]]} for f in dataset.FEATURES]},
     "input tenure_months has datatype 'BYTES'; feature tenure_months is numeric"),
    ({"inputs": [{"name": "plan", "datatype": "BYTES", "shape": [1], "data": ["basic"]}]},
     "missing input(s) tenure_months, monthly_spend, support_calls, region"),
    ({"inputs": [{"name": f, "datatype": "BYTES" if f in CATEGORICAL else "FP64", "shape": [2, 1],
                  "data": [ROW[f]]} for f in dataset.FEATURES]}, "shape [2, 1] says 2 values, data has 1"),
    ({"inputs": [{"name": f, "datatype": "BYTES" if f in CATEGORICAL else "FP64", "shape": [1], "data": [ROW[f]]}
                 for f in dataset.FEATURES], "outputs": [{"name": "logits"}]}, "unknown output(s) logits"),
    ({"rows": [ROW]}, 'must be a JSON object with "inputs"'),
])
def test_a_bad_request_is_a_400_with_the_protocols_error(served, body, message):
    server, _ = served
    status, answer = http("POST", server.url + f"/v2/models/{NAME}/infer", body)
    assert status == 400 and message in json.loads(answer)["error"], answer


def test_a_bad_datatype_through_the_client_is_a_400(served):
    server, _ = served
    tensors = inputs([ROW])
    tensors[0] = triton.InferInput("tenure_months", [1, 1], "BYTES")
    tensors[0].set_data_from_numpy(np.array([["twelve"]], dtype=object), binary_data=False)
    with client(server) as v2, pytest.raises(InferenceServerException) as raised:
        v2.infer(NAME, tensors)
    assert raised.value.status() == "400" and "feature tenure_months is numeric" in raised.value.message()


def test_requests_are_captured_alike_from_either_endpoint_and_metrics_name_the_backend(served, s3, bucket):
    server, _ = served
    with client(server) as v2:
        v2.infer(NAME, inputs([ROW, {**ROW, "plan": "pro"}]), outputs=outputs("predict"))
    assert http("POST", server.url + "/predict", {"rows": [ROW]})[0] == 200
    text = http("GET", server.url + "/metrics")[1].decode()
    assert ('retrain_serving_model_info{backend="onnxruntime",format="sklearn-joblib",policy="churn",version="v1"} 1.0'
            in text)
    assert 'retrain_serving_requests_total{code="200",version="v1"} 2.0' in text
    assert 'retrain_serving_rows_total{version="v1"} 3.0' in text
    server.stop()  # flushes the capture
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="captured/").get("Contents", [])]
    tables = [pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())) for k in keys]
    assert len(tables) == 1 and tables[0].num_rows == 3
    assert set(tables[0].column_names) == {*dataset.FEATURES, "prediction", "predicted_at"}
    assert tables[0].column("plan").to_pylist() == ["basic", "pro", "basic"]
    assert tables[0].schema.field("tenure_months").type == "double"
