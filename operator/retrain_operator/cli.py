"""`retrain-operator`: run the operator; print the CRD."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from . import __version__
from .core.sharding import Shard


def _run(args: argparse.Namespace) -> int:
    if args.kubeconfig:
        # Before kubernetes is imported: it reads KUBECONFIG once, and kopf's login uses that default.
        os.environ["KUBECONFIG"] = args.kubeconfig
    import kopf
    import prometheus_client

    from retrain_contract.api import names

    from . import handlers
    from .adapters.bucket_checks import BucketChecks
    from .adapters.cached_kube import CachedKube
    from .adapters.caches import Caches
    from .adapters.clock import FileClock, SystemClock
    from .adapters.kube import load_api_client
    from .adapters.notifier import Notifier
    from .core.decide import Settings
    from .reconcile import Context

    namespaces = args.namespace or []
    api_client = load_api_client(args.kubeconfig)
    # The informers' long watches on a client of their own: they would hold the reconciles' pooled connections.
    caches = Caches(load_api_client(args.kubeconfig), namespaces, shard=args.shard)
    handlers.HEAP_TRIM_INTERVAL = args.heap_trim_interval
    kube = CachedKube(api_client, caches)
    clock = FileClock(Path(args.clock_file)) if args.clock_file else SystemClock()
    instance = os.environ.get("HOSTNAME") or names.MANAGED_BY  # the Events' reportingInstance
    handlers.CONTEXT = Context(
        kube=kube,
        clock=clock,
        settings=Settings(default_image=args.trainer_image, serving_grace=args.serving_grace,
                          verify_interval=args.verify_interval),
        max_requeue=args.max_requeue,
        bucket_checks=BucketChecks(resync=args.storage_resync),
        caches=caches,
        shard=args.shard,
        instance=instance,
        notifier=Notifier(kube, clock, shard=args.shard, namespaces=namespaces, instance=instance),
    )
    if args.metrics_port:
        prometheus_client.start_http_server(args.metrics_port, addr=args.metrics_address)
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.JSON if args.json_logs else kopf.LogFormat.FULL)
    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=args.peering is None,
        peering_name=args.peering,
        liveness_endpoint=args.liveness,
    )
    return 0


def _crd(args: argparse.Namespace) -> int:
    from .api.crd import render_yaml

    sys.stdout.write(render_yaml())
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="retrain-operator", description=__doc__)
    root.add_argument("--version", action="version", version=__version__)
    root.add_argument("--log-level", default=os.environ.get("RETRAIN_LOG_LEVEL", "INFO"))
    sub = root.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator against the current kubeconfig (or in-cluster)")
    run.add_argument("--kubeconfig", default=None)
    run.add_argument("--namespace", "-n", action="append",
                     help="watch only this namespace (repeatable); default: all namespaces")
    run.add_argument("--trainer-image", default=os.environ.get(
        "RETRAIN_TRAINER_IMAGE", "ghcr.io/retrain-operator/trainer:" + __version__),
        help="image for policies that do not set spec.training.image")
    run.add_argument("--max-requeue", type=float, default=300.0,
                     help="longest sleep between two looks at a policy, in seconds")
    run.add_argument("--serving-grace", type=float, default=120.0,
                     help="seconds the current version's stable servers may have no Ready pod before Ready turns "
                          "False (ModelUnavailable)")
    run.add_argument("--verify-interval", type=float, default=600.0,
                     help="seconds between re-verifications of the current version's artifacts in S3; 0: never")
    run.add_argument("--storage-resync", type=float, default=600.0,
                     help="seconds a successful bucket check is trusted (jittered 20%% shorter) before it is made "
                          "again; a failed one is made again after 10 s, a changed spec or Secret asks anew")
    run.add_argument("--heap-trim-interval", type=float, default=60.0,
                     help="seconds between two returns of freed heap pages to the kernel (glibc malloc_trim; "
                          "after a burst of reconciles the heap keeps them otherwise); 0: never")
    run.add_argument("--clock-file", default=None,
                     help="read 'now' from this file (RFC 3339); for demos and tests only")
    # A string default is parsed as the option is: a wrong $RETRAIN_METRICS_PORT is a usage error, and --help works.
    run.add_argument("--metrics-port", type=int, default=os.environ.get("RETRAIN_METRICS_PORT", "0"),
                     help="serve Prometheus metrics on this port; 0: not at all (default: $RETRAIN_METRICS_PORT or 0)")
    run.add_argument("--metrics-address", default="0.0.0.0")
    run.add_argument("--liveness", default=None, help="e.g. http://0.0.0.0:8080/healthz")
    run.add_argument("--peering", default=None, help="kopf peering object name (default: standalone)")
    run.add_argument("--shard-index", type=int, default=0,
                     help="this replica's shard, 0..count-1: it reconciles the policies whose namespace/name hash "
                          "falls on it (docs/scale.md#sharding)")
    run.add_argument("--shard-count", type=int, default=1, help="how many shards the policies are split into")
    run.add_argument("--shard-selector", default=None,
                     help="reconcile only policies whose labels match this Kubernetes label selector "
                          "(e.g. 'team in (ml,vision),!legacy'); combines with the hash")
    run.add_argument("--json-logs", action="store_true")
    run.add_argument("--verbose", action="store_true")
    run.set_defaults(func=_run)

    crd = sub.add_parser("crd", help="print the RetrainPolicy CustomResourceDefinition")
    crd.set_defaults(func=_crd)

    return root


def _shard(args: argparse.Namespace) -> Shard:
    """The Shard of --shard-*; ValueError with what is wrong (the parser turns it into its one-line error)."""
    return Shard(args.shard_index, args.shard_count, args.shard_selector or None)


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    if args.command == "run":
        try:
            args.shard = _shard(args)
        except ValueError as error:
            cli.error(str(error))  # exits 2 with usage and the message, no traceback
    if args.command != "run":  # kopf configures logging itself
        logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
