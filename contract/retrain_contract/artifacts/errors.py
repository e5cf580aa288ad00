"""Errors of the artifact layer, with short CamelCase reasons that go into status conditions.

Which error is which reason and exit code: retrain_contract.failures (the one classifier)."""

from __future__ import annotations

# The reasons a StorageError carries.
STORAGE_UNREACHABLE = "StorageUnreachable"  # no answer: refused, timed out, reset
BUCKET_NOT_FOUND = "BucketNotFound"
ACCESS_DENIED = "AccessDenied"
STORAGE_ERROR = "StorageError"  # any other answer
CORRUPT_ARTIFACT = "CorruptArtifact"  # read fine, but not what it must be (not JSON, not an object)
VERSION_EXISTS = "VersionExists"


class StorageError(Exception):
    """S3 could not be used: missing bucket, denied access, unreachable endpoint."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class VersionExistsError(StorageError):
    """A finished version is immutable: its manifest already exists."""

    def __init__(self, message: str):
        super().__init__(VERSION_EXISTS, message)


class ChecksumMismatchError(Exception):
    """Bytes that do not match the manifest: never load them (models are pickles)."""


class DataError(Exception):
    """Training data that cannot be used: missing, empty, corrupt, or of the wrong shape."""
