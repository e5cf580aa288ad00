"""Model server throughput on one core: requests/s and latency percentiles, against the model alone.

Starts its own SeaweedFS, trains a model with the real trainer, starts `retrain-trainer serve`
pinned to CPU 0 and drives it from this process pinned to CPU 1 (closed loop, --concurrency
connections, --seconds per load). Baseline, measured in the same run and on one core: the same
model's `predict` called in-process on one row at a time (no HTTP, no JSON, no validation), so
the ratio shows what the serving stack costs.
Run: .venv/bin/python benchmarks/serve_bench.py [--estimator SGDClassifier] [--concurrency 8] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import joblib

from retrain_contract.artifacts.store import ArtifactStore
from retrain_sandbox import dataset
from retrain_sandbox.seaweed import SeaweedS3

BIN = Path(sys.executable).parent
ROW = {"tenure_months": 12, "monthly_spend": 80.5, "support_calls": 3, "plan": "basic", "region": "eu"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


async def _load(url: str, body: bytes, concurrency: int, seconds: float) -> tuple[int, list[float], int]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return len(latencies), latencies, errors


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _in_process_rate(model_bytes: bytes, seconds: float) -> float:
    import pandas as pd

    model = joblib.load(io.BytesIO(model_bytes))
    frame = pd.DataFrame([ROW])
    count, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        model.predict(frame)
        count += 1
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--estimator", default="SGDClassifier")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=100, help="rows per request in the batch load")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir, SeaweedS3(Path(workdir)) as seaweed:
        s3 = seaweed.client()
        s3.create_bucket(Bucket="bench")
        s3.put_object(Bucket="bench", Key="data/part-0.parquet", Body=dataset.to_parquet(dataset.churn_table(5000, 1)))
        config = {
            "policy": {"namespace": "bench", "name": "serve"}, "version": "v1", "parentVersion": None,
            "trigger": {"type": "manual"},
            "model": {"estimator": args.estimator, "task": "classification", "target": dataset.TARGET,
                      "features": dataset.FEATURES, "params": {"random_state": 0}},
            "data": {"history": "s3://bench/data/", "validation": {"minRows": 100}},
            "training": {"strategy": "full"},
            "storage": {"bucket": "bench", "prefix": "", "endpoint": seaweed.endpoint},
        }
        env = {**os.environ, **seaweed.env(), "RETRAIN_RUN_CONFIG": json.dumps(config), "RETRAIN_LOG_LEVEL": "WARNING"}
        subprocess.run([str(BIN / "retrain-trainer"), "train"], env=env, check=True, capture_output=True)
        store = ArtifactStore(s3, "bench")
        manifest = store.read_manifest("bench/serve/v1/")
        model_bytes = store.load_verified("bench/serve/v1/", manifest, "model.joblib")

        port = _free_port()
        server = subprocess.Popen(
            ["taskset", "-c", "0", str(BIN / "retrain-trainer"), "serve", "--model-uri", "s3://bench/bench/serve/v1/",
             "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    urllib.request.urlopen(url + "/readyz", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.1)
            _pin(1)
            print(f"machine: {os.cpu_count()} CPUs; server on CPU 0, load generator on CPU 1; "
                  f"{args.estimator}, {args.concurrency} connections, {args.seconds:.0f} s per load")
            asyncio.run(_load(url + "/predict", json.dumps({"rows": [ROW]}).encode(), args.concurrency, 2.0))  # warm
            single = asyncio.run(_load(url + "/predict", json.dumps({"rows": [ROW]}).encode(),
                                       args.concurrency, args.seconds))
            batch = asyncio.run(_load(url + "/predict", json.dumps({"rows": [ROW] * args.batch}).encode(),
                                      args.concurrency, args.seconds))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    _pin(0)
    baseline = _in_process_rate(model_bytes, args.seconds / 2)
    for name, (count, latencies, errors), rows in (("1 row/request", single, 1),
                                                    (f"{args.batch} rows/request", batch, args.batch)):
        rate = count / args.seconds
        print(f"{name:>18}: {rate:8.0f} requests/s ({rate * rows:9.0f} rows/s), latency p50 "
              f"{statistics.median(latencies) * 1000:6.2f} ms, p99 {_percentile(latencies, 0.99) * 1000:6.2f} ms, "
              f"errors {errors}")
    print(f"{'baseline':>18}: {baseline:8.0f} in-process predict() calls/s on one row (no HTTP, one core)")
    print(f"ratio server/baseline at 1 row/request: {single[0] / args.seconds / baseline:.2f}x")


if __name__ == "__main__":
    main()
