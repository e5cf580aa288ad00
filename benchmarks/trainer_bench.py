"""Trainer wall time on 100,000 rows, against plain in-memory `fit` on the same data (the baseline).

Starts its own SeaweedFS, uploads a 100k-row table (20 numeric + 2 categorical features), runs the
real `retrain-trainer train` entrypoint and prints its phases and the ratio to the baseline.
Run: .venv/bin/python benchmarks/trainer_bench.py [--rows 100000] [--estimator HistGradientBoostingClassifier]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from retrain_contract.artifacts.store import ArtifactStore
from retrain_sandbox.seaweed import SeaweedS3


def table(rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    columns = {f"x{i}": rng.normal(size=rows) for i in range(20)}
    columns["color"] = rng.choice(["red", "green", "blue", "black"], size=rows)
    columns["size"] = rng.choice(["s", "m", "l"], size=rows)
    score = columns["x0"] + 0.5 * columns["x1"] - columns["x2"] + (columns["color"] == "red") + rng.normal(size=rows)
    columns["label"] = np.where(score > 0.5, "pos", "neg")
    return pa.table(columns)


def baseline(data: pa.Table, estimator: str, params: dict) -> float:
    """The same pipeline, fitted in memory with no S3, no validation, no evaluation, no upload."""
    from retrain_trainer.model import new_pipeline

    frame = data.to_pandas()
    features = [c for c in frame.columns if c != "label"]
    started = time.perf_counter()
    new_pipeline(estimator, params, frame, features).fit(frame[features], frame["label"])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--estimator", default="HistGradientBoostingClassifier")
    args = parser.parse_args()
    params = {"max_iter": 100, "random_state": 0} if "Hist" in args.estimator else {"random_state": 0}
    data = table(args.rows)
    sink = io.BytesIO()
    pq.write_table(data, sink)
    with tempfile.TemporaryDirectory() as workdir, SeaweedS3(Path(workdir)) as seaweed:
        s3 = seaweed.client()
        s3.create_bucket(Bucket="bench")
        s3.put_object(Bucket="bench", Key="data/part-0.parquet", Body=sink.getvalue())
        config = {
            "policy": {"namespace": "bench", "name": "bench"}, "version": "v1", "parentVersion": None,
            "trigger": {"type": "manual"},
            "model": {"estimator": args.estimator, "task": "classification", "target": "label", "params": params},
            "data": {"history": "s3://bench/data/", "validation": {"minRows": 100}},
            "training": {"strategy": "full", "testFraction": 0.2},
            "storage": {"bucket": "bench", "prefix": "", "endpoint": seaweed.endpoint},
        }
        env = {**os.environ, **seaweed.env(), "RETRAIN_RUN_CONFIG": json.dumps(config)}
        started = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "retrain-trainer"), "train"], env=env, check=True,
                       capture_output=True)
        total = time.perf_counter() - started
        manifest = ArtifactStore(s3, "bench").read_manifest("bench/bench/v1/")
    fit_only = baseline(data.slice(0, int(args.rows * 0.8)), args.estimator, params)
    phases = manifest["training"]["phases"]
    print(f"rows={args.rows} estimator={args.estimator} machine={os.cpu_count()} cpus")
    print(f"trainer total (process start to exit): {total:.2f} s")
    print(f"  load+validate: {phases['loadSeconds']:.2f} s, fit: {phases['fitSeconds']:.2f} s, "
          f"in-process total: {manifest['training']['durationSeconds']:.2f} s")
    print(f"baseline in-memory fit of the same pipeline on the same training rows: {fit_only:.2f} s")
    print(f"ratio trainer/baseline: {total / fit_only:.2f}x  (held-out accuracy {manifest['metrics']['accuracy']:.3f})")


if __name__ == "__main__":
    main()
