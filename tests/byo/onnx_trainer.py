"""A trainer image of one's own, for the tests: not the project's trainer, only its contract.

Reads the run configuration (RETRAIN_RUN_CONFIG), trains a small scikit-learn pipeline on every
Parquet object of the history and incoming prefixes, exports it to ONNX (one input per feature,
probabilities without ZipMap) and writes model.onnx, metrics.json and, last, a manifest declaring
`model.format: onnx`, as docs/trainer-contract.md says. It imports nothing of the project.
Run by the dev cluster's kubelet as the policy's `training.command`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys

import boto3
import pandas as pd
import pyarrow.parquet as pq
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def _objects(s3, uri: str | None) -> list[pd.DataFrame]:
    if not uri:
        return []
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return [pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())).to_pandas()
            for o in listed if o["Key"].endswith(".parquet")]


def main() -> int:
    config = json.loads(os.environ["RETRAIN_RUN_CONFIG"])
    storage, policy, model = config["storage"], config["policy"], config["model"]
    s3 = boto3.client("s3", endpoint_url=storage.get("endpoint") or None, region_name=storage.get("region"))
    frames = _objects(s3, config["data"]["history"]) + _objects(s3, config["data"].get("incoming"))
    if not frames:
        print("retrain-trainer: error: DataError: no data", file=sys.stderr)
        return 3
    data = pd.concat(frames, ignore_index=True)
    features, target = model["features"], model["target"]
    numeric = [f for f in features if pd.api.types.is_numeric_dtype(data[f])]
    categorical = [f for f in features if f not in numeric]
    x = data[features].astype({**{f: float for f in numeric}, **{f: object for f in categorical}})
    y = data[target].astype(str)
    pipeline = Pipeline([
        ("prepare", ColumnTransformer([
            ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical)])),
        ("estimator", SGDClassifier(loss="log_loss", random_state=0)),
    ]).fit(x, y)
    types = [(f, FloatTensorType([None, 1]) if f in numeric else StringTensorType([None, 1])) for f in features]
    onnx = convert_sklearn(pipeline, initial_types=types,
                           options={id(pipeline.named_steps["estimator"]): {"zipmap": False}}).SerializeToString()
    accuracy = float((pipeline.predict(x) == y).mean())
    metrics = {"task": "classification", "version": config["version"], "heldOut": {"accuracy": accuracy}}
    files = {"model.onnx": onnx, "metrics.json": json.dumps(metrics).encode()}
    prefix = "/".join(p for p in (storage["prefix"], policy["namespace"], policy["name"], policy["uid"],
                                  config["version"]) if p) + "/"
    for name, body in files.items():
        s3.put_object(Bucket=storage["bucket"], Key=prefix + name, Body=body)
    manifest = {
        "version": config["version"], "parentVersion": config["parentVersion"], "policy": policy,
        "files": {n: {"sha256": hashlib.sha256(b).hexdigest(), "size": len(b)} for n, b in files.items()},
        "metrics": {"accuracy": accuracy},
        "model": {"file": "model.onnx", "format": "onnx", "task": "classification", "target": target,
                  "features": features, "classes": [str(c) for c in pipeline.classes_]},
    }
    s3.put_object(Bucket=storage["bucket"], Key=prefix + "manifest.json", Body=json.dumps(manifest).encode(),
                  IfNoneMatch="*")
    return 0


if __name__ == "__main__":
    sys.exit(main())
