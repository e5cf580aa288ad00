"""Row counts for minNewSamples, on real S3 (SeaweedFS), without pyarrow in the operator."""

from __future__ import annotations

import gzip
import io

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from retrain_contract.artifacts.errors import DataError
from retrain_contract.artifacts.objects import list_data_objects
from retrain_operator.adapters.rowcount import count_rows, parquet_footer_rows


def parquet(rows: int, row_group_size: int = 1000) -> bytes:
    table = pa.table({"x": list(range(rows)), "label": ["a" if i % 3 else "b" for i in range(rows)]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=row_group_size)
    return buffer.getvalue()


def csv(rows: int) -> bytes:
    buffer = io.BytesIO()
    pacsv.write_csv(pa.table({"x": list(range(rows)), "text": ["a,b" if i % 2 else "c" for i in range(rows)]}), buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(("key", "body", "rows"), [
    ("many-groups.parquet", parquet(12345, 1000), 12345),
    ("one-group.parquet", parquet(7, 1000), 7),
    ("empty.parquet", parquet(0), 0),
    ("plain.csv", csv(250), 250),
    ("packed.csv.gz", gzip.compress(csv(1001)), 1001),
    ("no-final-newline.csv", b"x,y\n1,2\n3,4", 2),
])
def test_rows_are_counted_as_pyarrow_counts_them(s3, bucket: str, key: str, body: bytes, rows: int):
    s3.put_object(Bucket=bucket, Key=f"in/{key}", Body=body)
    (obj,) = list_data_objects(s3, f"s3://{bucket}/in/{key}")
    assert count_rows(s3, obj) == rows


@pytest.mark.parametrize(("key", "body", "problem"), [
    ("short.parquet", b"PAR1", "too small"),
    ("not.parquet", b"x" * 64, "no PAR1 footer"),
    ("lying-length.parquet", b"PAR1" + b"\0" * 8 + (10**6).to_bytes(4, "little") + b"PAR1", "longer than the file"),
    ("garbled.parquet", b"PAR1" + b"\xff" * 40 + (40).to_bytes(4, "little") + b"PAR1", "corrupt Parquet footer"),
    ("not-gzip.csv.gz", b"x,y\n1,2\n", "cannot be read as gzipped CSV"),
])
def test_a_corrupt_object_is_a_data_error_that_names_it(s3, bucket: str, key: str, body: bytes, problem: str):
    s3.put_object(Bucket=bucket, Key=f"in/{key}", Body=body)
    (obj,) = list_data_objects(s3, f"s3://{bucket}/in/{key}")
    with pytest.raises(DataError, match=problem) as raised:
        count_rows(s3, obj)
    assert key in str(raised.value)


def test_the_footer_decoder_reads_only_the_row_count():
    data = parquet(4321, 500)
    length = int.from_bytes(data[-8:-4], "little")
    assert parquet_footer_rows(data[-8 - length:-8], "s3://b/k.parquet") == 4321
    with pytest.raises(DataError, match="no row count"):
        parquet_footer_rows(b"\x00", "s3://b/k.parquet")  # a struct that ends before field 3
