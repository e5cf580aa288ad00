"""A synthetic customer-churn table for the sandbox and the tests.

Deterministic per seed, with numeric and categorical columns, string labels and a timestamp,
so every strategy has something to work on. `flip=True` inverts the label relationship
(concept drift) to show that a window model forgets what it should.
"""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

PLANS = np.array(["basic", "plus", "pro"])
REGIONS = np.array(["north", "south", "east", "west"])
FEATURES = ["tenure_months", "monthly_spend", "support_calls", "plan", "region"]
TARGET = "churned"
TIMESTAMP = "event_time"


def churn_table(rows: int, seed: int, start: dt.datetime | None = None, flip: bool = False) -> pa.Table:
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, rows)
    spend = np.round(rng.gamma(4.0, 15.0, rows), 2)
    calls = rng.poisson(1.5, rows)
    plan = PLANS[rng.integers(0, len(PLANS), rows)]
    region = REGIONS[rng.integers(0, len(REGIONS), rows)]
    score = -0.06 * tenure + 0.015 * spend + 0.55 * calls + np.where(plan == "basic", 0.8, -0.2)
    score += rng.normal(0.0, 0.7, rows)
    churned = score > np.median(score)
    if flip:
        churned = ~churned
    start = start or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    times = [start + dt.timedelta(minutes=int(m)) for m in np.sort(rng.integers(0, 60 * 24, rows))]
    return pa.table({
        "tenure_months": pa.array(tenure, pa.int64()),
        "monthly_spend": pa.array(spend, pa.float64()),
        "support_calls": pa.array(calls, pa.int64()),
        "plan": pa.array(plan, pa.string()),
        "region": pa.array(region, pa.string()),
        TIMESTAMP: pa.array(times, pa.timestamp("s", tz="UTC")),
        TARGET: pa.array(np.where(churned, "yes", "no"), pa.string()),
    })


def to_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def to_csv(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    return sink.getvalue()
