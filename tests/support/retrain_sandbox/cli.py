"""`retrain-sandbox`: the whole loop on this machine (dev cluster, SeaweedFS, the operator), no cluster needed.

A dev tool, never part of the operator's distribution: it runs Jobs' and pods' commands on this
machine through the dev cluster's process kubelet.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="retrain-sandbox", description=__doc__)
    parser.add_argument("--workdir", default=".sandbox")
    parser.add_argument("--keep", action="store_true", help="keep everything running until Ctrl-C")
    parser.add_argument("--bad-canary", action="store_true",
                        help="then train a model on mislabeled data: it passes the offline gates and the live "
                             "canary analysis rolls it back")
    parser.add_argument("--estimator", default="SGDClassifier", choices=["SGDClassifier", "XGBClassifier",
                                                                          "LGBMClassifier"],
                        help="the model: SGD retrains on a window of recent data, XGBoost and LightGBM continue "
                             "boosting from the serving model")
    parser.add_argument("--log-level", default=os.environ.get("RETRAIN_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .story import run_sandbox

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through the sandbox's cleanup, like Ctrl-C

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    return run_sandbox(Path(args.workdir), keep=args.keep, bad_canary=args.bad_canary,
                       estimator=args.estimator)


if __name__ == "__main__":
    sys.exit(main())
