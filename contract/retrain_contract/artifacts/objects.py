"""Training data in S3: which objects there are (both sides agree on what counts as a data file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .errors import DataError
from .s3 import storage_error
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
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            raise DataError(f"{uri} does not exist") from error
        raise storage_error(error, f"listing {uri}") from error
    except BotoCoreError as error:
        raise storage_error(error, f"listing {uri}") from error


def open_object(client: Any, obj: DataObject, **kwargs: Any) -> Any:
    """The object's body (a stream); a ranged read with Range=..."""
    try:
        return client.get_object(Bucket=obj.bucket, Key=obj.key, **kwargs)["Body"]
    except (BotoCoreError, ClientError) as error:
        raise storage_error(error, f"reading {obj.uri}") from error
