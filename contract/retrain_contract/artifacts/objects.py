"""Training data in S3: which objects there are (both sides agree on what counts as a data file)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..failures import S3_ERRORS, is_missing_object, storage_error
from .errors import DataError
from .uris import parse_s3_uri

SUFFIXES = (".parquet", ".csv", ".csv.gz")


@dataclass(frozen=True)
class DataObject:
    uri: str
    bucket: str
    key: str
    etag: str
    size: int
    last_modified: Any  # datetime

    @property
    def format(self) -> str:
        return "parquet" if self.key.endswith(".parquet") else "csv"


def list_data_objects(client: Any, uri: str) -> list[DataObject]:
    """The data objects at a URI: the object itself, or every data file below a prefix, by key."""
    bucket, key = parse_s3_uri(uri)
    try:
        if key and not key.endswith("/"):
            head = client.head_object(Bucket=bucket, Key=key)
            return [DataObject(uri, bucket, key, head["ETag"].strip('"'), head["ContentLength"], head["LastModified"])]
        objects = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for item in page.get("Contents", []):
                if item["Key"].endswith(SUFFIXES):
                    objects.append(DataObject(f"s3://{bucket}/{item['Key']}", bucket, item["Key"],
                                              item["ETag"].strip('"'), item["Size"], item["LastModified"]))
        return sorted(objects, key=lambda o: o.key)
    except S3_ERRORS as error:
        if is_missing_object(error):
            raise DataError(f"{uri} does not exist") from error
        raise storage_error(error, f"listing {uri}") from error


def open_object(client: Any, obj: DataObject, **kwargs: Any) -> Any:
    """The object's body (a stream); a ranged read with Range=... Reading the stream can fail too:
    read it with read_object / read_chunks."""
    try:
        return client.get_object(Bucket=obj.bucket, Key=obj.key, **kwargs)["Body"]
    except S3_ERRORS as error:
        raise storage_error(error, f"reading {obj.uri}") from error


def read_object(client: Any, obj: DataObject, **kwargs: Any) -> bytes:
    """The object's bytes (or a Range of them); a connection lost mid-body is a StorageError too."""
    body = open_object(client, obj, **kwargs)
    try:
        return body.read()
    except S3_ERRORS as error:
        raise storage_error(error, f"reading {obj.uri}") from error


def read_chunks(stream: Any, obj: DataObject, size: int = 1 << 20) -> Iterator[bytes]:
    """A body read piece by piece (memory: one piece), errors mid-body as StorageError."""
    try:
        yield from iter(lambda: stream.read(size), b"")
    except S3_ERRORS as error:
        raise storage_error(error, f"reading {obj.uri}") from error
