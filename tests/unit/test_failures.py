"""The one error classifier (retrain_contract.failures): real botocore errors, raised by real clients
against SeaweedFS, a closed port and a black hole, and what each side makes of them: the reason in a
status condition (the operator's bucket check), a StorageError (the artifact store, the data listing),
the trainer's exit code and reason. The reason strings and exit codes are those tests and docs name."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, ReadTimeoutError

from retrain_contract.api.spec import PolicySpec
from retrain_contract.artifacts.errors import (
    ACCESS_DENIED,
    BUCKET_NOT_FOUND,
    CORRUPT_ARTIFACT,
    STORAGE_ERROR,
    STORAGE_UNREACHABLE,
    VERSION_EXISTS,
    DataError,
    StorageError,
    VersionExistsError,
)
from retrain_contract.artifacts.objects import list_data_objects
from retrain_contract.artifacts.s3 import S3Timeouts, make_client
from retrain_contract.artifacts.store import ArtifactStore
from retrain_contract.failures import (
    NON_RETRYABLE_EXIT_CODES,
    ConfigError,
    S3Failure,
    VersionConflict,
    classify,
    is_missing_object,
    refused_precondition,
    s3_failure,
    storage_error,
)
from retrain_operator.adapters.storage import PolicyStorage
from retrain_sandbox.seaweed import SeaweedS3
from retrain_trainer import errors as trainer_errors

from ..blackhole import BlackHole
from .policies import spec as policy_spec
from .test_s3_clients import closed_endpoint

QUICK = S3Timeouts(connect=1, read=0.3, attempts=1)


def raised(call: Callable[[], Any]) -> BaseException:
    with pytest.raises((BotoCoreError, ClientError)) as caught:
        call()
    return caught.value


def client(seaweed: SeaweedS3, endpoint: str | None = None, **overrides: str) -> Any:
    credentials = {"aws_access_key_id": seaweed.access_key, "aws_secret_access_key": seaweed.secret_key,
                   **overrides}
    return make_client(endpoint or seaweed.endpoint, seaweed.region, timeouts=QUICK, **credentials)


@pytest.fixture()
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


def test_the_reason_strings_and_exit_codes_are_the_documented_ones():
    assert (STORAGE_UNREACHABLE, BUCKET_NOT_FOUND, ACCESS_DENIED, STORAGE_ERROR, CORRUPT_ARTIFACT, VERSION_EXISTS) \
        == ("StorageUnreachable", "BucketNotFound", "AccessDenied", "StorageError", "CorruptArtifact",
            "VersionExists")
    assert (trainer_errors.EXIT_OK, trainer_errors.EXIT_UNEXPECTED, trainer_errors.EXIT_CONFIG,
            trainer_errors.EXIT_DATA, trainer_errors.EXIT_STORAGE, trainer_errors.EXIT_CONFLICT) == (0, 1, 2, 3, 4, 5)
    assert NON_RETRYABLE_EXIT_CODES == (2, 3, 5)
    assert trainer_errors.classify is classify and trainer_errors.ConfigError is ConfigError


def test_the_operators_pod_failure_policy_lists_the_contracts_non_retryable_codes():
    from retrain_operator.core.jobs import NON_RETRYABLE_EXIT_CODES as in_the_job

    assert tuple(in_the_job) == NON_RETRYABLE_EXIT_CODES


# --- S3 answered ------------------------------------------------------------------------------------------

def test_a_missing_bucket(seaweed: SeaweedS3):
    s3 = client(seaweed)
    by_get = raised(lambda: s3.get_object(Bucket="no-such-bucket-here", Key="k"))
    assert s3_failure(by_get) == S3Failure(BUCKET_NOT_FOUND, "NoSuchBucket", "the bucket does not exist")
    # HEAD has no body: the code is the status, and only for HeadBucket does a 404 name the bucket.
    by_head = raised(lambda: s3.head_bucket(Bucket="no-such-bucket-here"))
    assert isinstance(by_head, ClientError) and by_head.operation_name == "HeadBucket"
    assert s3_failure(by_head).reason == BUCKET_NOT_FOUND
    with pytest.raises(StorageError) as listing:
        list_data_objects(s3, "s3://no-such-bucket-here/data/")
    assert (listing.value.reason, listing.value.message) == (
        BUCKET_NOT_FOUND, "listing s3://no-such-bucket-here/data/: the bucket does not exist")
    assert classify(by_get) == classify(listing.value) == (4, BUCKET_NOT_FOUND)


def test_a_missing_object_is_an_absence_not_a_missing_bucket(seaweed: SeaweedS3, bucket: str):
    s3 = client(seaweed)
    by_get = raised(lambda: s3.get_object(Bucket=bucket, Key="nothing"))
    by_head = raised(lambda: s3.head_object(Bucket=bucket, Key="nothing"))
    assert is_missing_object(by_get) and is_missing_object(by_head)
    assert s3_failure(by_get) == S3Failure(STORAGE_ERROR, "NoSuchKey", "NoSuchKey")
    assert s3_failure(by_head).reason == STORAGE_ERROR
    assert ArtifactStore(s3, bucket).get_bytes("nothing") is None
    with pytest.raises(DataError, match="does not exist"):
        list_data_objects(s3, f"s3://{bucket}/nothing.csv")


@pytest.mark.parametrize("wrong", [{"aws_secret_access_key": "wrong"}, {"aws_access_key_id": "AKNOBODY"}],
                         ids=["secret", "access-key"])
def test_wrong_credentials_are_access_denied(seaweed: SeaweedS3, bucket: str, wrong: dict[str, str]):
    s3 = client(seaweed, **wrong)
    for error in (raised(lambda: s3.get_object(Bucket=bucket, Key="k")),
                  raised(lambda: s3.head_bucket(Bucket=bucket))):
        failure = s3_failure(error)
        assert failure.reason == ACCESS_DENIED and failure.summary == f"access denied ({failure.code})"
        assert classify(error) == (4, ACCESS_DENIED)
    with pytest.raises(StorageError) as caught:
        ArtifactStore(s3, bucket).put_bytes("k", b"v")
    assert caught.value.reason == ACCESS_DENIED and caught.value.message.startswith(f"writing s3://{bucket}/k: ")


def test_a_manifest_written_twice_is_a_version_that_exists(seaweed: SeaweedS3, bucket: str):
    s3 = client(seaweed)
    store = ArtifactStore(s3, bucket)
    store.put_manifest("v1/manifest.json", {"version": "v1"})
    error = raised(lambda: s3.put_object(Bucket=bucket, Key="v1/manifest.json", Body=b"{}", IfNoneMatch="*"))
    assert refused_precondition(error) and not is_missing_object(error)
    with pytest.raises(VersionExistsError) as caught:
        store.put_manifest("v1/manifest.json", {"version": "v1"})
    assert classify(caught.value) == (4, VERSION_EXISTS)


def test_other_answers_are_storage_errors():
    for error in (ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}},
                              "GetObject"),
                  ClientError({"Error": {"Code": "503"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "HeadBucket")):
        assert s3_failure(error).reason == STORAGE_ERROR
    unnamed = ClientError({"ResponseMetadata": {"HTTPStatusCode": 500}}, "GetObject")
    assert s3_failure(unnamed) == S3Failure(STORAGE_ERROR, "", str(unnamed))
    assert str(storage_error(unnamed, "reading x")) == f"StorageError: reading x: {unnamed}"
    denied = ClientError({"Error": {"Code": "AllAccessDisabled"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
                         "GetObject")
    assert s3_failure(denied).reason == ACCESS_DENIED  # any 403


# --- S3 did not answer ------------------------------------------------------------------------------------

def test_a_refused_connection_is_unreachable(seaweed: SeaweedS3):
    error = raised(lambda: client(seaweed, closed_endpoint()).get_object(Bucket="b", Key="k"))
    assert isinstance(error, EndpointConnectionError)
    failure = s3_failure(error)
    assert failure.reason == STORAGE_UNREACHABLE and failure.summary == f"cannot reach the S3 endpoint ({error})"
    assert str(storage_error(error, "reading s3://b/k")) == \
        f"StorageUnreachable: reading s3://b/k: cannot reach the S3 endpoint ({error})"
    assert classify(error) == (4, STORAGE_UNREACHABLE)


def test_a_silent_endpoint_is_unreachable(seaweed: SeaweedS3, black_hole: BlackHole):
    s3 = client(seaweed, black_hole.endpoint)
    error = raised(lambda: s3.get_object(Bucket="b", Key="k"))
    assert isinstance(error, ReadTimeoutError)
    assert s3_failure(error) == S3Failure(STORAGE_UNREACHABLE, "", str(error))
    with pytest.raises(StorageError) as caught:
        ArtifactStore(s3, "b").get_bytes("k")
    assert caught.value.reason == STORAGE_UNREACHABLE and classify(caught.value) == (4, STORAGE_UNREACHABLE)


# --- the operator's bucket check --------------------------------------------------------------------------

def check(seaweed: SeaweedS3, bucket: str, endpoint: str | None = None, **overrides: str) -> Any:
    spec = PolicySpec.from_dict(policy_spec(storage={"endpoint": endpoint or seaweed.endpoint, "bucket": bucket}))
    return PolicyStorage(spec, "ml", "churn", client(seaweed, endpoint, **overrides), uid="u-1").check_bucket()


def test_the_operators_bucket_check(seaweed: SeaweedS3, bucket: str, black_hole: BlackHole):
    assert check(seaweed, bucket) is None
    assert check(seaweed, "no-such-bucket-here") == (BUCKET_NOT_FOUND, "bucket 'no-such-bucket-here' does not exist")
    assert check(seaweed, bucket, aws_secret_access_key="wrong") == (
        ACCESS_DENIED, f"the credentials in the Secret cannot access bucket {bucket!r}")
    reason, message = check(seaweed, bucket, closed_endpoint())
    assert reason == STORAGE_UNREACHABLE and message.startswith("cannot reach S3: Could not connect to the endpoint")
    reason, message = check(seaweed, bucket, black_hole.endpoint)
    assert reason == STORAGE_UNREACHABLE and message.startswith("cannot reach S3: Read timeout on endpoint URL")


# --- exit codes ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("error", "expected"), [
    (ConfigError("bad"), (2, "ConfigError")),
    (DataError("empty"), (3, "DataError")),
    (VersionConflict("not ours"), (5, "VersionConflict")),
    (StorageError(STORAGE_UNREACHABLE, "x"), (4, "StorageUnreachable")),
    (StorageError(BUCKET_NOT_FOUND, "x"), (4, "BucketNotFound")),
    (StorageError(ACCESS_DENIED, "x"), (4, "AccessDenied")),
    (StorageError(CORRUPT_ARTIFACT, "x"), (4, "CorruptArtifact")),
    (StorageError(STORAGE_ERROR, "x"), (4, "StorageError")),
    (VersionExistsError("x"), (4, "VersionExists")),
    (ReadTimeoutError(endpoint_url="http://s3"), (4, "StorageUnreachable")),  # a read let through unwrapped
    (ValueError("?"), (1, "ValueError")),
    (KeyError("?"), (1, "KeyError")),
], ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None)
def test_every_error_has_one_exit_code_and_reason(error: BaseException, expected: tuple[int, str]):
    assert classify(error) == expected
