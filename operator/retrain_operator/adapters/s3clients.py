"""S3 clients made once per endpoint, region and credentials, and reused by every reconcile.

Making a boto3 client costs ~14 ms of CPU (it loads and parses the service model); done on the
event loop at every reconcile, it stalled every policy. The cache makes them in the caller's
thread (a bulkhead worker), under a lock with a Session of its own, because boto3's default
session is not safe to make clients from in several threads at once. Each client is made by the
contract's factory (retrain_contract.artifacts.s3.make_client) with the operator's timeouts.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3

from retrain_contract.artifacts.s3 import S3Timeouts, make_client

# Seconds, not minutes: one try and one retry, so a silent endpoint holds a thread ~25 s at most
# (botocore's old "max_attempts": 3 meant 4 tries of 30 s each). A read of a large file still
# progresses: the read timeout bounds each wait for bytes, not the whole transfer.
OPERATOR_TIMEOUTS = S3Timeouts(connect=3, read=10, attempts=2)


@dataclass(frozen=True)
class EndpointKey:
    """Where a client talks: the storage bulkhead's key (a silent endpoint is silent to everyone)."""

    endpoint: str  # "" is AWS's own endpoint for the region
    region: str

    def __str__(self) -> str:
        return f"S3 endpoint {self.endpoint}" if self.endpoint else f"S3 in {self.region or 'the default region'}"


def fingerprint(credentials: Mapping[str, str]) -> str:
    """A shortened sha256 of the credentials: tells rotated ones apart, keeps no secret in the key."""
    material = "\0".join(f"{name}={credentials[name]}" for name in sorted(credentials))
    return hashlib.sha256(material.encode()).hexdigest()[:16]


class ClientCache:
    """At most `size` clients, one per endpoint and credentials, least recently used evicted first.

    Creation is serialised by a lock and uses the cache's own Session."""

    def __init__(self, size: int = 64, timeouts: S3Timeouts = OPERATOR_TIMEOUTS):
        self.size = size
        self.timeouts = timeouts
        self._lock = threading.Lock()
        self._clients: OrderedDict[tuple[EndpointKey, str], Any] = OrderedDict()
        self._session: boto3.session.Session | None = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._clients)

    def get(self, endpoint: EndpointKey, credentials: Mapping[str, str]) -> Any:
        """The cached client for `endpoint` and `credentials`, else a new one (make_client's, with the
        cache's timeouts), cached."""
        key = (endpoint, fingerprint(credentials))
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                if self._session is None:
                    self._session = boto3.session.Session()
                client = make_client(endpoint.endpoint, endpoint.region, timeouts=self.timeouts,
                                     session=self._session, **credentials)
                self._clients[key] = client
                while len(self._clients) > self.size:
                    self._clients.popitem(last=False)
            self._clients.move_to_end(key)
            return client

    def clear(self) -> None:
        with self._lock:
            self._clients.clear()


CLIENTS = ClientCache()
