"""Training and drift data as Arrow tables: whole objects, or batch by batch to bound memory."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from retrain_contract.artifacts.errors import DataError
from retrain_contract.artifacts.objects import DataObject, read_object


def read_table(client: Any, obj: DataObject) -> pa.Table:
    data = read_object(client, obj)
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
    data = read_object(client, obj)
    yield from batches_from_bytes(data, obj.uri, obj.format, obj.key.endswith(".gz"), batch_size)


def batches_from_bytes(data: bytes, name: str, format_: str, gzipped: bool = False,
                       batch_size: int = 65536) -> Iterator[pa.RecordBatch]:
    """The object's batches; one without rows yields one empty batch, so that its columns are seen."""
    try:
        if format_ == "parquet":
            # pre_buffer=False: pre-buffering keeps every row group read so far alive.
            parquet = pq.ParquetFile(io.BytesIO(data), pre_buffer=False)
            schema, batches = parquet.schema_arrow, parquet.iter_batches(batch_size=batch_size)
        else:
            if gzipped:
                data = gzip.decompress(data)
            if not data.strip():
                raise DataError(f"{name} is empty")
            csv = pacsv.open_csv(io.BytesIO(data), read_options=pacsv.ReadOptions(block_size=1 << 22))
            schema, batches = csv.schema, iter(csv)
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            yield pa.RecordBatch.from_pylist([], schema=schema)
    except (pa.ArrowException, OSError, EOFError) as error:
        raise DataError(f"{name} cannot be read as {format_}: {error}") from error
