"""`retrain-operator`: run the operator, the sandbox, the drift check; print the CRD."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from . import __version__


def _run(args: argparse.Namespace) -> int:
    if args.kubeconfig:
        # Before kubernetes is imported: it reads KUBECONFIG once, and kopf's login uses that default.
        os.environ["KUBECONFIG"] = args.kubeconfig
    import kopf
    import prometheus_client

    from . import handlers
    from .adapters.clock import FileClock, SystemClock
    from .adapters.kube import Kube, load_api_client
    from .core.decide import Settings
    from .reconcile import Context

    api_client = load_api_client(args.kubeconfig)
    handlers.CONTEXT = Context(
        kube=Kube(api_client),
        clock=FileClock(Path(args.clock_file)) if args.clock_file else SystemClock(),
        settings=Settings(default_image=args.trainer_image, serving_grace=args.serving_grace,
                          verify_interval=args.verify_interval),
        max_requeue=args.max_requeue,
    )
    if args.metrics_port:
        prometheus_client.start_http_server(args.metrics_port, addr=args.metrics_address)
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.JSON if args.json_logs else kopf.LogFormat.FULL)
    namespaces = args.namespace or []
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


def _drift(args: argparse.Namespace) -> int:
    """Compare two local files (or a stored profile and a file) without any cluster."""
    import json
    import sys as _sys

    from .artifacts.errors import DataError
    from .drift.engine import DriftCheck, Thresholds, to_json
    from .drift.files import iter_file_batches
    from .drift.profile import build_profile
    from .drift.report import render_html

    reference, current = Path(args.reference), Path(args.current)
    progress = not args.quiet and _sys.stderr.isatty()
    try:
        if reference.suffix == ".json":
            profile = json.loads(reference.read_text())
        else:
            profile = build_profile(iter_file_batches(reference, progress, "reference"), columns=args.columns)
        thresholds = Thresholds(key_features=tuple(args.key_feature or ()))
        check = DriftCheck(profile, thresholds, columns=args.columns)
        check.add_all(iter_file_batches(current, progress, "current"))
    except DataError as error:
        print(f"retrain-operator drift: error: {error}", file=_sys.stderr)
        return 3
    result = to_json({"reference": str(reference), "current": str(current), **check.result()})
    result["drift"] = result["datasetDrift"]
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if args.report:
        Path(args.report).write_text(render_html(result, profile, check))
    if args.save_profile:
        Path(args.save_profile).write_text(json.dumps(to_json(profile)))
    drifted = result["driftedFeatures"]
    verdict = "DATASET DRIFT" if result["drift"] else "no dataset drift"
    print(f"{verdict}: {len(drifted)} of {len(result['features'])} features "
          f"drifted{': ' + ', '.join(drifted) if drifted else ''} ({result['rows']} current rows)")
    if result["missingColumns"]:
        print(f"missing from the current data: {', '.join(result['missingColumns'])}")
    return 1 if result["drift"] else 0  # so that a script can gate on it


def _sandbox(args: argparse.Namespace) -> int:
    from .sandbox.story import run_sandbox

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through the sandbox's cleanup, like Ctrl-C

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    return run_sandbox(Path(args.workdir), keep=args.keep, bad_canary=args.bad_canary)


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
    run.add_argument("--clock-file", default=None,
                     help="read 'now' from this file (RFC 3339); for demos and tests only")
    run.add_argument("--metrics-port", type=int, default=int(os.environ.get("RETRAIN_METRICS_PORT", "0")))
    run.add_argument("--metrics-address", default="0.0.0.0")
    run.add_argument("--liveness", default=None, help="e.g. http://0.0.0.0:8080/healthz")
    run.add_argument("--peering", default=None, help="kopf peering object name (default: standalone)")
    run.add_argument("--json-logs", action="store_true")
    run.add_argument("--verbose", action="store_true")
    run.set_defaults(func=_run)

    crd = sub.add_parser("crd", help="print the RetrainPolicy CustomResourceDefinition")
    crd.set_defaults(func=_crd)

    drift = sub.add_parser("drift", help="compare two local Parquet/CSV files for drift, no cluster needed; "
                                         "exit 0: no dataset drift, 1: dataset drift, 3: bad input")
    drift.add_argument("--reference", required=True, help="reference data (.parquet/.csv) or a profile.json")
    drift.add_argument("--current", required=True, help="current data (.parquet/.csv)")
    drift.add_argument("--report", help="write the HTML report here")
    drift.add_argument("--json", help="write the drift.json result here")
    drift.add_argument("--save-profile", help="write the reference profile here (reuse it with --reference)")
    drift.add_argument("--columns", nargs="+", help="only these columns")
    drift.add_argument("--key-feature", action="append", help="a feature whose drift alone means dataset drift")
    drift.add_argument("--quiet", action="store_true", help="no progress bar")
    drift.set_defaults(func=_drift)

    sandbox = sub.add_parser("sandbox", help="the whole loop on this machine, no cluster needed")
    sandbox.add_argument("--workdir", default=".sandbox")
    sandbox.add_argument("--keep", action="store_true", help="keep everything running until Ctrl-C")
    sandbox.add_argument("--bad-canary", action="store_true",
                         help="then train a model on mislabeled data: it passes the offline gates and the live "
                              "canary analysis rolls it back")
    sandbox.set_defaults(func=_sandbox)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command != "run":  # kopf configures logging itself
        logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
