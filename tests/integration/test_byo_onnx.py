"""A trainer image of one's own that writes an ONNX model (tests/byo/onnx_trainer.py), driven through a
policy without an estimator name on the real control plane: v1 served by onnxruntime, v2 through the
canary to promotion, answering /predict and the Open Inference Protocol alike."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton

from retrain_operator.adapters.kube import pod_ready
from retrain_operator.core import serving
from retrain_sandbox import dataset
from retrain_sandbox.traffic import Traffic

from .conftest import Scenario
from .test_canary_rollout import ANALYSIS, ROWS, STEPS, deployment, rollout_ended, serve_v1, train_v2

pytestmark = pytest.mark.integration
TRAINER = Path(__file__).resolve().parents[1] / "byo" / "onnx_trainer.py"


def stable_address(scenario: Scenario, name: str) -> str:
    """A Ready stable model server's "ip:port" (what its EndpointSlice lists)."""
    pod = next(p for p in scenario.cluster.pods(scenario.namespace, serving.selector(name, serving.STABLE))
               if pod_ready(p))
    return f"{pod['status']['podIP']}:{pod['spec']['containers'][0]['ports'][0]['containerPort']}"


@pytest.mark.timeout(600)
def test_an_onnx_trainer_of_your_own_is_served_and_canaried(scenario: Scenario):
    name = "byo-onnx"
    spec = scenario.policy_spec(
        model={"estimator": None, "params": None, "format": "onnx"},
        training={"image": "registry.example.com/ml/onnx-trainer:1", "command": [sys.executable, str(TRAINER)]},
        serving={"replicas": 1, "router": {"type": "replicas"}},
        promotion={"gates": {"compare": []}, "canary": {"steps": STEPS, "analysis": ANALYSIS}})
    serve_v1(scenario, name, spec)
    status = scenario.status(name)
    assert status["currentModel"]["version"] == "v1", status
    key = scenario.model_prefix(name, "v1") + "manifest.json"
    manifest = json.loads(scenario.s3.get_object(Bucket=scenario.model_bucket, Key=key)["Body"].read())
    assert manifest["model"]["format"] == "onnx" and "estimator" not in manifest["model"]
    traffic = Traffic(scenario.cluster, scenario.namespace, name, ROWS, rate=40, router="replicas").start()
    try:
        train_v2(scenario, name)
        status = scenario.wait_status(name, rollout_ended, "the rollout to end", timeout=180)
    finally:
        traffic.stop()
    assert status["rollout"]["phase"] == "Succeeded", status["rollout"]
    assert status["currentModel"]["version"] == "v2" and status["phase"] == "Ready"
    answered = traffic.by_version()
    assert answered.get("v1", 0) > 10 and answered.get("v2", 0) > 10, answered
    assert all(code == 200 for (_, code) in traffic.answers), traffic.answers
    stable = deployment(scenario, name, serving.STABLE)
    assert stable["spec"]["template"]["metadata"]["labels"]["retrain.mlops.dev/model-version"] == "v2"
    # The promoted version answers the Open Inference Protocol under the policy's name, from onnxruntime.
    with triton.InferenceServerClient(url=stable_address(scenario, name)) as v2:
        metadata = v2.get_model_metadata(name)
        assert metadata["versions"] == ["v2"] and metadata["platform"] == "onnx/onnxruntime"
        tensors = []
        for feature in dataset.FEATURES:
            column = np.array([[row[feature]] for row in ROWS[:5]],
                              dtype=object if feature in ("plan", "region") else np.float64)
            tensor = triton.InferInput(feature, list(column.shape), "BYTES" if column.dtype == object else "FP64")
            tensor.set_data_from_numpy(column, binary_data=False)
            tensors.append(tensor)
        answer = v2.infer(name, tensors, model_version="v2")
    assert answer.as_numpy("predict").shape == (5,) and answer.as_numpy("probabilities").shape == (5, 2)
