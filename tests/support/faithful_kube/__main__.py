"""`python -m faithful_kube --port 0 --kubeconfig PATH [--crd FILE ...]`: serve until SIGTERM."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

import yaml

from .thread import ApiServerThread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--crd", type=Path, action="append", default=[])
    args = parser.parse_args()
    server = ApiServerThread(port=args.port)
    print(server.start(), flush=True)
    for path in args.crd:
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                server.register_crd(document)
    server.write_kubeconfig(args.kubeconfig)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    server.stop()


if __name__ == "__main__":
    main()
