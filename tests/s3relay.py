"""A TCP relay in front of SeaweedFS's S3 port that a test can stop and start like the service itself,
or have act on one request: S3 going away for a while, or a trainer killed in the middle of its uploads.

It listens on 127.0.0.1 on a port of its own, which the session's node forwards into pods, so the
operator and the trainer pods both reach S3 through it when a policy's `storage.endpoint` says so.
`down()` closes the listener and resets every open connection: new connections are refused and
requests in flight fail, as when the S3 process is stopped. `up()` listens again on the same port.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class OnRequest:
    """Call `action` at the first request whose request line matches, and drop that request unsent."""

    method: str
    path: str  # a regex searched in the request target
    action: Callable[[], None]
    fired: bool = False

    def matches(self, head: bytes) -> bool:
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        return (not self.fired and len(parts) == 3 and parts[0] == self.method
                and re.search(self.path, parts[1]) is not None)


class S3Relay:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.rules: list[OnRequest] = []
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._server: socket.socket | None = None
        self.up()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def up(self) -> None:
        with self._lock:
            if self._server is not None:
                return
            server = socket.socket()
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", self.port))
            server.listen(64)
            self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            sockets, self._sockets = list(self._sockets), set()
        if server is not None:
            server.close()
        for sock in sockets:
            _reset(sock)

    def on_request(self, method: str, path: str, action: Callable[[], None]) -> OnRequest:
        rule = OnRequest(method, path, action)
        self.rules.append(rule)
        return rule

    def close(self) -> None:
        self.rules.clear()
        self.down()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:  # down() closed it
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                if self._server is not server:  # went down meanwhile
                    _reset(client)
                    _reset(upstream)
                    continue
                self._sockets |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if from_client and self._intercepted(chunk):
                    _reset(source)
                    _reset(target)
                    return
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)

    def _intercepted(self, chunk: bytes) -> bool:
        """A chunk that starts a request (botocore sends each request's head in one write) and matches a rule."""
        for rule in list(self.rules):
            if rule.matches(chunk):
                rule.fired = True
                rule.action()
                return True
        return False


def _reset(sock: socket.socket) -> None:
    """Close with RST, not FIN: the peer sees the connection fail, not a clean end."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
