"""boto3 clients configured the same way everywhere: path-style, bounded retries and timeouts."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.client import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from .errors import StorageError


def make_client(endpoint: str | None, region: str | None, **credentials: str) -> Any:
    """An S3 client; credentials from the arguments, else the environment (AWS_ACCESS_KEY_ID, ...)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint or None,
        region_name=region or "us-east-1",
        # 3 tries in all ("max_attempts": 3 would mean 4): a silent endpoint fails a call in ~1 min, not 4.
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 3, "mode": "standard"},
                      connect_timeout=5, read_timeout=20),
        **credentials,
    )


def storage_error(error: Exception, what: str) -> StorageError:
    """Translate a botocore failure into a StorageError with a reason fit for a status condition."""
    if isinstance(error, EndpointConnectionError):
        return StorageError("StorageUnreachable", f"{what}: cannot reach the S3 endpoint ({error})")
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in {"NoSuchBucket"}:
            return StorageError("BucketNotFound", f"{what}: the bucket does not exist")
        if code in {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"} or status == 403:
            return StorageError("AccessDenied", f"{what}: access denied ({code})")
        return StorageError("StorageError", f"{what}: {code or error}")
    if isinstance(error, BotoCoreError):
        return StorageError("StorageUnreachable", f"{what}: {error}")
    return StorageError("StorageError", f"{what}: {error}")
