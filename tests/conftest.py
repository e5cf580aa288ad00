"""Fixtures shared by every test tier: a real S3 (SeaweedFS) for the whole session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrain_sandbox.seaweed import SeaweedS3


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """One SeaweedFS for the session (starting one takes ~2 s); tests isolate by bucket."""
    server = SeaweedS3(Path(tmp_path_factory.mktemp("seaweedfs")))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def s3(seaweed: SeaweedS3):
    """A boto3 S3 client with the store's credentials."""
    return seaweed.client()


@pytest.fixture()
def bucket(s3) -> str:
    """A fresh, empty bucket for one test."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name
