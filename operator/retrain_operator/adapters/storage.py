"""The operator's view of a policy's S3 storage: reachable?, what did a run leave?, how much new data?

Credentials come from the Secret the policy names, read at each reconcile and never logged or
written to status. Storage failures become (reason, message) pairs for status conditions.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.client import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from ..api.spec import PolicySpec
from ..artifacts.data import count_rows, list_data_objects
from ..artifacts.errors import StorageError
from ..artifacts.layout import ERROR_FILE, drift_prefix, version_prefix
from ..artifacts.store import ArtifactStore
from ..core.observed import ArtifactOutcome, DriftOutcome

Problem = tuple[str, str]


@dataclass
class PolicyStorage:
    spec: PolicySpec
    namespace: str
    policy: str
    client: Any

    @property
    def store(self) -> ArtifactStore:
        return ArtifactStore(self.client, self.spec.storage.bucket)

    def prefix(self, version: str) -> str:
        return version_prefix(self.spec.storage.prefix, self.namespace, self.policy, version)

    def uri(self, version: str) -> str:
        return f"s3://{self.spec.storage.bucket}/{self.prefix(version)}"

    def check_bucket(self) -> Problem | None:
        bucket = self.spec.storage.bucket
        try:
            self.client.head_bucket(Bucket=bucket)
        except EndpointConnectionError as error:
            return "StorageUnreachable", f"cannot reach S3 endpoint: {error}"
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in {"404", "NoSuchBucket", "NotFound"} or status == 404:
                return "BucketNotFound", f"bucket {bucket!r} does not exist"
            if code in {"403", "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"} \
                    or status == 403:
                return "AccessDenied", f"the credentials in the Secret cannot access bucket {bucket!r}"
            return "StorageError", f"bucket {bucket!r}: {code or error}"
        except BotoCoreError as error:
            return "StorageUnreachable", f"cannot reach S3: {error}"
        return None

    def outcome(self, version: str) -> ArtifactOutcome:
        """What S3 holds for a version; a read failure is reported, never taken as 'no manifest'."""
        prefix = self.prefix(version)
        uri = self.uri(version)
        try:
            store = self.store
            manifest = store.read_manifest(prefix)
            problems = tuple(store.verify(prefix, manifest)) if manifest is not None else ()
            error = store.read_error(prefix) if manifest is None else None
        except StorageError as error:
            return ArtifactOutcome(manifest=None, uri=uri, storage_error=f"{error.reason}: {error.message}")
        return ArtifactOutcome(manifest=manifest, problems=problems, error=error, uri=uri)

    def drift_outcome(self, check_id: str) -> DriftOutcome:
        prefix = drift_prefix(self.spec.storage.prefix, self.namespace, self.policy, check_id)
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
            manifest = self.store.read_manifest(self.prefix(current_version)) or {}
            for item in (manifest.get("data") or {}).get("objects") or []:
                used.add((str(item.get("uri")), str(item.get("etag"))))
        total = 0
        for obj in list_data_objects(self.client, self.spec.data.incoming):
            if (obj.uri, obj.etag) not in used:
                total += count_rows(self.client, obj)
        return total

    def prune(self, versions: list[str]) -> None:
        """Delete old versions' files; the manifest first, so a half-deleted version reads as unfinished."""
        bucket = self.spec.storage.bucket
        for version in versions:
            prefix = self.prefix(version)
            keys = [item["Key"] for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix) for item in page.get("Contents", [])]
            keys.sort(key=lambda key: not key.endswith("manifest.json"))
            for key in keys:
                self.client.delete_object(Bucket=bucket, Key=key)


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


def client_for(spec: PolicySpec, credentials: dict[str, str], endpoint: str | None = None) -> Any:
    """An S3 client for the policy's storage; `endpoint` overrides the spec's (e.g. a port-forward)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint or spec.storage.endpoint or None,
        region_name=spec.storage.region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"},
                      connect_timeout=5, read_timeout=30),
        **credentials,
    )
