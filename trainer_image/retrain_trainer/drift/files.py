"""Local Parquet and CSV files as record batches, for the `drift` command on a laptop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from tqdm import tqdm

from retrain_contract.artifacts.errors import DataError

BATCH_ROWS = 262_144


def file_rows(path: Path) -> int | None:
    """Rows of a Parquet file from its footer; None for CSV (unknown until read)."""
    return pq.ParquetFile(path).metadata.num_rows if path.suffix == ".parquet" else None


def _open(path: Path) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    if not path.exists():
        raise DataError(f"{path} does not exist")
    if path.suffix == ".parquet":
        # pre_buffer=False: with it, pyarrow keeps every row group it read (measured: 1.8 GB for
        # a 10M-row file); without, memory stays at about one row group.
        parquet = pq.ParquetFile(path, pre_buffer=False)
        return parquet.schema_arrow, parquet.iter_batches(batch_size=BATCH_ROWS)
    if path.name.endswith((".csv", ".csv.gz")):
        csv = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 24))
        return csv.schema, iter(csv)
    raise DataError(f"{path}: only .parquet, .csv and .csv.gz files are read")


def file_schema(path: Path) -> pa.Schema:
    """The columns of a file, read from its footer (Parquet) or header (CSV)."""
    try:
        return _open(path)[0]
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"{path} cannot be read: {error}") from error


def iter_file_batches(path: Path, progress: bool = False, label: str = "") -> Iterator[pa.RecordBatch]:
    """The file's record batches; a file without rows still yields one empty batch, so that its
    columns are seen (a header-only CSV with a column missing is a missing column, not just few rows)."""
    try:
        schema, reader = _open(path)
        empty = True
        with tqdm(total=file_rows(path), unit="rows", unit_scale=True, desc=label or path.name,
                  disable=not progress, leave=False) as bar:
            for batch in reader:
                bar.update(batch.num_rows)
                empty = False
                yield batch
        if empty:
            yield pa.RecordBatch.from_pylist([], schema=schema)
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"{path} cannot be read: {error}") from error
