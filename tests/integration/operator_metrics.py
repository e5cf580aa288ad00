"""The operator's Prometheus endpoint as the tests read it: a free port to serve it on, a scrape, a sample."""

from __future__ import annotations

import socket
import urllib.request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_args(port: int) -> tuple[str, ...]:
    """The operator's flags to serve its metrics on `port`, on 127.0.0.1 only."""
    return ("--metrics-port", str(port), "--metrics-address", "127.0.0.1")


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None
