"""One training run: load, validate, select, fit, evaluate, publish (manifest last)."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import io
import json
import logging
import os
import platform
import time
from importlib import metadata
from typing import Any

import joblib
import pandas as pd
import pyarrow as pa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sklearn.model_selection import train_test_split

from retrain_contract.api import names
from retrain_contract.artifacts.errors import ChecksumMismatchError, DataError
from retrain_contract.artifacts.identity import foreign_to_run
from retrain_contract.artifacts.layout import (
    MANIFEST_FILE,
    METRICS_FILE,
    MODEL_FILE,
    PROFILE_FILE,
    SIGNATURE_FILE,
    version_prefix,
)
from retrain_contract.artifacts.s3 import make_client
from retrain_contract.artifacts.signature import SigningKeyError, load_private_key, sign
from retrain_contract.artifacts.store import ArtifactStore, encode_manifest
from retrain_contract.artifacts.uris import parse_s3_uri
from retrain_trainer.drift.engine import to_json
from retrain_trainer.drift.profile import build_profile

from . import accelerator, boosting, dataset, evaluate, onnx_export, strategies
from . import champion as champion_module
from .checksum_files import describe
from .config import RunConfig
from .errors import ConfigError, VersionConflict
from .model import new_pipeline

log = logging.getLogger(__name__)
MODEL_FORMAT = "sklearn-joblib"  # model.joblib: a scikit-learn Pipeline, preprocessing and estimator


def _parent_location(store: ArtifactStore, config: RunConfig) -> tuple[ArtifactStore, str]:
    """Where the parent is: its recorded URI (it may predate the uid layout), else this incarnation's folder."""
    if config.parent_uri:
        bucket, key = parse_s3_uri(config.parent_uri)
        key = key if not key or key.endswith("/") else key + "/"
        return (store if bucket == config.bucket else ArtifactStore(store.client, bucket)), key
    assert config.parent_version
    return store, version_prefix(config.prefix, config.namespace, config.policy, config.parent_version, uid=config.uid)


def _parent(store: ArtifactStore, config: RunConfig) -> tuple[Any, dict[str, Any]] | None:
    if not config.parent_version:
        return None
    store, prefix = _parent_location(store, config)
    manifest = store.read_manifest(prefix)
    if manifest is None:
        raise DataError(f"the parent version {config.parent_version} has no manifest at s3://{store.bucket}/{prefix}")
    try:
        model_bytes = store.load_verified(prefix, manifest, (manifest.get("model") or {}).get("file", MODEL_FILE))
    except ChecksumMismatchError as error:
        raise DataError(f"the parent model cannot be trusted: {error}") from error
    return joblib.load(io.BytesIO(model_bytes)), manifest


def _split(frame: pd.DataFrame, config: RunConfig, weights: Any) -> tuple[pd.DataFrame, pd.DataFrame, Any]:
    stratify = frame[config.target] if config.task == "classification" else None
    if stratify is not None and stratify.value_counts().min() < 2:
        stratify = None
    index = frame.index.to_numpy()
    train_index, test_index = train_test_split(index, test_size=config.test_fraction,
                                               random_state=config.random_seed, stratify=stratify)
    positions = pd.Series(range(len(frame)), index=frame.index)
    train_weights = None if weights is None else weights[positions.loc[train_index].to_numpy()]
    return frame.loc[train_index], frame.loc[test_index], train_weights


def _libraries() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("scikit-learn", "numpy", "pandas", "pyarrow", "joblib", "xgboost", "lightgbm", "skl2onnx",
                    "onnxruntime", "retrain-operator"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


def _signing_key(config: RunConfig) -> Ed25519PrivateKey | None:
    """The key to sign with, checked before any work: a run asked to sign never publishes unsigned."""
    if not config.signing_key_env:
        return None
    pem = os.environ.get(config.signing_key_env)
    if not pem:
        raise ConfigError(f"the run configuration asks for a signature but ${config.signing_key_env} is empty")
    try:
        return load_private_key(pem)
    except SigningKeyError as error:  # the message names the problem, never the key
        raise ConfigError(f"${config.signing_key_env}: {error}") from error


def run(config: RunConfig) -> dict[str, Any]:
    """Train one version; returns its manifest. Raises ConfigError / DataError / StorageError."""
    started = time.monotonic()
    client = make_client(config.endpoint, config.region)
    store = ArtifactStore(client, config.bucket)
    prefix = config.output_prefix
    existing = store.read_manifest(prefix)
    if existing is not None:
        # A retry of this very run after the manifest was written: done. Anything else under this
        # name (another incarnation of the policy, another configuration) is never taken as ours.
        conflict = foreign_to_run(existing, config.uid, config.digest)
        if conflict:
            raise VersionConflict(f"s3://{config.bucket}/{prefix}{MANIFEST_FILE}: {conflict}; it is left as it is")
        log.info("s3://%s/%smanifest.json exists: version %s is already finished", config.bucket, prefix,
                 config.version)
        return existing
    signing_key = _signing_key(config)

    # The champion (the current model) is loaded for every strategy: incremental continues from
    # it, and every challenger is measured against it. Only incremental cannot do without it.
    champion_problem = None
    try:
        champion = _parent(store, config)
    except DataError as error:
        if config.strategy == "incremental":
            raise
        champion, champion_problem = None, str(error)
    parent = champion if config.strategy == "incremental" else None
    loaded = dataset.load(client, config)
    features = dataset.feature_columns(loaded.frame, config)
    dataset.validate(loaded.frame, features, config)
    champion_data = (champion[1].get("data") or {}) if champion else {}
    used_before = {item["uri"] for item in champion_data.get("objects") or []}
    new_uris = {obj.uri for obj in loaded.objects if obj.uri not in loaded.history_uris and obj.uri not in used_before}

    if config.strategy == "incremental" and parent is not None:
        selection = strategies.select_incremental(loaded.frame, new_uris, config.replay_fraction, config.random_seed)
    elif config.strategy == "window":
        selection = strategies.select_window(loaded.frame, config.timestamp_column, config.window_seconds,
                                             config.half_life_seconds)
    else:
        selection = strategies.select_full(loaded.frame, new_uris)
    if len(selection.frame) < config.min_rows:
        raise DataError(f"{len(selection.frame)} rows selected by strategy {config.strategy}, fewer than "
                        f"validation.minRows={config.min_rows}")

    train, test, weights = _split(selection.frame, config, selection.weights)
    fit_selection = strategies.Selection(train, weights=weights)
    detected = accelerator.detect()
    device = boosting.choose_device(config.estimator, config.gpus, detected)
    loaded_at = time.monotonic()
    if parent is not None:
        # A copy: the champion (the same loaded object) must still be the parent when measured below.
        pipeline = strategies.continue_from(copy.deepcopy(parent[0]), config, device)
        strategies.fit(pipeline, fit_selection, features, config.target, incremental=True, config=config)
    else:
        pipeline = new_pipeline(config.estimator, config.params, train, features, device)
        strategies.fit(pipeline, fit_selection, features, config.target, incremental=False, config=config)
    fitted_at = time.monotonic()
    onnx_bytes, onnx_record = onnx_export.export(pipeline, train, test, features, config.task)
    converted_at = time.monotonic()

    predictions = pipeline.predict(test[features])
    if config.task == "classification":
        held_out = evaluate.classification(test[config.target], predictions)
    else:
        held_out = evaluate.regression(test[config.target], predictions)
    rows = {**selection.rows, "train": len(train), "test": len(test)}
    against = champion_module.measure(pipeline, test, features, config.target, config.task,
                                      {obj.uri: obj.etag for obj in loaded.objects}, champion, champion_problem)
    metrics_doc = {"task": config.task, "version": config.version, "heldOut": held_out, "rows": rows, **against}

    model_buffer = io.BytesIO()
    joblib.dump(pipeline, model_buffer)
    # The reference for later drift checks: what this model was trained on, features and target.
    reference = pa.Table.from_pandas(train[[*features, config.target]], preserve_index=False)
    # The target is recorded so that `compare --reference profile.json` does not take it for a feature.
    profile = to_json({**build_profile([reference], seed=config.random_seed), "target": config.target})
    files = {MODEL_FILE: model_buffer.getvalue(),
             METRICS_FILE: json.dumps(metrics_doc, indent=2, sort_keys=True).encode(),
             PROFILE_FILE: json.dumps(profile, allow_nan=False).encode()}
    if onnx_bytes is not None:
        files[onnx_export.ONNX_FILE] = onnx_bytes
    for name, data in files.items():
        store.put_bytes(prefix + name, data, "application/json" if name.endswith(".json") else
                        "application/octet-stream")

    objects = [{"uri": obj.uri, "etag": obj.etag, "size": obj.size} for obj in loaded.objects]
    identity = hashlib.sha256("\n".join(f"{o['uri']} {o['etag']}" for o in sorted(
        objects, key=lambda o: o["uri"])).encode()).hexdigest()
    estimator = pipeline.named_steps["estimator"]
    manifest = {
        "apiVersion": names.API_VERSION,
        "kind": "ModelManifest",
        "version": config.version,
        "parentVersion": config.parent_version,
        "policy": {"namespace": config.namespace, "name": config.policy, **({"uid": config.uid} if config.uid else {})},
        "configDigest": config.digest,
        "trigger": config.trigger,
        "createdAt": dt.datetime.now(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": describe(files),
        "profile": PROFILE_FILE,
        "model": {"file": MODEL_FILE, "format": MODEL_FORMAT, "estimator": config.estimator, "params": config.params,
                  "task": config.task, "target": config.target, "features": features,
                  "classes": [str(c) for c in getattr(estimator, "classes_", [])], "onnx": onnx_record},
        "data": {"identity": identity, "objects": objects, "rows": rows},
        "training": {"strategy": config.strategy, "continuedFrom": config.parent_version if parent else None,
                     "replayFraction": config.replay_fraction if config.strategy == "incremental" else None,
                     "accelerator": detected,
                     "device": boosting.device_used(estimator, device), "deviceReason": device.reason,
                     **({"trees": boosting.trees(estimator)} if config.estimator in boosting.BOOSTING else {}),
                     "durationSeconds": round(time.monotonic() - started, 3),
                     "phases": {"loadSeconds": round(loaded_at - started, 3),
                                "fitSeconds": round(fitted_at - loaded_at, 3),
                                "onnxSeconds": round(converted_at - fitted_at, 3)},
                     **selection.notes},
        "metrics": evaluate.headline(config.task, held_out),
        # What the operator's quality gates judge (docs/promotion.md); the full record is metrics.json.
        "evaluation": {"heldOut": {key: value for key, value in held_out.items() if key != "confusionMatrix"},
                       **against},
        "libraries": _libraries(),
    }
    body = encode_manifest(manifest)
    if signing_key is not None:  # before the manifest: a signed run's manifest never exists without it
        store.put_bytes(prefix + SIGNATURE_FILE, sign(signing_key, body), "text/plain")
    store.put_manifest(prefix + MANIFEST_FILE, body)  # last: now the version exists
    return manifest
