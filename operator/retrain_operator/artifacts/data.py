"""Training data in S3: which objects, how many rows, and their contents as Arrow tables."""

from __future__ import annotations

import gzip
import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError

from .errors import DataError
from .s3 import storage_error
from .uris import parse_s3_uri

SUFFIXES = (".parquet", ".csv", ".csv.gz")
_PARQUET_TAIL = 8  # 4-byte footer length + "PAR1"


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


def _get(client: Any, obj: DataObject, **kwargs: Any) -> Any:
    try:
        return client.get_object(Bucket=obj.bucket, Key=obj.key, **kwargs)["Body"]
    except (BotoCoreError, ClientError) as error:
        raise storage_error(error, f"reading {obj.uri}") from error


def count_rows(client: Any, obj: DataObject) -> int:
    """Rows without reading the data: a Parquet footer (two ranged GETs), or a streamed CSV line count."""
    if obj.format == "parquet":
        if obj.size < 12:
            raise DataError(f"{obj.uri} is not a Parquet file (too small)")
        tail = _get(client, obj, Range=f"bytes=-{_PARQUET_TAIL}").read()
        if tail[4:] != b"PAR1":
            raise DataError(f"{obj.uri} is not a Parquet file (no PAR1 footer)")
        (footer_length,) = struct.unpack("<I", tail[:4])
        footer = _get(client, obj, Range=f"bytes=-{footer_length + _PARQUET_TAIL}").read()
        try:  # the footer alone, framed as a file, is all pyarrow needs for the metadata
            return pq.read_metadata(io.BytesIO(b"PAR1" + footer)).num_rows
        except (pa.ArrowException, OSError) as error:
            raise DataError(f"{obj.uri} has a corrupt Parquet footer: {error}") from error
    body = _get(client, obj)
    stream = gzip.GzipFile(fileobj=body) if obj.key.endswith(".gz") else body
    lines, last = 0, b"\n"
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        lines += chunk.count(b"\n")
        last = chunk[-1:]
    if last != b"\n":
        lines += 1
    return max(lines - 1, 0)  # minus the header


def read_table(client: Any, obj: DataObject) -> pa.Table:
    data = _get(client, obj).read()
    try:
        if obj.format == "parquet":
            return pq.read_table(io.BytesIO(data))
        if obj.key.endswith(".gz"):
            data = gzip.decompress(data)
        if not data.strip():
            raise DataError(f"{obj.uri} is empty")
        return pacsv.read_csv(io.BytesIO(data))
    except (pa.ArrowException, OSError, EOFError) as error:
        raise DataError(f"{obj.uri} cannot be read as {obj.format}: {error}") from error


def iter_batches(client: Any, obj: DataObject, batch_size: int = 65536) -> Iterator[pa.RecordBatch]:
    """An object's rows as record batches: Parquet by row group, CSV by block (memory ~ one object's bytes)."""
    data = _get(client, obj).read()
    yield from batches_from_bytes(data, obj.uri, obj.format, obj.key.endswith(".gz"), batch_size)


def batches_from_bytes(data: bytes, name: str, format_: str, gzipped: bool = False,
                       batch_size: int = 65536) -> Iterator[pa.RecordBatch]:
    try:
        if format_ == "parquet":
            # pre_buffer=False: pre-buffering keeps every row group read so far alive.
            yield from pq.ParquetFile(io.BytesIO(data), pre_buffer=False).iter_batches(batch_size=batch_size)
            return
        if gzipped:
            data = gzip.decompress(data)
        if not data.strip():
            raise DataError(f"{name} is empty")
        yield from pacsv.open_csv(io.BytesIO(data), read_options=pacsv.ReadOptions(block_size=1 << 22))
    except (pa.ArrowException, OSError, EOFError) as error:
        raise DataError(f"{name} cannot be read as {format_}: {error}") from error
