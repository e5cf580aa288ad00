"""How many rows a data object holds, without the data: what the minimum-new-samples guard counts.

A Parquet file's row count is in its footer (Thrift, compact protocol): two ranged GETs and a
decoder for the one field needed, so that the operator does not carry pyarrow. A CSV is streamed
and its lines counted.
"""

from __future__ import annotations

import gzip
import io
import struct
from functools import cache
from typing import Any

import thriftpy2
from thriftpy2.protocol import TCompactProtocolFactory
from thriftpy2.utils import deserialize

from retrain_contract.artifacts.errors import DataError
from retrain_contract.artifacts.objects import DataObject, open_object, read_chunks, read_object

_PARQUET_TAIL = 8  # 4-byte footer length + "PAR1"
# Only FileMetaData.num_rows (field 3 of parquet.thrift); the decoder skips every other field.
_FOOTER_IDL = "struct FileMetaData { 3: required i64 num_rows }"


@cache
def _footer_type() -> Any:
    return thriftpy2.load_fp(io.StringIO(_FOOTER_IDL), module_name="parquet_footer_thrift").FileMetaData


def parquet_footer_rows(footer: bytes, uri: str) -> int:
    """num_rows of a Parquet FileMetaData; DataError when the footer does not decode to one."""
    try:
        rows = deserialize(_footer_type()(), footer, TCompactProtocolFactory()).num_rows
    except Exception as error:  # thriftpy2 raises several types on truncated or garbled input
        raise DataError(f"{uri} has a corrupt Parquet footer: {error}") from error
    if not isinstance(rows, int) or rows < 0:
        raise DataError(f"{uri} has a corrupt Parquet footer: no row count")
    return rows


def count_rows(client: Any, obj: DataObject) -> int:
    """Rows without reading the data: a Parquet footer (two ranged GETs), or a streamed CSV line count."""
    if obj.format == "parquet":
        if obj.size < 12:
            raise DataError(f"{obj.uri} is not a Parquet file (too small)")
        tail = read_object(client, obj, Range=f"bytes=-{_PARQUET_TAIL}")
        if tail[4:] != b"PAR1":
            raise DataError(f"{obj.uri} is not a Parquet file (no PAR1 footer)")
        (footer_length,) = struct.unpack("<I", tail[:4])
        if footer_length + _PARQUET_TAIL > obj.size:
            raise DataError(f"{obj.uri} has a corrupt Parquet footer (longer than the file)")
        footer = read_object(client, obj, Range=f"bytes=-{footer_length + _PARQUET_TAIL}")
        return parquet_footer_rows(footer[:footer_length], obj.uri)
    body = open_object(client, obj)
    stream = gzip.GzipFile(fileobj=body) if obj.key.endswith(".gz") else body
    lines, last = 0, b"\n"
    try:
        for chunk in read_chunks(stream, obj):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    except (OSError, EOFError) as error:  # not gzip, or cut short
        raise DataError(f"{obj.uri} cannot be read as {'gzipped ' if obj.key.endswith('.gz') else ''}CSV: "
                        f"{error}") from error
    if last != b"\n":
        lines += 1
    return max(lines - 1, 0)  # minus the header


