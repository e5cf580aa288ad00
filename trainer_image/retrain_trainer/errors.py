"""The trainer's failure classes and their exit codes (see docs/trainer-contract.md).

Both are the contract's (retrain_contract.failures), whose `classify` is the one place an error
becomes an exit code and a reason; named here for the trainer's modules."""

from __future__ import annotations

from retrain_contract.failures import (
    EXIT_CONFIG,
    EXIT_CONFLICT,
    EXIT_DATA,
    EXIT_OK,
    EXIT_STORAGE,
    EXIT_UNEXPECTED,
    ConfigError,
    VersionConflict,
    classify,
)

__all__ = ["EXIT_CONFIG", "EXIT_CONFLICT", "EXIT_DATA", "EXIT_OK", "EXIT_STORAGE", "EXIT_UNEXPECTED",
           "ConfigError", "VersionConflict", "classify"]
