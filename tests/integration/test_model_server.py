"""The model server as the Deployment runs it: `retrain-trainer serve` as a subprocess, real HTTP,
the model read and verified from a real S3 (SeaweedFS)."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from retrain_contract.artifacts.store import ArtifactStore
from retrain_sandbox import dataset

from .test_trainer_entrypoint import config, prefix, train

TRAINER = str(Path(sys.executable).parent / "retrain-trainer")
ROW = {"tenure_months": 12, "monthly_spend": 80.5, "support_calls": 3, "plan": "basic", "region": "eu"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, body: Any = None, raw: bytes | None = None) -> tuple[int, bytes]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Server:
    def __init__(self, seaweed, uri: str, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **seaweed.env()}
        self.process = subprocess.Popen([TRAINER, "serve", "--model-uri", uri, "--host", "127.0.0.1",
                                         "--port", str(self.port), *extra], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, start_new_session=True)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {self.process.stderr.read()}")
            try:
                if http("GET", self.url + "/readyz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("the server did not become ready")

    def stop(self) -> str:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.stderr.read()


@pytest.fixture()
def trained(seaweed, s3, bucket) -> str:
    s3.put_object(Bucket=bucket, Key="history/a.parquet", Body=dataset.to_parquet(dataset.churn_table(1500, 1)))
    result = train(seaweed, config(bucket))
    assert result.returncode == 0, result.stderr
    return f"s3://{bucket}/{prefix('v1')}"


@pytest.fixture()
def server(seaweed, trained) -> Iterator[Server]:
    running = Server(seaweed, trained)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def test_predict_answers_rows_with_predictions_and_probabilities(server: Server):
    status, body = http("POST", server.url + "/predict", {"rows": [ROW, {**ROW, "plan": None}],
                                                          "probabilities": True})
    assert status == 200, body
    answer = json.loads(body)
    assert answer["modelVersion"] == "v1" and len(answer["predictions"]) == 2
    assert all(abs(sum(p.values()) - 1) < 1e-9 for p in answer["probabilities"])
    assert set(answer["probabilities"][0]) == {str(p) for p in answer["probabilities"][0]}
    schema = json.loads(http("GET", server.url + "/schema")[1])
    assert schema["features"] == {"tenure_months": "number", "monthly_spend": "number", "support_calls": "number",
                                  "plan": "string", "region": "string"}


@pytest.mark.parametrize(("body", "message"), [
    ({"rows": [{k: v for k, v in ROW.items() if k != "plan"}]}, "row 0 lacks feature(s) plan"),
    ({"rows": [ROW, {**ROW, "monthly_spend": "a lot"}]}, "row 1: feature monthly_spend must be a finite number"),
    ({"rows": []}, '"rows" is empty'),
    ([ROW], 'must be a JSON object with "rows"'),
])
def test_bad_input_is_a_400_that_says_what_is_wrong(server: Server, body: Any, message: str):
    status, answer = http("POST", server.url + "/predict", body)
    assert status == 400 and message in json.loads(answer)["error"], answer


def test_a_body_that_is_not_json_is_a_400(server: Server):
    status, answer = http("POST", server.url + "/predict", raw=b"{not json")
    assert status == 400 and "not JSON" in json.loads(answer)["error"]


def test_metrics_count_requests_errors_latency_and_classes(server: Server):
    http("POST", server.url + "/predict", {"rows": [ROW] * 5})
    http("POST", server.url + "/predict", {"rows": []})
    status, body = http("GET", server.url + "/metrics")
    text = body.decode()
    assert status == 200
    assert 'retrain_serving_requests_total{code="200",version="v1"} 1.0' in text
    assert 'retrain_serving_requests_total{code="400",version="v1"} 1.0' in text
    assert 'retrain_serving_rows_total{version="v1"} 5.0' in text
    assert 'retrain_serving_request_duration_seconds_count{version="v1"} 2.0' in text
    assert ('retrain_serving_model_info{backend="sklearn",format="sklearn-joblib",policy="",version="v1"} 1.0'
            in text)
    classes = [line for line in text.splitlines() if line.startswith("retrain_serving_predictions_total{")]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in classes) == 5.0
    assert http("GET", server.url + "/healthz")[0] == 200


def test_a_model_whose_bytes_do_not_match_the_manifest_is_never_served(seaweed, s3, bucket, trained):
    ArtifactStore(s3, bucket).put_bytes(prefix("v1") + "model.joblib", b"not the model that was trained")
    server = Server(seaweed, trained)
    assert server.process.wait(timeout=30) == 3
    stderr = server.stop()
    assert "refusing to serve" in stderr and "sha256 does not match" in stderr


def test_an_unfinished_version_is_not_served(seaweed, bucket):
    server = Server(seaweed, f"s3://{bucket}/models/ml/churn/v9/")
    assert server.process.wait(timeout=30) == 3
    assert "no manifest.json" in server.stop()


def test_sampled_requests_land_where_a_drift_check_reads(seaweed, s3, bucket, trained):
    server = Server(seaweed, trained, "--capture-uri", f"s3://{bucket}/captured/", "--capture-fraction", "1",
                    "--capture-flush-rows", "4")
    try:
        server.wait_ready()
        for _ in range(3):
            assert http("POST", server.url + "/predict", {"rows": [ROW, ROW]})[0] == 200
        # 4 rows reached the flush threshold and were written at once; 2 wait for the stop.
        deadline = time.monotonic() + 10
        while 'retrain_serving_captured_rows_total{version="v1"} 4.0' not in http("GET", server.url + "/metrics")[1] \
                .decode() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert 'retrain_serving_captured_rows_total{version="v1"} 4.0' in http("GET", server.url + "/metrics")[1] \
            .decode()
    finally:
        server.stop()  # SIGTERM flushes what is pending
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="captured/").get("Contents", [])]
    assert len(keys) == 2 and all(k.startswith("captured/v1-") and k.endswith(".parquet") for k in keys)
    rows = sum(pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())).num_rows for k in keys)
    table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()))
    assert rows == 6 and {*dataset.FEATURES, "prediction", "predicted_at"} <= set(table.column_names)


def test_a_stopping_server_says_it_is_not_ready_and_still_answers_while_it_drains(seaweed, trained):
    server = Server(seaweed, trained, "--drain-seconds", "3")
    try:
        server.wait_ready()
        os.killpg(server.process.pid, signal.SIGTERM)
        started = time.monotonic()
        deadline = started + 2
        while http("GET", server.url + "/readyz")[0] != 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert http("GET", server.url + "/readyz")[0] == 503  # endpoints drop it ...
        assert http("GET", server.url + "/v2/health/ready")[0] == 503
        assert http("POST", server.url + "/predict", {"rows": [ROW]})[0] == 200  # ... and what still comes is answered
        assert server.process.wait(timeout=10) == 0
        assert 2.5 <= time.monotonic() - started <= 8, "it stops once the drain is over"
    finally:
        server.stop()

