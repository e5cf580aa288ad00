"""A TCP listener on 127.0.0.1 that accepts every connection and never reads or answers: an S3
endpoint as a broken load balancer or a hung server looks to a client (connect succeeds, then silence)."""

from __future__ import annotations

import contextlib
import socket
import threading


class BlackHole:
    """Counts the connections it swallowed; `close` ends them all (a client's stuck read returns)."""

    def __init__(self, backlog: int = 64) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(backlog)
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:  # closed
                return
            self.connections.append(connection)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # wakes the accept() at once (close alone does not); closed already
            self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        for connection in list(self.connections):
            connection.close()
        self.thread.join(timeout=5)
