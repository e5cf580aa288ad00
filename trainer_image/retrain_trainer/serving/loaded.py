"""Loading a model version for serving: only bytes that match its manifest are ever loaded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from retrain_contract.artifacts.checksums import sha256_bytes
from retrain_contract.artifacts.errors import CORRUPT_ARTIFACT, ChecksumMismatchError, DataError, StorageError
from retrain_contract.artifacts.layout import PROFILE_FILE, SIGNATURE_FILE
from retrain_contract.artifacts.signature import signature_problem
from retrain_contract.artifacts.store import ArtifactStore
from retrain_contract.artifacts.uris import parse_s3_uri

from .predictors import Predictor, load_predictor
from .schema import FeatureSchema


@dataclass(frozen=True)
class LoadedModel:
    predictor: Predictor
    version: str
    uri: str
    task: str
    schema: FeatureSchema
    classes: tuple[str, ...]

    @property
    def has_probabilities(self) -> bool:
        return self.predictor.has_probabilities

    @property
    def format(self) -> str:
        return self.predictor.format

    @property
    def backend(self) -> str:
        return self.predictor.backend


def load(store_for: Any, uri: str, manifest_sha256: str | None = None,
         public_key: Ed25519PublicKey | None = None) -> LoadedModel:
    """The model at `uri` (s3://bucket/.../<version>/); DataError when it is unfinished or tampered with.

    The manifest's checksums prove the files match the manifest, not that the manifest is the one the
    operator recorded: with `manifest_sha256` (the digest pinned in the policy's status) a manifest
    rewritten after the version was recorded, however consistent, is refused too. With `public_key`
    the manifest must also carry a signature by the matching private key (who built it)."""
    bucket, prefix = parse_s3_uri(uri if uri.endswith("/") else uri + "/")
    store: ArtifactStore = store_for(bucket)
    try:
        manifest, data = store.read_manifest_bytes(prefix)
    except StorageError as error:
        if error.reason != CORRUPT_ARTIFACT:
            raise
        raise DataError(f"refusing to serve {uri}: {error.message}") from error
    if manifest is None:
        raise DataError(f"{uri} has no manifest.json: not a finished model version")
    digest = sha256_bytes(data or b"")
    if manifest_sha256 and digest != manifest_sha256.lower():
        raise DataError(f"refusing to serve {uri}: manifest.json has sha256 {digest}, not the pinned "
                        f"{manifest_sha256.lower()} recorded when the version was trained: it was rewritten since")
    if public_key is not None:
        problem = signature_problem(public_key, data or b"", store.get_bytes(prefix + SIGNATURE_FILE),
                                    "the public key given (--public-key-file)")
        if problem:
            raise DataError(f"refusing to serve {uri}: {problem}")
    info = manifest.get("model") or {}
    features = list(info.get("features") or [])
    if not features:
        raise DataError(f"the manifest of {uri} names no features")
    files = manifest.get("files") or {}
    try:
        predictor = load_predictor(info, files, lambda name: store.load_verified(prefix, manifest, name), features)
        profile = (json.loads(store.load_verified(prefix, manifest, PROFILE_FILE)) if PROFILE_FILE in files else None)
    except ChecksumMismatchError as error:
        raise DataError(f"refusing to serve {uri}: {error}") from error
    classes = predictor.classes or tuple(str(c) for c in info.get("classes") or ())  # the probabilities' order
    return LoadedModel(predictor=predictor, version=str(manifest.get("version")), uri=uri,
                       task=str(info.get("task", "classification")),
                       schema=FeatureSchema.of(predictor.numeric(features), features, profile), classes=classes)
