"""A version's files in S3: written with the manifest last, read back only when checksums hold."""

from __future__ import annotations

import json
from typing import Any

from ..failures import S3_ERRORS, is_missing_object, refused_precondition, storage_error
from .checksums import sha256_bytes
from .errors import CORRUPT_ARTIFACT, ChecksumMismatchError, StorageError, VersionExistsError
from .layout import ERROR_FILE, MANIFEST_FILE


def encode_manifest(manifest: dict[str, Any]) -> bytes:
    """manifest.json's bytes as written: what its digest and signature are computed over."""
    return json.dumps(manifest, indent=2, sort_keys=True).encode()


class ArtifactStore:
    def __init__(self, client: Any, bucket: str):
        self.client = client
        self.bucket = bucket

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        except S3_ERRORS as error:
            raise storage_error(error, f"writing s3://{self.bucket}/{key}") from error

    def put_manifest(self, key: str, manifest: dict[str, Any] | bytes) -> None:
        """Write a manifest once: a finished version never changes (If-None-Match: *).

        Bytes are written as they are (a signed manifest: the signature covers exactly these)."""
        body = manifest if isinstance(manifest, bytes) else encode_manifest(manifest)
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json",
                                   IfNoneMatch="*")
        except S3_ERRORS as error:
            if refused_precondition(error):
                raise VersionExistsError(f"s3://{self.bucket}/{key} already exists") from error
            raise storage_error(error, f"writing s3://{self.bucket}/{key}") from error

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except S3_ERRORS as error:
            if is_missing_object(error):
                return None
            raise storage_error(error, f"reading s3://{self.bucket}/{key}") from error

    def get_json(self, key: str) -> dict[str, Any] | None:
        data = self.get_bytes(key)
        if data is None:
            return None
        try:
            return json.loads(data)
        except json.JSONDecodeError as error:
            raise StorageError(CORRUPT_ARTIFACT, f"s3://{self.bucket}/{key} is not JSON: {error}") from error

    def read_manifest(self, version_prefix: str) -> dict[str, Any] | None:
        """The manifest, or None: a version without one is unfinished, whatever else is there."""
        return self.get_json(version_prefix + MANIFEST_FILE)

    def read_manifest_bytes(self, version_prefix: str) -> tuple[dict[str, Any] | None, bytes | None]:
        """The manifest and its bytes as stored (what a digest or a signature is checked against)."""
        key = version_prefix + MANIFEST_FILE
        data = self.get_bytes(key)
        if data is None:
            return None, None
        try:
            manifest = json.loads(data)
        except json.JSONDecodeError as error:
            raise StorageError(CORRUPT_ARTIFACT, f"s3://{self.bucket}/{key} is not JSON: {error}") from error
        if not isinstance(manifest, dict):
            raise StorageError(CORRUPT_ARTIFACT, f"s3://{self.bucket}/{key} is not a JSON object")
        return manifest, data

    def read_error(self, version_prefix: str) -> dict[str, Any] | None:
        return self.get_json(version_prefix + ERROR_FILE)

    def verify(self, version_prefix: str, manifest: dict[str, Any]) -> list[str]:
        """Every listed file present with the recorded size and sha256; [] when all hold."""
        problems = []
        files = manifest.get("files") or {}
        if not files:
            problems.append("the manifest lists no files")
        for name, expected in sorted(files.items()):
            data = self.get_bytes(version_prefix + name)
            if data is None:
                problems.append(f"{name}: missing")
            elif len(data) != expected.get("size"):
                problems.append(f"{name}: size {len(data)} != {expected.get('size')} in the manifest")
            elif sha256_bytes(data) != expected.get("sha256"):
                problems.append(f"{name}: sha256 does not match the manifest")
        return problems

    def load_verified(self, version_prefix: str, manifest: dict[str, Any], name: str) -> bytes:
        """A file's bytes, only if they match the manifest (never unpickle unverified bytes)."""
        expected = (manifest.get("files") or {}).get(name)
        if expected is None:
            raise ChecksumMismatchError(f"{name} is not listed in the manifest of {version_prefix}")
        data = self.get_bytes(version_prefix + name)
        if data is None:
            raise ChecksumMismatchError(f"{version_prefix}{name} is missing")
        if sha256_bytes(data) != expected.get("sha256"):
            raise ChecksumMismatchError(f"{version_prefix}{name}: sha256 does not match the manifest")
        return data
