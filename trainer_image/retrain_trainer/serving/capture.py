"""A sample of requests and predictions written to S3, where the drift check reads recent data.

Rows are buffered and written as one Parquet object per flush under the capture prefix, named
by model version and time, so a drift check with `triggers.drift.data` set to this prefix sees
the traffic of the last window: the loop from serving back to retraining closes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retrain_contract.artifacts.store import ArtifactStore
from retrain_contract.artifacts.uris import parse_s3_uri

log = logging.getLogger(__name__)


class RequestCapture:
    def __init__(self, store_for: Any, uri: str, version: str, fraction: float, flush_rows: int = 1000,
                 seed: int | None = None):
        bucket, prefix = parse_s3_uri(uri if uri.endswith("/") else uri + "/")
        self.store: ArtifactStore = store_for(bucket)
        self.bucket, self.prefix, self.version = bucket, prefix, version
        self.fraction, self.flush_rows = fraction, flush_rows
        self.rng = np.random.default_rng(seed)
        self.pending: list[pd.DataFrame] = []
        self.pending_rows = 0
        self.written = 0
        self._flushing: set[asyncio.Future[int]] = set()
        self.on_written: Callable[[int], None] = lambda rows: None

    def add(self, columns: dict[str, list[Any]], predictions: Any) -> bool:
        """Keep a sample of these rows (checked columns, whichever endpoint they came through);
        True when enough are pending to flush."""
        keep = self.rng.random(len(predictions)) < self.fraction
        if keep.any():
            kept = np.flatnonzero(keep)
            sampled = pd.DataFrame({name: [values[i] for i in kept] for name, values in columns.items()})
            sampled["prediction"] = np.asarray(predictions)[keep]
            sampled["predicted_at"] = pd.Timestamp.now(tz="UTC")
            self.pending.append(sampled)
            self.pending_rows += len(sampled)
        return self.pending_rows >= self.flush_rows

    def take(self) -> pd.DataFrame | None:
        if not self.pending:
            return None
        frame = pd.concat(self.pending, ignore_index=True)
        self.pending, self.pending_rows = [], 0
        return frame

    def write(self, frame: pd.DataFrame) -> str:
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
        now = dt.datetime.now(dt.UTC)
        key = f"{self.prefix}{self.version}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.parquet"
        self.store.put_bytes(key, buffer.getvalue())
        self.written += len(frame)
        return f"s3://{self.bucket}/{key}"

    def flush_soon(self) -> None:
        task = asyncio.ensure_future(self.flush())
        self._flushing.add(task)  # held until done, so it is not garbage-collected mid-write
        task.add_done_callback(self._flushing.discard)

    async def flush(self) -> int:
        """Write what is pending, off the event loop; a failed write is logged, the rows dropped."""
        frame = self.take()
        if frame is None:
            return 0
        try:
            uri = await asyncio.get_running_loop().run_in_executor(None, self.write, frame)
        except Exception as error:  # capture is best effort: serving must not fail with it
            log.warning("could not write %d captured rows: %s", len(frame), error)
            return 0
        log.info("captured %d rows to %s", len(frame), uri)
        self.on_written(len(frame))
        return len(frame)
