"""XGBoost and LightGBM against scikit-learn's HistGradientBoosting: training time and accuracy, on the CPU.

Each estimator is fitted through the trainer's own pipeline (retrain_trainer.model.new_pipeline:
one-hot for HistGradientBoosting, native categoricals for XGBoost and LightGBM) on the same rows,
with the same number of trees and learning rate, in this one process; ratios are against
HistGradientBoosting measured in the same run. Then the trainer's ONNX step (conversion and
verification on the held-out rows) per estimator. The load average is printed because the
machine may be shared: compare runs only at similar load.
`--threads 1` measures one thread each (less sensitive to other load than all cores).
Run: .venv/bin/python benchmarks/gbm_bench.py [--rows 100000] [--repeat 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np
import pandas as pd

from retrain_trainer import onnx_export
from retrain_trainer.model import new_pipeline
from retrain_trainer.strategies import Selection, fit

TREES, RATE, SEED = 100, 0.1, 0
# Same trees and rate for all; 31 leaves each (HistGradientBoosting's and LightGBM's default),
# XGBoost grows the same leaf-wise trees; no early stopping (HistGradientBoosting's default would stop early).
ESTIMATORS: dict[str, dict[str, Any]] = {
    "HistGradientBoostingClassifier": {"max_iter": TREES, "learning_rate": RATE, "early_stopping": False,
                                       "random_state": SEED},
    "XGBClassifier": {"n_estimators": TREES, "learning_rate": RATE, "max_leaves": 31, "max_depth": 0,
                      "grow_policy": "lossguide", "tree_method": "hist", "random_state": SEED},
    "LGBMClassifier": {"n_estimators": TREES, "learning_rate": RATE, "num_leaves": 31, "random_state": SEED},
}


def rows(n: int, seed: int = SEED) -> pd.DataFrame:
    """16 numeric and 4 categorical features (4 to 50 categories); the label needs both kinds."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(16)})
    for name, levels in (("color", 4), ("size", 3), ("region", 12), ("store", 50)):
        frame[name] = rng.choice([f"{name}{k}" for k in range(levels)], size=n)
    store_effect = dict(zip([f"store{k}" for k in range(50)], rng.normal(scale=1.0, size=50), strict=True))
    score = (frame["x0"] + 0.5 * frame["x1"] * frame["x2"] - np.abs(frame["x3"]) + (frame["color"] == "color0")
             + frame["store"].map(store_effect) + 0.3 * rng.normal(size=n))
    frame["label"] = np.where(score > 0.0, "pos", "neg")
    return frame


class _Config:
    def __init__(self, estimator: str):
        self.estimator = estimator


def measure(estimator: str, train: pd.DataFrame, test: pd.DataFrame, features: list[str],
            repeat: int, threads: int | None) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    params = dict(ESTIMATORS[estimator])
    if threads and estimator != "HistGradientBoostingClassifier":
        params["n_jobs"] = threads  # XGBoost's and LightGBM's own thread count; HGB's is OpenMP's, below
    times = []
    for _ in range(repeat):
        pipeline = new_pipeline(estimator, params, train, features)
        started = time.perf_counter()
        with threadpool_limits(limits=threads):
            fit(pipeline, Selection(train), features, "label", incremental=False,
                config=_Config(estimator))  # type: ignore[arg-type]
        times.append(time.perf_counter() - started)
    accuracy = float((pipeline.predict(test[features]) == test["label"]).mean())
    started = time.perf_counter()
    data, record = onnx_export.export(pipeline, train, test, features, "classification")
    onnx_seconds = time.perf_counter() - started
    return {"fitSeconds": min(times), "fitSecondsAll": [round(t, 3) for t in times], "accuracy": accuracy,
            "onnxSeconds": round(onnx_seconds, 3), "onnxBytes": len(data) if data else 0, "onnx": record}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="threads per fit (default: all cores)")
    args = parser.parse_args()
    frame = rows(args.rows + args.rows // 4)
    train, test = frame.iloc[:args.rows], frame.iloc[args.rows:]
    features = [c for c in frame.columns if c != "label"]
    load_before = os.getloadavg()
    results = {name: measure(name, train, test, features, args.repeat, args.threads) for name in ESTIMATORS}
    base = results["HistGradientBoostingClassifier"]["fitSeconds"]
    print(f"{args.rows} training rows, {len(test)} held out, {len(features)} features (4 categorical), "
          f"{TREES} trees, best of {args.repeat}, threads {args.threads or 'all'}; cpus {os.cpu_count()}, "
          f"load average before "
          f"{tuple(round(x, 2) for x in load_before)}, after {tuple(round(x, 2) for x in os.getloadavg())}")
    print(f"{'estimator':32} {'fit s':>8} {'vs HGB':>7} {'accuracy':>9} {'onnx s':>7}  onnx")
    for name, result in results.items():
        onnx = result["onnx"]
        verdict = (f"verified on {onnx['rows']} rows, max |dp| {onnx['maxProbabilityDifference']:.2g}"
                   if onnx.get("verified") else f"not shipped: {onnx.get('reason', '')[:80]}")
        print(f"{name:32} {result['fitSeconds']:8.2f} {result['fitSeconds'] / base:7.2f} {result['accuracy']:9.4f} "
              f"{result['onnxSeconds']:7.2f}  {verdict}")
    print(json.dumps({"rows": args.rows, "threads": args.threads, "loadavg": load_before, "results": results},
                     default=str))


if __name__ == "__main__":
    main()
