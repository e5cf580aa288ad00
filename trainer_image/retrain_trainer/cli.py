"""`retrain-trainer`: the trainer image's entrypoint. Exit codes: docs/trainer-contract.md."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from pathlib import Path

from retrain_operator.api.names import ENV_RUN_CONFIG

from .errors import EXIT_CONFIG, EXIT_OK, ConfigError, classify

TERMINATION_LOG = Path("/dev/termination-log")
log = logging.getLogger("retrain_trainer")


def _report_failure(config, code: int, reason: str, message: str) -> None:
    """Tell the operator why: stderr, the termination log, and error.json next to the run (best effort)."""
    print(f"retrain-trainer: error: {reason}: {message}", file=sys.stderr, flush=True)
    if TERMINATION_LOG.parent.exists() and os.access(TERMINATION_LOG.parent, os.W_OK):
        with contextlib.suppress(OSError):
            TERMINATION_LOG.write_text(f"{reason}: {message}"[:4096])
    if config is None:
        return
    try:
        from retrain_operator.artifacts.layout import ERROR_FILE, version_prefix
        from retrain_operator.artifacts.s3 import make_client
        from retrain_operator.artifacts.store import ArtifactStore

        store = ArtifactStore(make_client(config.endpoint, config.region), config.bucket)
        prefix = version_prefix(config.prefix, config.namespace, config.policy, config.version)
        body = json.dumps({"reason": reason, "message": message, "exitCode": code}).encode()
        store.put_bytes(prefix + ERROR_FILE, body, "application/json")
    except Exception as error:  # the exit code still tells the operator
        log.warning("could not write error.json: %s", error)


def _train(args: argparse.Namespace) -> int:
    from . import config as config_module
    from .train import run

    config = None
    try:
        text = Path(args.config).read_text() if args.config else os.environ.get(ENV_RUN_CONFIG)
        if not text:
            raise ConfigError(f"no run configuration: set {ENV_RUN_CONFIG} or pass --config")
        config = config_module.parse(text)
        manifest = run(config)
    except Exception as error:
        code, reason = classify(error)
        if code == 1:
            log.exception("unexpected failure")
        _report_failure(config, code, reason, str(error))
        return code
    log.info("trained %s: %s", manifest.get("version"), json.dumps(manifest.get("metrics")))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="retrain-trainer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train one version as the run configuration says")
    train.add_argument("--config", help=f"a run configuration file (default: ${ENV_RUN_CONFIG})")
    train.set_defaults(func=_train)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return EXIT_CONFIG if exit_.code else EXIT_OK
    logging.basicConfig(level=os.environ.get("RETRAIN_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
