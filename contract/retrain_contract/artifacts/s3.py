"""The one S3 client factory: every boto3 client of the operator, the plugin and the workload is made here.

Path-style addressing, botocore's standard retry mode, and timeouts and tries bounded per caller:
the workload's below (WORKLOAD_TIMEOUTS), the operator's tighter ones in its client cache
(retrain_operator/adapters/s3clients.py). What a failed call means: retrain_contract.failures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.client import Config

DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class S3Timeouts:
    """How long a client waits for S3 and how often it asks. `read` bounds each wait for bytes, not a
    whole transfer, so a large file still downloads; `attempts` counts every try, the first included."""

    connect: float
    read: float
    attempts: int


# The workload's (trainer, drift check, model server): 3 tries in all (botocore's "max_attempts": 3
# would mean 4): a silent endpoint fails a call in ~1 min, not 4.
WORKLOAD_TIMEOUTS = S3Timeouts(connect=5, read=20, attempts=3)


def make_client(endpoint: str | None, region: str | None, *, timeouts: S3Timeouts = WORKLOAD_TIMEOUTS,
                session: boto3.session.Session | None = None, **credentials: str) -> Any:
    """An S3 client for `endpoint` ("" or None: AWS's own for the region, us-east-1 when none is given);
    credentials from the arguments (aws_access_key_id=..., ...), else boto3's chain (AWS_ACCESS_KEY_ID, ...).

    `session`: the boto3 Session to make it from (default: boto3's own, which is not safe to make
    clients from in several threads at once)."""
    config = Config(s3={"addressing_style": "path"},
                    retries={"total_max_attempts": timeouts.attempts, "mode": "standard"},
                    connect_timeout=timeouts.connect, read_timeout=timeouts.read)
    factory = session.client if session is not None else boto3.client
    return factory("s3", endpoint_url=endpoint or None, region_name=region or DEFAULT_REGION, config=config,
                   **credentials)
