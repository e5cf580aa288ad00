"""A stand-in for Prometheus in the sandbox: live accuracy from labeled feedback, per model version.

In a cluster, a team exports "was the prediction right?" once labels arrive and asks Prometheus
for the canary's accuracy against the stable model's. Here the traffic generator knows the true
labels, and this server answers the instant query the sandbox policy asks, through the real
Prometheus HTTP API shape the operator's analysis reads:

    sandbox_accuracy_drop{stable="v2", canary="v3"}   stable accuracy minus canary accuracy

An empty result (too few labeled answers yet) makes the analysis window inconclusive, as a
missing series does in Prometheus.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
import urllib.parse
from typing import Any

from .traffic import Traffic

QUERY = re.compile(r'^\s*sandbox_accuracy_drop\{stable="([^"]+)",\s*canary="([^"]+)"\}\s*$')
MIN_ANSWERS = 40  # below this, one version's accuracy is too noisy to compare


def accuracy_drop(traffic: Traffic, stable: str, canary: str, window: float = 15.0) -> float | None:
    accuracy = traffic.accuracy(window)
    if accuracy.get(stable, (0, 0))[1] < MIN_ANSWERS or accuracy.get(canary, (0, 0))[1] < MIN_ANSWERS:
        return None
    return accuracy[stable][0] - accuracy[canary][0]


class FeedbackPrometheus:
    def __init__(self, traffic: Traffic):
        self.traffic = traffic
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _answer(self, query: str) -> tuple[int, dict[str, Any]]:
        match = QUERY.match(query)
        if not match:
            return 400, {"status": "error", "errorType": "bad_data", "error": f"unsupported query: {query}"}
        value = accuracy_drop(self.traffic, *match.groups())
        result = [] if value is None else [{"metric": {}, "value": [time.time(), repr(value)]}]
        return 200, {"status": "success", "data": {"resultType": "vector", "result": result}}

    def start(self) -> FeedbackPrometheus:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlparse(self.path)
                query = urllib.parse.parse_qs(url.query).get("query", [""])[0]
                status, body = outer._answer(query) if url.path == "/api/v1/query" else (404, {})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="feedback-prometheus", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
