"""`retrain-trainer drift`: compare the recent window of data with the current model's training profile.

Writes drift.json (and report.html) under <prefix>/<namespace>/<policy>/<uid>/drift/<check>/. Its
`verdict` is drift, no-drift or insufficient-data (too few rows for either): each is a result, not an
error, so the exit code is 0. Failures keep the trainer contract's codes (docs/drift.md#exit-codes):
a configuration that names what is not a feature is a ConfigError (2); no data in the window, a
profiled column missing, non-numeric values in a numeric column or an unusable profile a DataError
(3); the operator reports either and does not retrain on it.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import joblib
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retrain_contract.artifacts.errors import ChecksumMismatchError, DataError
from retrain_contract.artifacts.layout import MODEL_FILE, PROFILE_FILE
from retrain_contract.artifacts.objects import list_data_objects
from retrain_contract.artifacts.s3 import make_client
from retrain_contract.artifacts.store import ArtifactStore
from retrain_trainer.drift import sufficiency
from retrain_trainer.drift.engine import DriftCheck, Thresholds, to_json
from retrain_trainer.drift.inputs import (
    CurrentColumns,
    Names,
    ProfileError,
    check_profile,
    select_features,
    unreadable_message,
)
from retrain_trainer.drift.performance import PerformanceRule
from retrain_trainer.drift.performance import judge as judge_performance

from .drift_config import THRESHOLD_FIELDS, DriftConfig, instant
from .errors import ConfigError
from .tables import iter_batches

PERFORMANCE_ROWS = 50_000  # rows scored for performance drift (a sample of the window)


FIELD_NAMES = Names(columns="features", key_features="keyFeatures", target="target")


def _thresholds(config: DriftConfig) -> Thresholds:
    given = config.raw.get("thresholds") or {}
    values: dict[str, Any] = {THRESHOLD_FIELDS[k]: float(v) for k, v in given.items()
                              if k in THRESHOLD_FIELDS and v is not None}
    if given.get("correction") is not None:
        values["correction"] = str(given["correction"])
    try:
        return Thresholds(**values, key_features=tuple(config.raw.get("keyFeatures") or ()))
    except ValueError as error:
        raise ConfigError(f"invalid drift thresholds: {error}") from error


def _performance(config: DriftConfig, model: Any, features: list[str], rows: pa.Table,
                 held_out: dict[str, Any], held_out_rows: int | None = None) -> dict[str, Any] | None:
    """Score the model on the window's labelled rows and judge the drop (drift/performance.py)."""
    spec = config.raw.get("performance")
    if not spec:
        return None
    target = config["target"]
    if rows.num_rows and target in rows.column_names:
        rows = rows.filter(pc.is_valid(rows.column(target)))  # a row without its label is not labelled
    frame = rows.to_pandas() if rows.num_rows and target in rows.column_names else None
    y_true = frame[target].to_numpy() if frame is not None else np.empty(0)
    y_pred = model.predict(frame[features]) if frame is not None else np.empty(0)
    task = "regression" if config.raw.get("task") == "regression" else "classification"
    return judge_performance(PerformanceRule.from_spec(spec), task, y_true, y_pred, held_out, held_out_rows)


def run(config: DriftConfig) -> dict[str, Any]:
    storage = config.storage
    client = make_client(storage.get("endpoint"), storage.get("region"))
    output = ArtifactStore(client, storage["bucket"])
    store, model_prefix = config.model_location(output)
    manifest = store.read_manifest(model_prefix)
    if manifest is None:
        raise DataError(f"model {config['modelVersion']} has no manifest at s3://{store.bucket}/{model_prefix}")
    try:
        profile = check_profile(json.loads(store.load_verified(model_prefix, manifest, PROFILE_FILE)))
    except (ChecksumMismatchError, ProfileError, ValueError) as error:  # ValueError: not JSON, not UTF-8
        raise DataError(f"the reference profile cannot be used: {error}") from error

    now = instant(config["now"])
    since = now - dt.timedelta(seconds=float(config["windowSeconds"]))
    objects = [obj for obj in list_data_objects(client, config["data"]) if since <= obj.last_modified <= now]
    if not objects:
        raise DataError(f"no data under {config['data']} in the window {since:%Y-%m-%dT%H:%M:%SZ} .. "
                        f"{now:%Y-%m-%dT%H:%M:%SZ}")

    # The target is never a feature (its drift is performance drift); every name asked for must be one.
    features = select_features(list(profile["features"]), config.raw.get("features"), config["target"],
                               config.raw.get("keyFeatures") or (), FIELD_NAMES)
    min_rows = int(config.raw.get("minRows", sufficiency.DEFAULT_MIN_ROWS))
    check = DriftCheck(profile, _thresholds(config), columns=features, min_rows=min_rows)
    columns = CurrentColumns(features, set(profile["features"]) | {config["target"]})
    wants_performance = bool(config.raw.get("performance"))
    labeled: list[pa.Table] = []
    rng = np.random.default_rng(0)
    for obj in objects:
        for batch in columns.watch(iter_batches(client, obj), obj.uri):
            check.add(batch)
            if wants_performance and config["target"] in batch.schema.names:
                keep = rng.random(batch.num_rows) < PERFORMANCE_ROWS / max(check.rows, 1)
                labeled.append(pa.Table.from_batches([batch]).filter(pa.array(keep)))
    result = check.result()
    bad = {name: f["nonNumeric"] for name, f in result["features"].items() if f.get("nonNumeric")}
    if bad:
        raise DataError("non-numeric values in numeric column(s): " + unreadable_message(bad, result["features"]))

    performance = None
    if wants_performance:
        model = joblib.load(io.BytesIO(store.load_verified(model_prefix, manifest, MODEL_FILE)))
        metrics = store.get_json(model_prefix + "metrics.json") or {}
        rows = pa.concat_tables(labeled, promote_options="permissive") if labeled else pa.table({})
        performance = _performance(config, model, [f for f in manifest["model"]["features"]], rows,
                                   metrics.get("heldOut") or {}, (metrics.get("rows") or {}).get("test"))
    verdict = sufficiency.overall(result["verdict"], performance)
    document = to_json({
        "kind": "DriftResult", "checkId": config["checkId"], "modelVersion": config["modelVersion"],
        "checkedAt": config["now"], "window": {"from": f"{since:%Y-%m-%dT%H:%M:%SZ}", "to": config["now"]},
        "objects": [obj.uri for obj in objects], **result, "extraColumns": columns.extra,
        "performance": performance,
        "verdict": verdict,
        "drift": verdict == sufficiency.DRIFT,
        **({"verdictReason": sufficiency.summary(result)} if verdict == sufficiency.INSUFFICIENT_DATA else {}),
    })
    output.put_bytes(config.output_prefix + "drift.json", json.dumps(document, indent=2).encode(), "application/json")
    try:
        from retrain_trainer.drift.report import render_html

        output.put_bytes(config.output_prefix + "report.html", render_html(document, profile, check).encode(),
                        "text/html")
    except ImportError:
        pass  # the report needs matplotlib; drift.json is the contract
    return document
