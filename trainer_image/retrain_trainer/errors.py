"""The trainer's failure classes and their exit codes (see docs/trainer-contract.md)."""

from __future__ import annotations

from retrain_contract.artifacts.errors import DataError, StorageError


class ConfigError(Exception):
    """The run configuration cannot be acted on; no retry can fix it."""


class VersionConflict(Exception):
    """The run's version folder holds a manifest that is not this run's (another incarnation of the
    policy, or another run configuration): never taken as finished, never overwritten; no retry can fix it."""


EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_CONFIG = 2
EXIT_DATA = 3
EXIT_STORAGE = 4
EXIT_CONFLICT = 5


def classify(error: BaseException) -> tuple[int, str]:
    """(exit code, CamelCase reason) for an error."""
    if isinstance(error, ConfigError):
        return EXIT_CONFIG, "ConfigError"
    if isinstance(error, VersionConflict):
        return EXIT_CONFLICT, "VersionConflict"
    if isinstance(error, DataError):
        return EXIT_DATA, "DataError"
    if isinstance(error, StorageError):
        return EXIT_STORAGE, error.reason
    return EXIT_UNEXPECTED, type(error).__name__
