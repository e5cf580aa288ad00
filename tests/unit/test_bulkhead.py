"""Bulkheads and the S3 client cache: one key's stuck calls never delay another key's, deadlines hold.

The black-hole cases use real boto3 clients against a local socket that accepts and never answers.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Iterator

import pytest

from retrain_contract.api.spec import PolicySpec
from retrain_operator.adapters.bulkhead import Bulkhead, DeadlineExceeded
from retrain_operator.adapters.s3clients import ClientCache, EndpointKey, fingerprint
from retrain_operator.adapters.storage import client_for, storage_endpoint

from ..blackhole import BlackHole
from .policies import spec as policy_spec

CREDENTIALS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "s3cr3t-do-not-log"}


@pytest.fixture()
def bulkhead() -> Iterator[Bulkhead]:
    made = Bulkhead("test", workers=1)
    yield made
    made.shutdown()


@pytest.fixture()
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


async def test_a_stuck_key_does_not_delay_another_key(bulkhead: Bulkhead):
    release = threading.Event()
    stuck = asyncio.ensure_future(bulkhead.run("slow", release.wait, 30, deadline=30))
    await asyncio.sleep(0.05)
    assert bulkhead.in_flight("slow") == 1
    started = time.monotonic()
    assert await bulkhead.run("fast", lambda: "done", deadline=5) == "done"
    assert time.monotonic() - started < 0.5
    release.set()
    assert await stuck is True


async def test_a_call_queued_behind_a_stuck_one_times_out_and_never_runs(bulkhead: Bulkhead):
    release, ran = threading.Event(), threading.Event()
    stuck = asyncio.ensure_future(bulkhead.run("slow", release.wait, 30, deadline=30))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as caught:
        await bulkhead.run("slow", ran.set, deadline=0.3, what="S3 endpoint http://nowhere")
    waited = time.monotonic() - started
    assert 0.25 < waited < 1.0
    assert str(caught.value) == "S3 endpoint http://nowhere did not answer within 0.3s"
    release.set()
    await stuck
    await asyncio.sleep(0.05)
    assert not ran.is_set()  # cancelled while queued: the endpoint is not asked again for nothing
    assert bulkhead.in_flight("slow") == 0


async def test_a_running_call_past_its_deadline_keeps_its_thread_until_it_returns(bulkhead: Bulkhead):
    release = threading.Event()
    with pytest.raises(DeadlineExceeded):
        await bulkhead.run("slow", release.wait, 30, deadline=0.1)
    assert bulkhead.in_flight("slow") == 1  # counted until the thread is free again
    release.set()
    await asyncio.sleep(0.1)
    assert bulkhead.in_flight("slow") == 0


async def test_the_functions_own_timeout_is_not_taken_for_the_deadline(bulkhead: Bulkhead):
    def times_out() -> None:
        raise TimeoutError("socket read timed out")

    with pytest.raises(TimeoutError) as caught:
        await bulkhead.run("key", times_out, deadline=5)
    assert not isinstance(caught.value, DeadlineExceeded)


async def test_idle_compartments_are_evicted_busy_ones_kept():
    bulkhead = Bulkhead("test", workers=1, max_keys=2)
    release = threading.Event()
    try:
        busy = asyncio.ensure_future(bulkhead.run("busy", release.wait, 30, deadline=30))
        await bulkhead.run("idle-1", lambda: None, deadline=5)
        await bulkhead.run("idle-2", lambda: None, deadline=5)
        await bulkhead.run("idle-3", lambda: None, deadline=5)
        assert len(bulkhead) == 2
        assert bulkhead.in_flight("busy") == 1  # still there, still counted
        release.set()
        await busy
    finally:
        bulkhead.shutdown()


def test_clients_are_reused_per_endpoint_and_credentials():
    spec = PolicySpec.from_dict(policy_spec())
    first = client_for(spec, dict(CREDENTIALS))
    assert client_for(spec, dict(CREDENTIALS)) is first
    rotated = client_for(spec, {**CREDENTIALS, "aws_secret_access_key": "rotated"})
    assert rotated is not first
    elsewhere = client_for(spec, dict(CREDENTIALS), endpoint="http://127.0.0.1:9")
    assert elsewhere is not first and elsewhere.meta.endpoint_url == "http://127.0.0.1:9"
    config = first.meta.config
    assert config.connect_timeout <= 5 and config.read_timeout <= 10
    assert config.retries["total_max_attempts"] <= 2


def test_the_cache_is_bounded_least_recently_used_first():
    cache = ClientCache(size=2)
    a = cache.get(EndpointKey("http://a", ""), CREDENTIALS)
    b = cache.get(EndpointKey("http://b", ""), CREDENTIALS)
    assert cache.get(EndpointKey("http://a", ""), CREDENTIALS) is a  # a is now the newest
    c = cache.get(EndpointKey("http://c", ""), CREDENTIALS)  # evicts b
    assert len(cache) == 2
    assert cache.get(EndpointKey("http://c", ""), CREDENTIALS) is c
    assert cache.get(EndpointKey("http://a", ""), CREDENTIALS) is a
    assert cache.get(EndpointKey("http://b", ""), CREDENTIALS) is not b  # made again


def test_keys_carry_no_secret():
    key = storage_endpoint(PolicySpec.from_dict(policy_spec()))
    shown = f"{key} {key!r} {fingerprint(CREDENTIALS)}"
    assert "s3cr3t" not in shown and "AKIDEXAMPLE" not in shown
    assert str(key) == "S3 endpoint http://127.0.0.1:8333"


async def test_a_black_holed_endpoint_times_out_at_the_deadline_and_a_healthy_key_still_answers(
        black_hole: BlackHole):
    bulkhead = Bulkhead("s3-test", workers=2)
    spec = PolicySpec.from_dict(policy_spec(storage={"endpoint": black_hole.endpoint}))
    key = storage_endpoint(spec)
    try:
        client = await bulkhead.run(key, client_for, spec, dict(CREDENTIALS), deadline=10)
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as caught:
            await bulkhead.run(key, functools.partial(client.head_bucket, Bucket="models"), deadline=1.0,
                               what=str(key))
        assert 0.9 < time.monotonic() - started < 2.0
        assert str(caught.value) == f"S3 endpoint {black_hole.endpoint} did not answer within 1s"
        assert black_hole.connections, "the client never reached the black hole"
        # The stuck call holds a thread of its own endpoint's compartment only.
        started = time.monotonic()
        assert await bulkhead.run(EndpointKey("http://healthy", ""), lambda: "ok", deadline=5) == "ok"
        assert time.monotonic() - started < 0.5
    finally:
        black_hole.close()  # the stuck read sees the connection close and the thread ends
        bulkhead.shutdown()

