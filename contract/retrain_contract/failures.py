"""The one classifier: what a failure is called and which exit code it means, on both sides.

`s3_failure` reads a botocore/boto3 error (which S3 answer, or no answer, means which reason);
`storage_error` turns one into a StorageError; `classify` gives any error its trainer exit code and
CamelCase reason (docs/trainer-contract.md#exit-codes). The operator's bucket check, the kubectl
plugin, the artifact store and the workload all ask these, so the reasons in status conditions,
error.json and stderr cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from .artifacts.errors import (
    ACCESS_DENIED,
    BUCKET_NOT_FOUND,
    STORAGE_ERROR,
    STORAGE_UNREACHABLE,
    DataError,
    StorageError,
)

# What a boto3 call raises when S3 cannot be used: catch these, then ask s3_failure what they mean.
S3_ERRORS: tuple[type[Exception], ...] = (BotoCoreError, ClientError)

# The trainer contract's exit codes (docs/trainer-contract.md#exit-codes).
EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_CONFIG = 2
EXIT_DATA = 3
EXIT_STORAGE = 4
EXIT_CONFLICT = 5
# No retry can fix these: config (2) and data (3) errors and a version that exists but is not this
# run's (5); the Job's podFailurePolicy fails the run at once on them.
NON_RETRYABLE_EXIT_CODES = (EXIT_CONFIG, EXIT_DATA, EXIT_CONFLICT)

_MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED_CODES = frozenset({"403", "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"})


class ConfigError(Exception):
    """The run configuration cannot be acted on; no retry can fix it."""


class VersionConflict(Exception):
    """The run's version folder holds a manifest that is not this run's (another incarnation of the
    policy, or another run configuration): never taken as finished, never overwritten; no retry can fix it."""


@dataclass(frozen=True)
class S3Failure:
    """What a botocore/boto3 error says about S3."""

    reason: str  # STORAGE_UNREACHABLE, BUCKET_NOT_FOUND, ACCESS_DENIED or STORAGE_ERROR
    code: str  # S3's error code ("NoSuchBucket", "403", ...); "" when S3 gave none (or no answer)
    summary: str  # a few words for a message: "the bucket does not exist", "access denied (403)", ...


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _status(error: ClientError) -> object:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def is_missing_object(error: BaseException) -> bool:
    """S3 answered that the object (or prefix) is not there: an absence, not a failure."""
    return isinstance(error, ClientError) and _code(error) in _MISSING_OBJECT_CODES


def refused_precondition(error: BaseException) -> bool:
    """S3 refused a conditional write (412, e.g. If-None-Match: * on a key that exists)."""
    return isinstance(error, ClientError) and _status(error) == 412


def s3_failure(error: BaseException) -> S3Failure:
    """The reason for a failed S3 call: no answer is StorageUnreachable; NoSuchBucket (or a 404 to
    HeadBucket, which has no body to name it) BucketNotFound; a 403 or a denial code AccessDenied;
    any other answer StorageError."""
    if isinstance(error, EndpointConnectionError):
        return S3Failure(STORAGE_UNREACHABLE, "", f"cannot reach the S3 endpoint ({error})")
    if isinstance(error, ClientError):
        code, status = _code(error), _status(error)
        if code == "NoSuchBucket" or (error.operation_name == "HeadBucket"
                                      and (code in {"404", "NotFound"} or status == 404)):
            return S3Failure(BUCKET_NOT_FOUND, code, "the bucket does not exist")
        if code in _DENIED_CODES or status == 403:
            return S3Failure(ACCESS_DENIED, code, f"access denied ({code})")
        return S3Failure(STORAGE_ERROR, code, code or str(error))
    if isinstance(error, BotoCoreError):  # timeouts, resets, a streaming body cut short
        return S3Failure(STORAGE_UNREACHABLE, "", str(error))
    return S3Failure(STORAGE_ERROR, "", str(error))


def storage_error(error: BaseException, what: str) -> StorageError:
    """A botocore failure as a StorageError with a reason fit for a status condition."""
    failure = s3_failure(error)
    return StorageError(failure.reason, f"{what}: {failure.summary}")


def classify(error: BaseException) -> tuple[int, str]:
    """(exit code, CamelCase reason) for an error: what the trainer exits with and writes to error.json."""
    if isinstance(error, ConfigError):
        return EXIT_CONFIG, "ConfigError"
    if isinstance(error, VersionConflict):
        return EXIT_CONFLICT, "VersionConflict"
    if isinstance(error, DataError):
        return EXIT_DATA, "DataError"
    if isinstance(error, StorageError):
        return EXIT_STORAGE, error.reason
    if isinstance(error, S3_ERRORS):  # one a read let through unwrapped (e.g. a body cut short)
        return EXIT_STORAGE, s3_failure(error).reason
    return EXIT_UNEXPECTED, type(error).__name__
