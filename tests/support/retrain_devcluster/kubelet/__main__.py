"""`python -m retrain_devcluster.kubelet --kubeconfig K --node NAME --workdir D [--capacity k=v ...]`"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import kubernetes

from .kubelet import Kubelet

DEFAULT_CAPACITY = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--capacity", action="append", default=[], metavar="RESOURCE=QUANTITY",
                        help="advertised capacity, e.g. nvidia.com/gpu=2 (added to the defaults)")
    parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="a node label")
    parser.add_argument("--forward", type=int, action="append", default=[], metavar="PORT",
                        help="a port on the node's 127.0.0.1 that pods reach on their own 127.0.0.1")
    parser.add_argument("--image-path", action="append", default=[],
                        help="a path the containers' 'image' needs (kept visible under volumes)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    capacity = dict(DEFAULT_CAPACITY)
    capacity.update(item.split("=", 1) for item in args.capacity)
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=args.kubeconfig, client_configuration=configuration)
    kubelet = Kubelet(kubernetes.client.ApiClient(configuration), args.node, args.workdir, capacity, args.forward,
                      [str(Path(p).resolve()) for p in args.image_path] or [sys.prefix],
                      labels=dict(item.split("=", 1) for item in args.label))
    kubelet.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
