"""Errors of the artifact layer, with short CamelCase reasons that go into status conditions."""

from __future__ import annotations


class StorageError(Exception):
    """S3 could not be used: missing bucket, denied access, unreachable endpoint."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class VersionExistsError(StorageError):
    """A finished version is immutable: its manifest already exists."""

    def __init__(self, message: str):
        super().__init__("VersionExists", message)


class ChecksumMismatchError(Exception):
    """Bytes that do not match the manifest: never load them (models are pickles)."""


class DataError(Exception):
    """Training data that cannot be used: missing, empty, corrupt, or of the wrong shape."""
