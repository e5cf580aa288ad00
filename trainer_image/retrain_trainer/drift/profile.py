"""A compact reference profile of training data, built in one streaming pass.

Stored next to the model (profile.json), so a drift check reads only the recent data, never the
training set again. Per numeric column: a uniform sample of at most SAMPLE_SIZE values (the
bottom-k of random keys, so batches can be folded in any order), kept sorted for KS and
Wasserstein; quantile bin edges and proportions for PSI; moments and null counts. Per
categorical column: value counts and null counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import parallel

SAMPLE_SIZE = 20_000
PSI_BINS = 10
PROFILE_VERSION = 1


def is_numeric(arrow_type: pa.DataType) -> bool:
    return pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type)


@dataclass
class _NumericAccumulator:
    sample_size: int
    values: np.ndarray = field(default_factory=lambda: np.empty(0))
    keys: np.ndarray = field(default_factory=lambda: np.empty(0))
    count: int = 0
    nulls: int = 0
    total: float = 0.0
    total_squares: float = 0.0

    def add(self, column: pa.ChunkedArray | pa.Array, row_keys: np.ndarray) -> None:
        values = np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
        present = ~np.isnan(values)
        finite, keys = values[present], row_keys[present]
        self.nulls += len(values) - len(finite)
        self.count += len(finite)
        self.total += float(finite.sum())
        self.total_squares += float(np.square(finite).sum())
        if len(self.keys) >= self.sample_size:  # only a key below the largest kept one can enter
            entering = keys < self.keys.max()
            finite, keys = finite[entering], keys[entering]
        values = np.concatenate([self.values, finite])
        keys = np.concatenate([self.keys, keys])
        if len(values) > self.sample_size:
            keep = np.argpartition(keys, self.sample_size)[: self.sample_size]
            values, keys = values[keep], keys[keep]
        self.values, self.keys = values, keys

    def result(self, bins: int) -> dict[str, Any]:
        sample = np.sort(self.values)
        mean = self.total / self.count if self.count else float("nan")
        variance = self.total_squares / self.count - mean**2 if self.count else float("nan")
        edges = np.unique(np.quantile(sample, np.linspace(0, 1, bins + 1)[1:-1])) if len(sample) else np.empty(0)
        counts = np.bincount(np.searchsorted(edges, sample, side="right"), minlength=len(edges) + 1)
        return {
            "kind": "numeric", "count": self.count, "nulls": self.nulls,
            "mean": mean, "std": float(np.sqrt(max(variance, 0.0))) if self.count else float("nan"),
            "min": float(sample[0]) if len(sample) else None, "max": float(sample[-1]) if len(sample) else None,
            "edges": edges.tolist(), "binProportions": (counts / max(counts.sum(), 1)).tolist(),
            "sample": sample.tolist(),
        }


@dataclass
class _CategoricalAccumulator:
    counts: dict[str, int] = field(default_factory=dict)
    nulls: int = 0

    def add(self, column: pa.ChunkedArray | pa.Array) -> None:
        self.nulls += column.null_count
        for entry in pc.value_counts(pc.cast(column.drop_null(), pa.string())).to_pylist():
            self.counts[entry["values"]] = self.counts.get(entry["values"], 0) + entry["counts"]

    def result(self) -> dict[str, Any]:
        return {"kind": "categorical", "count": sum(self.counts.values()), "nulls": self.nulls,
                "frequencies": dict(sorted(self.counts.items(), key=lambda item: (-item[1], item[0])))}


def build_profile(batches: Iterable[pa.RecordBatch | pa.Table], columns: list[str] | None = None,
                  sample_size: int = SAMPLE_SIZE, bins: int = PSI_BINS, seed: int = 0) -> dict[str, Any]:
    """Fold record batches into a profile; memory stays O(columns x sample_size)."""
    rng = np.random.default_rng(seed)
    numeric: dict[str, _NumericAccumulator] = {}
    categorical: dict[str, _CategoricalAccumulator] = {}
    order: list[str] = []
    rows = 0
    for batch in batches:
        rows += batch.num_rows
        row_keys = rng.random(batch.num_rows)  # one key per row: each column keeps its bottom-k rows
        work: list[tuple[str, pa.ChunkedArray | pa.Array]] = []
        for name in columns or batch.schema.names:
            if name not in batch.schema.names:
                raise KeyError(f"column {name!r} is missing from the reference data")
            column = batch.column(name)
            if pa.types.is_temporal(column.type):
                continue  # event times drift by definition; they are not features
            if name not in numeric and name not in categorical:
                order.append(name)
                if is_numeric(column.type):
                    numeric[name] = _NumericAccumulator(sample_size)
                else:
                    categorical[name] = _CategoricalAccumulator()
            work.append((name, column))
        parallel.each(lambda item, keys=row_keys: numeric[item[0]].add(item[1], keys) if item[0] in numeric
                      else categorical[item[0]].add(item[1]), work)
    features = {name: numeric[name].result(bins) if name in numeric else categorical[name].result()
                for name in order}
    return {"profileVersion": PROFILE_VERSION, "rows": rows, "features": features}
