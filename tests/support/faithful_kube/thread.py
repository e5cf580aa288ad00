"""The faithful API server on its own event loop in a background thread.

For synchronous tests, and for the sandbox, which drives an operator subprocess and a local
executor from ordinary code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import kmock
import yaml

from .server import AuditRecord, FaithfulKubernetes

T = TypeVar("T")


class ApiServerThread:
    def __init__(self, port: int = 0, host: str = "127.0.0.1", request_log_limit: int = 100):
        self.port = port
        self.host = host
        self.request_log_limit = request_log_limit
        self.url = ""
        self.server: FaithfulKubernetes | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, timeout: float = 30.0) -> str:
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # one line per request drowns the rest
        self._thread = threading.Thread(target=self._run, name="faithful-kube", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the test API server did not start")
        if self._error is not None:
            raise RuntimeError("the test API server failed to start") from self._error
        return self.url

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # surfaced to start()
            self._error = error
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with FaithfulKubernetes(request_log_limit=self.request_log_limit) as server, \
                kmock.Server(server, host=self.host, port=self.port or None) as http:
            self.server = server
            self.url = str(http.url).rstrip("/")
            self.port = http.port
            self._ready.set()
            await self._stop.wait()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=15)

    def call(self, function: Callable[[], Awaitable[T]] | Callable[[], T], timeout: float = 30.0) -> T:
        """Run `function` on the server's loop (awaiting it if it returns an awaitable)."""
        assert self._loop is not None

        async def runner() -> Any:
            result = function()
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                result = await result
            return result

        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(runner(), self._loop)
        return future.result(timeout)

    def register_crd(self, crd: dict[str, Any]) -> None:
        assert self.server is not None
        self.call(lambda: self.server.register_crd(crd))

    @property
    def audit(self) -> list[AuditRecord]:
        assert self.server is not None
        return self.call(lambda: list(self.server.audit))

    def write_kubeconfig(self, path: Path, namespace: str = "default", token: str = "test-token") -> Path:
        """A kubeconfig for this server; the token names the client in the audit log (`AuditRecord.user`)."""
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "faithful-kube", "preferences": {},
            "clusters": [{"name": "faithful-kube", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": token}}],
            "contexts": [{"name": "faithful-kube", "context": {
                "cluster": "faithful-kube", "user": "tester", "namespace": namespace}}],
        }
        path.write_text(yaml.safe_dump(config))
        return path
