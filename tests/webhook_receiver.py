"""A webhook receiver on 127.0.0.1 for the notification tests: a real HTTP server in a thread that records
each POST and answers what the test scripts (a status, headers, a pause), 200 by default."""

from __future__ import annotations

import http.server
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Script:
    answers: list[tuple[int, dict[str, str], float]] = field(default_factory=list)  # used once each, in order
    default: int = 200


class WebhookReceiver:
    def __init__(self) -> None:
        self.script = Script()
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    status, headers, pause = (receiver.script.answers.pop(0) if receiver.script.answers
                                              else (receiver.script.default, {}, 0.0))
                    receiver.received.append(Received(self.path, dict(self.headers), body, status))
                time.sleep(pause)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, *answers: tuple[int, dict[str, str], float], default: int | None = None) -> None:
        with self._lock:
            self.script.answers.extend(answers)
            if default is not None:
                self.script.default = default

    def requests(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if path is None or r.path == path]

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
