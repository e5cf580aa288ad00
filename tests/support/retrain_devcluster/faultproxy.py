"""A fault-injecting proxy in front of the real API server, for faults a real server will not produce on cue.

It terminates TLS with a certificate of the dev cluster's CA, forwards every request (bearer
token and all, watches streamed) to the API server, and applies the first matching rule:
answer with an error Status (500, 429 with Retry-After, ...), delay the request, cut a watch
stream after some events, or run an action (e.g. SIGKILL the operator) before the request is
forwarded or after the server answered but before the answer goes back. Rules are added and
removed while it runs, and each counts its hits.

    proxy = FaultProxy(plane).start()
    rule = proxy.add(Fault(method="PATCH", path=r"/retrainpolicies/[^/]+/status$", status=500, times=3))
    ... point a kubeconfig at proxy.url ...
    # The Job is created, but its creator dies before it learns so:
    proxy.add(Fault(method="POST", path=r"/jobs$", action=kill_operator, when="after", times=1))
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from .controlplane import ControlPlane, free_port

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class Fault:
    """What to do to requests whose method and path (a regex, searched) match."""

    path: str
    method: str | None = None
    status: int | None = None  # answer with this code and a Status body instead of forwarding
    retry_after: int | None = None
    delay: float = 0.0  # seconds before forwarding (or answering)
    cut_watch_after: int | None = None  # end a watch stream after this many events
    times: int | None = None  # apply this often, then stand aside (None: until removed)
    body: str | None = None  # also a regex the request body (decoded as UTF-8) must contain
    # Called (in the proxy's thread) "before" the request is forwarded, which then never reaches the
    # server (answered 503), or "after" the server answered, before the answer is passed back: the
    # write happened but the client has not learned it (not for watches: their answer never ends).
    # A SIGKILL of the client is what it is for.
    action: Callable[[], None] | None = None
    when: str = "before"
    hits: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.when not in ("before", "after"):
            raise ValueError(f"when must be 'before' or 'after', not {self.when!r}")

    def matches(self, method: str, path: str, body: bytes = b"") -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return ((self.method is None or self.method == method) and re.search(self.path, path) is not None
                and (self.body is None or re.search(self.body, body.decode("utf-8", "replace")) is not None))


class FaultProxy:
    def __init__(self, plane: ControlPlane):
        self.plane = plane
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._runner: web.AppRunner | None = None

    # -- rules ------------------------------------------------------------------------------------

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        with self._lock:
            self.faults.remove(fault)

    def _match(self, method: str, path: str, body: bytes = b"") -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path, body):
                    fault.hits += 1
                    return fault
        return None

    # -- serving -------------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._started.wait(15):
            raise RuntimeError("the fault proxy did not start")
        return self

    def stop(self) -> None:
        """Upstream streams are closed first: an open watch would otherwise hold the server's shutdown."""
        async def shutdown() -> None:
            await self._session.close()
            if self._runner is not None:
                await asyncio.wait_for(self._runner.cleanup(), 5)

        if self._loop is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._started.set()
        self._loop.run_forever()

    async def _serve(self) -> None:
        assert self.plane.ca is not None
        pair = self.plane.ca.issue("fault-proxy", "fault-proxy", server_ips=("127.0.0.1",),
                                   server_names=("localhost",))
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_tls.load_cert_chain(str(pair.cert), str(pair.key))
        # Upstream, the proxy presents nothing of its own: the caller's bearer token is forwarded.
        self._upstream_tls = ssl.create_default_context(cafile=str(self.plane.ca.cert_path))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=server_tls).start()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        fault = self._match(request.method, request.path, body)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.action is not None and fault.when == "before":
            fault.action()
            return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                      "code": 503, "reason": "ServiceUnavailable",
                                      "message": "not forwarded: stopped by the fault proxy"}, status=503)
        if fault is not None and fault.status is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            error = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": fault.status,
                     "reason": "InternalError" if fault.status >= 500 else "TooManyRequests",
                     "message": f"injected by the fault proxy ({fault.status})"}
            return web.json_response(error, status=fault.status, headers=headers)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with self._session.request(request.method, f"{self.plane.url}{request.rel_url}", headers=headers,
                                         data=body or None, ssl=self._upstream_tls,
                                         auto_decompress=False) as upstream:
            if fault is not None and fault.action is not None and fault.when == "after":
                answer = await upstream.read()  # the server has done its part; the client has not heard
                fault.action()
                return web.Response(status=upstream.status, body=answer, headers={
                    k: v for k, v in upstream.headers.items() if k.lower() not in _HOP})
            response = web.StreamResponse(status=upstream.status, headers={
                k: v for k, v in upstream.headers.items() if k.lower() not in _HOP})
            await response.prepare(request)
            watch = request.query.get("watch") in {"1", "true"}
            cut = fault.cut_watch_after if fault is not None and watch else None
            events = 0
            chunks = upstream.content if watch else upstream.content.iter_chunked(1 << 16)
            async for line in chunks:  # a watch streams newline-delimited JSON, one event a line
                await response.write(line)
                events += 1
                if cut is not None and events >= cut:
                    break  # the stream ends early, as when a load balancer drops an idle connection
            await response.write_eof()
            return response
