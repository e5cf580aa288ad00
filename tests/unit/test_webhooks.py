"""One POST to a real HTTP server on 127.0.0.1 (adapters/webhooks.py): the answer, the headers sent, and
failures described without the URL."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from retrain_operator.adapters import webhooks
from retrain_operator.core.notifications.targets import Target

from ..webhook_receiver import WebhookReceiver

SECRET_PATH = "/hooks/T000/XXXXSECRETXXXX"


@pytest.fixture()
def receiver() -> Iterator[WebhookReceiver]:
    started = WebhookReceiver().start()
    yield started
    started.stop()


async def _post(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None):
    async with webhooks.session() as client:
        return await webhooks.post(client, Target("ops", "json", url, headers or {}), b'{"a":1}', "churn.0123",
                                   timeout)


async def test_the_body_and_headers_arrive_and_the_status_comes_back(receiver: WebhookReceiver):
    answer = await _post(receiver.url(SECRET_PATH), headers={"Authorization": "Bearer t0ken"})
    assert (answer.status, answer.error) == (200, "")
    [seen] = receiver.requests()
    headers = seen.headers
    assert (seen.path, seen.json()) == (SECRET_PATH, {"a": 1})
    assert headers["Content-Type"] == "application/json" and headers["Authorization"] == "Bearer t0ken"
    assert headers["X-Retrain-Notification-Id"] == "churn.0123"
    assert headers["User-Agent"].startswith("retrain-operator/")


async def test_a_retry_after_is_passed_on_and_a_redirect_is_not_followed(receiver: WebhookReceiver):
    receiver.answer((429, {"Retry-After": "3"}, 0.0), (302, {"Location": "http://127.0.0.1:1/elsewhere"}, 0.0))
    throttled = await _post(receiver.url(SECRET_PATH))
    assert (throttled.status, throttled.retry_after) == (429, "3")
    moved = await _post(receiver.url(SECRET_PATH))
    assert moved.status == 302 and len(receiver.requests()) == 2


async def test_failures_are_described_without_the_url(receiver: WebhookReceiver):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    refused = await _post(f"http://127.0.0.1:{closed}{SECRET_PATH}")
    receiver.answer((200, {}, 2.0))
    slow = await _post(receiver.url(SECRET_PATH), timeout=0.5)
    odd = await _post(f"http://[::1{SECRET_PATH}")
    for answer in (refused, slow, odd):
        assert answer.status is None and answer.error and "SECRET" not in answer.describe(), answer
    assert refused.error.startswith("cannot connect") and slow.error == "no answer within 0.5s"
