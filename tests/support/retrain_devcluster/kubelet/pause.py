"""A pod's sandbox: the process that owns the pod's network namespace, like a runtime's pause container.

It keeps a handle on the node's network namespace, moves itself into a new one (the kubelet
then plugs a veth pair into it), and relays connections to chosen node-local ports
(`--forward 8333`): a container dialing 127.0.0.1:8333 reaches the service listening on the
node's 127.0.0.1:8333. That is how pods here reach S3 on loopback; in a cluster they would
dial the storage Service instead. It writes READY_FILE once the namespace exists.

    python -m retrain_devcluster.kubelet.pause --ready FILE [--forward PORT ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
from pathlib import Path

from .linux import CLONE_NEWNET, setns, unshare


def _node_socket(node_ns: int, pod_ns: int) -> socket.socket:
    """A TCP socket created in the node's namespace (a socket keeps the namespace it was made in)."""
    setns(node_ns, CLONE_NEWNET)
    try:
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    finally:
        setns(pod_ns, CLONE_NEWNET)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _serve(ports: list[int], node_ns: int, pod_ns: int, ready: Path) -> None:
    loop = asyncio.get_running_loop()

    def relay(port: int):
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            upstream = _node_socket(node_ns, pod_ns)
            upstream.setblocking(False)
            try:
                await loop.sock_connect(upstream, ("127.0.0.1", port))
            except OSError:
                upstream.close()
                writer.close()
                return
            up_reader, up_writer = await asyncio.open_connection(sock=upstream)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        return handle

    servers = [await asyncio.start_server(relay(port), "127.0.0.1", port) for port in ports]
    ready.write_text(str(os.getpid()))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ready", type=Path, required=True)
    parser.add_argument("--forward", type=int, action="append", default=[])
    args = parser.parse_args()
    node_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
    unshare(CLONE_NEWNET)
    pod_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    asyncio.run(_serve(args.forward, node_ns, pod_ns, args.ready))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
