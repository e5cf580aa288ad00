"""Model server throughput on one core, per format and backend: requests/s, latency percentiles, rows/s.

Starts its own SeaweedFS and publishes the project's trainer's scikit-learn pipeline (its preprocessing:
imputers, scaler, one-hot; then --estimator, on the churn table's 5 features; converted as the trainer
converts it, retrain_trainer.onnx_export) twice: with its ONNX conversion verified beside it (served by
onnxruntime) and without (served by scikit-learn), as the manifest contract says; and, unless
--formats leaves them out, an xgboost and a lightgbm Booster on the same features as numbers. Each
is served by `retrain-trainer serve` pinned to CPU 0 and driven from this process pinned to CPU 1
(closed loop, --concurrency keep-alive connections, --seconds per load): 1-row requests, then
--batch-row requests. Baselines, measured in the same run on one core: the same models called
in-process (onnxruntime's session.run, scikit-learn's predict, the boosters' predict: no HTTP, no
JSON, no checks), so the ratios show what the serving stack costs. The top-level `one_row_rps`,
`one_row_p99_ms` and `batch_rows_per_s` of --json are the pipeline served by onnxruntime, the
targets are checked on them. Other processes skew the numbers: the load average is recorded.
Run: .venv/bin/python benchmarks/serve_bench.py [--estimator SGDClassifier] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from retrain_contract.artifacts.store import ArtifactStore
from retrain_sandbox.model_versions import churn_frame, fit_pipeline, publish, to_onnx
from retrain_sandbox.seaweed import SeaweedS3
from retrain_trainer.model import new_estimator

BIN = Path(sys.executable).parent
ROW = {"tenure_months": 12, "monthly_spend": 80.5, "support_calls": 3, "plan": "basic", "region": "eu"}
NUMERIC_ROW = {**ROW, "plan": 0, "region": 2}  # the boosters take every feature as a number
BACKENDS = ("onnxruntime", "sklearn", "xgboost", "lightgbm")
TARGETS = {"one_row_rps": 1500.0, "one_row_p99_ms": 10.0, "batch_rows_per_s": 50000.0}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


async def _load(port: int, path: str, body: bytes, concurrency: int, seconds: float) -> tuple[int, list[float], int]:
    """Closed-loop POSTs over keep-alive connections; a bare HTTP/1.1 client, so the client is not the limit."""
    request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors += 1
                latencies.append(time.perf_counter() - started)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies), latencies, errors


def _percentile_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _rate(call: Any, seconds: float) -> float:
    call()  # warm
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        call()
        count += 1
    return count / (time.perf_counter() - started)


def _booster_baselines(boosters: dict[str, Any], batch: int, seconds: float) -> dict[str, dict[str, float]]:
    one, many = np.array([list(NUMERIC_ROW.values())], dtype=float), np.array([list(NUMERIC_ROW.values())] * batch,
                                                                              dtype=float)
    calls = {"xgboost": lambda booster, x: booster.inplace_predict(x, validate_features=False),
             "lightgbm": lambda booster, x: booster.predict(x, num_threads=1)}
    return {name: {"one_row_per_s": _rate(lambda b=booster, f=calls[name]: f(b, one), seconds),
                   "batch_rows_per_s": batch * _rate(lambda b=booster, f=calls[name]: f(b, many), seconds)}
            for name, booster in boosters.items()}


def _boosters(features: Any, target: Any, wanted: list[str]) -> dict[str, tuple[Any, bytes, str]]:
    """(booster, its bytes as a trainer of one's own would write them, file name) per booster format."""
    from retrain_sandbox.model_versions import numeric_matrix

    matrix, labels = numeric_matrix(features), (target == "yes").to_numpy(int)
    made: dict[str, tuple[Any, bytes, str]] = {}
    if "xgboost" in wanted:
        import xgboost

        booster = xgboost.train({"objective": "binary:logistic", "max_depth": 4, "nthread": 1},
                                xgboost.DMatrix(matrix, label=labels), num_boost_round=50)
        made["xgboost"] = (booster, bytes(booster.save_raw("ubj")), "model.ubj")
    if "lightgbm" in wanted:
        import lightgbm

        booster = lightgbm.train({"objective": "binary", "num_leaves": 15, "verbose": -1, "num_threads": 1},
                                 lightgbm.Dataset(matrix, labels), num_boost_round=50)
        made["lightgbm"] = (booster, booster.model_to_string().encode(), "model.txt")
    return made


def _baselines(pipeline: Any, onnx: bytes, batch: int, seconds: float) -> dict[str, dict[str, float]]:
    """In-process calls on one core: what the model alone costs, with no server around it."""
    import onnxruntime
    import pandas as pd

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(onnx, sess_options=options, providers=["CPUExecutionProvider"])
    numeric = {i.name for i in session.get_inputs() if i.type != "tensor(string)"}

    def feeds(rows: int) -> dict[str, np.ndarray]:
        return {name: np.array([[ROW[name]]] * rows, dtype=np.float32 if name in numeric else object)
                for name in ROW}

    one, many = feeds(1), feeds(batch)
    frame_one, frame_many = pd.DataFrame([ROW]), pd.DataFrame([ROW] * batch)
    label = session.get_outputs()[0].name
    return {
        "onnxruntime": {"one_row_per_s": _rate(lambda: session.run([label], one), seconds),
                        "batch_rows_per_s": batch * _rate(lambda: session.run([label], many), seconds)},
        "sklearn": {"one_row_per_s": _rate(lambda: pipeline.predict(frame_one), seconds),
                    "batch_rows_per_s": batch * _rate(lambda: pipeline.predict(frame_many), seconds)},
    }


def _serve(env: dict[str, str], uri: str, args: argparse.Namespace, row: dict[str, Any]) -> dict[str, Any]:
    port = _free_port()
    server = subprocess.Popen(
        ["taskset", "-c", "0", str(BIN / "retrain-trainer"), "serve", "--model-uri", uri,
         "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        for _ in range(300):
            try:
                schema = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/schema", timeout=1).read())
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"the server did not start: {server.stderr.read().decode() if server.stderr else ''}")
        one, many = json.dumps({"rows": [row]}).encode(), json.dumps({"rows": [row] * args.batch}).encode()
        asyncio.run(_load(port, "/predict", one, args.concurrency, 2.0))  # warm
        count, latencies, errors = asyncio.run(_load(port, "/predict", one, args.concurrency, args.seconds))
        batch_count, batch_latencies, batch_errors = asyncio.run(
            _load(port, "/predict", many, args.concurrency, args.seconds))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return {"format": schema["format"], "backend": schema["backend"],
            "one_row_rps": count / args.seconds, "one_row_p50_ms": _percentile_ms(latencies, 0.5),
            "one_row_p99_ms": _percentile_ms(latencies, 0.99),
            "batch_rows_per_s": batch_count * args.batch / args.seconds,
            "batch_p99_ms": _percentile_ms(batch_latencies, 0.99), "errors": errors + batch_errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--estimator", default="SGDClassifier")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=100, help="rows per request in the batch load")
    parser.add_argument("--formats", default=",".join(BACKENDS),
                        help=f"backends to serve, comma-separated (default: {','.join(BACKENDS)})")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    wanted = [b for b in BACKENDS if b in args.formats.split(",")]
    if "onnxruntime" not in wanted:
        parser.error("--formats must include onnxruntime: the targets are checked on it")
    features, target = churn_frame(5000)
    estimator = new_estimator(args.estimator, {"loss": "log_loss"} if args.estimator == "SGDClassifier" else {})
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=0)
    pipeline = fit_pipeline(features, target, estimator)
    onnx = to_onnx(pipeline)
    check, _ = churn_frame(2000, seed=2)
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    feeds = {name: check[name].to_numpy(np.float32 if t.type != "tensor(string)" else object).reshape(-1, 1)
             for name, t in ((i.name, i) for i in session.get_inputs())}
    identical = bool((session.run(None, feeds)[0] == pipeline.predict(check)).all())
    import joblib
    import skl2onnx

    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    classes = [str(c) for c in pipeline.classes_]
    model = {"file": "model.joblib", "format": "sklearn-joblib", "task": "classification",
             "estimator": args.estimator, "classes": classes}
    verified = {"file": "model.onnx", "verified": True, "rows": len(check), "labelsIdentical": identical,
                "converter": f"skl2onnx {skl2onnx.__version__}"}
    boosters = _boosters(features, target, wanted)
    load_before = os.getloadavg()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as workdir, SeaweedS3(Path(workdir)) as seaweed:
        s3 = seaweed.client()
        s3.create_bucket(Bucket="bench")
        store = ArtifactStore(s3, "bench")
        both = {"model.joblib": buffer.getvalue(), "model.onnx": onnx}
        uris = {"onnxruntime": (publish(store, "serve/onnx/", "v1", both, {**model, "onnx": verified}), ROW)}
        if "sklearn" in wanted:
            uris["sklearn"] = (publish(store, "serve/native/", "v1", {"model.joblib": buffer.getvalue()}, model), ROW)
        for name, (_, data, file) in boosters.items():
            uris[name] = (publish(store, f"serve/{name}/", "v1", {file: data},
                                  {"file": file, "format": name, "task": "classification", "classes": ["no", "yes"]}),
                          NUMERIC_ROW)
        env = {**os.environ, **seaweed.env(), "RETRAIN_LOG_LEVEL": "WARNING"}
        _pin(1)
        for backend, (uri, row) in uris.items():
            results[backend] = _serve(env, uri, args, row)
    _pin(0)
    baselines = _baselines(pipeline, onnx, args.batch, min(args.seconds, 5.0))
    baselines.update(_booster_baselines({n: b for n, (b, _, _) in boosters.items()}, args.batch,
                                        min(args.seconds, 5.0)))
    served = results["onnxruntime"]
    report = {
        "estimator": args.estimator, "concurrency": args.concurrency, "seconds": args.seconds, "batch": args.batch,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg())},
        "onnx_labels_identical": identical,
        "one_row_rps": served["one_row_rps"], "one_row_p99_ms": served["one_row_p99_ms"],
        "batch_rows_per_s": served["batch_rows_per_s"],
        "served": results, "baselines": baselines, "targets": TARGETS,
        "targets_met": (served["one_row_rps"] >= TARGETS["one_row_rps"] and
                        served["one_row_p99_ms"] <= TARGETS["one_row_p99_ms"] and
                        served["batch_rows_per_s"] >= TARGETS["batch_rows_per_s"]),
    }
    print(f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after; "
          f"server on CPU 0, load generator on CPU 1; {args.estimator}, {args.concurrency} connections, "
          f"{args.seconds:.0f} s per load; ONNX labels identical on {len(check)} rows: {identical}")
    for backend, result in results.items():
        print(f"served by {result['format']}/{backend:>11}: 1 row {result['one_row_rps']:7.0f} req/s "
              f"(p50 {result['one_row_p50_ms']:6.2f} ms, p99 {result['one_row_p99_ms']:6.2f} ms); "
              f"{args.batch} rows {result['batch_rows_per_s']:8.0f} rows/s (p99 {result['batch_p99_ms']:6.2f} ms); "
              f"errors {result['errors']}")
    for backend, baseline in baselines.items():
        print(f"in-process {backend:>11}: 1 row {baseline['one_row_per_s']:7.0f} calls/s; {args.batch} rows "
              f"{baseline['batch_rows_per_s']:8.0f} rows/s (no HTTP, one core)")
    for backend, result in results.items():
        base = baselines[backend]
        print(f"ratio served/in-process ({backend}): 1 row {result['one_row_rps'] / base['one_row_per_s']:.2f}x, "
              f"batch {result['batch_rows_per_s'] / base['batch_rows_per_s']:.2f}x")
    if "sklearn" in results:
        native = results["sklearn"]
        print(f"onnxruntime vs scikit-learn served: 1 row {served['one_row_rps'] / native['one_row_rps']:.1f}x, "
              f"batch {served['batch_rows_per_s'] / native['batch_rows_per_s']:.1f}x")
    print("targets on the pipeline served by onnxruntime "
          f"(>= {TARGETS['one_row_rps']:.0f} req/s, p99 <= {TARGETS['one_row_p99_ms']:.0f} ms, "
          f">= {TARGETS['batch_rows_per_s']:.0f} rows/s) met: {report['targets_met']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
