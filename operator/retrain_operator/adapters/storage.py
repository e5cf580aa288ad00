"""The operator's view of a policy's S3 storage: reachable?, what did a run leave?, how much new data?

Credentials come from the Secret the policy names, read at each reconcile and never logged or
written to status. Storage failures become (reason, message) pairs for status conditions.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from retrain_contract.api.spec import PolicySpec
from retrain_contract.artifacts.checksums import sha256_bytes
from retrain_contract.artifacts.errors import (
    ACCESS_DENIED,
    BUCKET_NOT_FOUND,
    CORRUPT_ARTIFACT,
    STORAGE_UNREACHABLE,
    StorageError,
)
from retrain_contract.artifacts.identity import foreign_to_policy
from retrain_contract.artifacts.layout import (
    ERROR_FILE,
    MANIFEST_FILE,
    SIGNATURE_FILE,
    drift_prefix,
    policy_root,
    version_prefix,
)
from retrain_contract.artifacts.objects import list_data_objects
from retrain_contract.artifacts.signature import signature_problem
from retrain_contract.artifacts.store import ArtifactStore
from retrain_contract.artifacts.uris import parse_s3_uri
from retrain_contract.failures import S3_ERRORS, s3_failure

from ..core.observed import ArtifactOutcome, DriftOutcome
from .rowcount import count_rows
from .s3clients import CLIENTS, EndpointKey
from .signing import key_source

Problem = tuple[str, str]
log = logging.getLogger(__name__)


def recorded_uris(status: dict[str, Any]) -> dict[str, str]:
    """version -> URI of every version the status records (current, history, rollout): where they really are,
    which for versions trained before the uid layout is not where a new run of the same name would go."""
    uris: dict[str, str] = {}
    entries = [*(status.get("history") or []), status.get("rollout") or {}, status.get("currentModel") or {}]
    for entry in entries:
        if isinstance(entry, dict) and entry.get("version") and entry.get("uri"):
            uris[str(entry["version"])] = str(entry["uri"])
    return uris


@dataclass
class PolicyStorage:
    spec: PolicySpec
    namespace: str
    policy: str
    client: Any
    uid: str  # the policy incarnation: its runs' files live under <prefix>/<namespace>/<policy>/<uid>/
    recorded: dict[str, str] = field(default_factory=dict)  # recorded_uris(status)
    # With spec.signing: the key manifests must verify with, or why it is not usable (then nothing is judged).
    public_key: Ed25519PublicKey | None = None
    signing_problem: str | None = None

    @property
    def store(self) -> ArtifactStore:
        return ArtifactStore(self.client, self.spec.storage.bucket)

    def prefix(self, version: str) -> str:
        """Where a run of this incarnation writes `version` (never another incarnation's folder)."""
        return version_prefix(self.spec.storage.prefix, self.namespace, self.policy, version, uid=self.uid)

    def recorded_prefix(self, version: str) -> tuple[str, str]:
        """(bucket, key prefix) of a version the status recorded: its recorded URI, else this incarnation's folder."""
        uri = self.recorded.get(version)
        if uri:
            try:
                bucket, key = parse_s3_uri(uri)
                return bucket, key if key.endswith("/") else key + "/"
            except ValueError:
                pass
        return self.spec.storage.bucket, self.prefix(version)

    def uri(self, version: str) -> str:
        return f"s3://{self.spec.storage.bucket}/{self.prefix(version)}"

    def check_bucket(self) -> Problem | None:
        bucket = self.spec.storage.bucket
        try:
            self.client.head_bucket(Bucket=bucket)
        except S3_ERRORS as error:
            failure = s3_failure(error)
            message = {
                STORAGE_UNREACHABLE: f"cannot reach S3: {error}",
                BUCKET_NOT_FOUND: f"bucket {bucket!r} does not exist",
                ACCESS_DENIED: f"the credentials in the Secret cannot access bucket {bucket!r}",
            }.get(failure.reason, f"bucket {bucket!r}: {failure.summary}")
            return failure.reason, message
        return None

    def _unverifiable(self) -> str | None:
        """Why signatures cannot be checked now: the run waits (like S3 being unreadable), never passes."""
        if self.spec.signing is not None and self.public_key is None:
            return f"signatures cannot be verified: {self.signing_problem or 'no public key'}"
        return None

    def _signature(self, store: ArtifactStore, prefix: str, data: bytes | None) -> str | None:
        if self.spec.signing is None or self.public_key is None or data is None:
            return None
        return signature_problem(self.public_key, data, store.get_bytes(prefix + SIGNATURE_FILE),
                                 key_source(self.spec.signing))

    def outcome(self, version: str) -> ArtifactOutcome:
        """What S3 holds for a version; a read failure is reported, never taken as 'no manifest'."""
        prefix = self.prefix(version)
        uri = self.uri(version)
        if unverifiable := self._unverifiable():
            return ArtifactOutcome(manifest=None, uri=uri, storage_error=unverifiable)
        try:
            store = self.store
            manifest, data = store.read_manifest_bytes(prefix)
            foreign = foreign_to_policy(manifest, self.uid) if manifest is not None else None
            if foreign:  # never recorded as this run's result, whatever the Job says
                return ArtifactOutcome(manifest=None, error=store.read_error(prefix), uri=uri, foreign=foreign)
            problems = tuple(store.verify(prefix, manifest)) if manifest is not None else ()
            unsigned = self._signature(store, prefix, data)
            # Also next to a manifest: a run refused as a VersionConflict explains itself there.
            error = store.read_error(prefix)
        except StorageError as error:
            return ArtifactOutcome(manifest=None, uri=uri, storage_error=f"{error.reason}: {error.message}")
        return ArtifactOutcome(manifest=manifest, problems=problems, error=error, uri=uri,
                               manifest_sha256=sha256_bytes(data) if data is not None else None,
                               signature_problem=unsigned)

    def outcome_at(self, uri: str) -> ArtifactOutcome:
        """A recorded version re-read where the status says it is (the servers load it from there)."""
        try:
            bucket, prefix = parse_s3_uri(uri if uri.endswith("/") else uri + "/")
            store = ArtifactStore(self.client, bucket)
            manifest, data = store.read_manifest_bytes(prefix)
            problems = tuple(store.verify(prefix, manifest)) if manifest is not None else ()
            unsigned = self._signature(store, prefix, data)
        except ValueError as error:
            return ArtifactOutcome(manifest=None, uri=uri, storage_error=str(error))
        except StorageError as error:
            if error.reason == CORRUPT_ARTIFACT:  # read fine, but not what was recorded: a finding
                return ArtifactOutcome(manifest=None, problems=(error.message,), uri=uri)
            return ArtifactOutcome(manifest=None, uri=uri, storage_error=f"{error.reason}: {error.message}")
        return ArtifactOutcome(manifest=manifest, problems=problems, uri=uri,
                               manifest_sha256=sha256_bytes(data) if data is not None else None,
                               signature_problem=unsigned)

    def drift_outcome(self, check_id: str) -> DriftOutcome:
        prefix = drift_prefix(self.spec.storage.prefix, self.namespace, self.policy, check_id, uid=self.uid)
        uri = f"s3://{self.spec.storage.bucket}/{prefix}"
        try:
            store = self.store
            result = store.get_json(prefix + "drift.json")
            error = store.get_json(prefix + ERROR_FILE) if result is None else None
        except StorageError as error:
            return DriftOutcome(result=None, uri=uri, storage_error=f"{error.reason}: {error.message}")
        return DriftOutcome(result=result, error=error, uri=uri)

    def new_samples(self, current_version: str | None) -> int:
        """Rows in incoming objects the current version was not trained on."""
        if not self.spec.data.incoming:
            return 0
        used: set[tuple[str, str]] = set()
        if current_version:
            bucket, prefix = self.recorded_prefix(current_version)
            manifest = ArtifactStore(self.client, bucket).read_manifest(prefix) or {}
            for item in (manifest.get("data") or {}).get("objects") or []:
                used.add((str(item.get("uri")), str(item.get("etag"))))
        total = 0
        for obj in list_data_objects(self.client, self.spec.data.incoming):
            if (obj.uri, obj.etag) not in used:
                total += count_rows(self.client, obj)
        return total

    def _keys(self, bucket: str, prefix: str) -> list[str]:
        return [item["Key"] for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix) for item in page.get("Contents", [])]

    def prune(self, versions: list[str]) -> None:
        """Delete old versions' files where they were recorded; the manifest first, so a half-deleted version
        reads as unfinished. Only below this policy's folder in its bucket: a status never points pruning elsewhere."""
        root = policy_root(self.spec.storage.prefix, self.namespace, self.policy)
        for version in versions:
            bucket, prefix = self.recorded_prefix(version)
            if bucket != self.spec.storage.bucket or not prefix.startswith(root) or prefix == root:
                log.warning("not pruning %s of %s/%s: s3://%s/%s is outside s3://%s/%s", version, self.namespace,
                            self.policy, bucket, prefix, self.spec.storage.bucket, root)
                continue
            keys = self._keys(bucket, prefix)
            keys.sort(key=lambda key: not key.endswith("manifest.json"))
            for key in keys:
                self.client.delete_object(Bucket=bucket, Key=key)

    def discard_partial(self, versions: list[str]) -> None:
        """Delete what failed runs uploaded before they failed, but never a finished version (one with a
        manifest) and not error.json, which says why the run failed."""
        for version in versions:
            prefix = self.prefix(version)
            keys = self._keys(self.spec.storage.bucket, prefix)
            if prefix + MANIFEST_FILE in keys:
                continue
            for key in keys:
                if key != prefix + ERROR_FILE:
                    self.client.delete_object(Bucket=self.spec.storage.bucket, Key=key)


def credentials_from_secret(spec: PolicySpec, secret: dict[str, Any] | None, namespace: str) \
        -> tuple[dict[str, str] | None, Problem | None]:
    ref = spec.storage.credentials
    if secret is None:
        return None, ("SecretNotFound", f"Secret {ref.name!r} (spec.storage.credentialsSecret) "
                                        f"does not exist in namespace {namespace!r}")
    data = secret.get("data") or {}
    string_data = secret.get("stringData") or {}
    wanted = {"aws_access_key_id": ref.access_key_id_key, "aws_secret_access_key": ref.secret_access_key_key}
    if ref.session_token_key:
        wanted["aws_session_token"] = ref.session_token_key
    values: dict[str, str] = {}
    missing = []
    for arg, key in wanted.items():
        if key in data:
            values[arg] = base64.b64decode(data[key]).decode()
        elif key in string_data:
            values[arg] = str(string_data[key])
        else:
            missing.append(key)
    if missing:
        return None, ("SecretKeyMissing", f"Secret {ref.name!r} has no key(s) {', '.join(missing)}")
    return values, None


def storage_endpoint(spec: PolicySpec, endpoint: str | None = None) -> EndpointKey:
    """The storage bulkhead's key (adapters/bulkhead.py): calls queue only behind calls to the same endpoint."""
    return EndpointKey(endpoint or spec.storage.endpoint or "", spec.storage.region or "")


def client_for(spec: PolicySpec, credentials: dict[str, str], endpoint: str | None = None) -> Any:
    """An S3 client for the policy's storage; `endpoint` overrides the spec's (e.g. a port-forward).

    Reused per endpoint, region and credentials, with the operator's timeouts (adapters/s3clients.py);
    call it off the event loop."""
    return CLIENTS.get(storage_endpoint(spec, endpoint), credentials)
