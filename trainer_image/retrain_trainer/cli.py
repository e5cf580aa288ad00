"""`retrain-trainer`: the trainer image's entrypoint. Exit codes: docs/trainer-contract.md."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import re
import sys
from pathlib import Path

from retrain_contract.api.names import ENV_RUN_CONFIG

from . import compare
from .errors import EXIT_CONFIG, EXIT_OK, EXIT_UNEXPECTED, ConfigError, classify

TERMINATION_LOG = Path("/dev/termination-log")
log = logging.getLogger("retrain_trainer")


def _report_failure(store_and_prefix, code: int, reason: str, message: str) -> None:
    """Tell the operator why: stderr, the termination log, and error.json next to the run (best effort)."""
    print(f"retrain-trainer: error: {reason}: {message}", file=sys.stderr, flush=True)
    if TERMINATION_LOG.parent.exists() and os.access(TERMINATION_LOG.parent, os.W_OK):
        with contextlib.suppress(OSError):
            TERMINATION_LOG.write_text(f"{reason}: {message}"[:4096])
    if store_and_prefix is None:
        return
    try:
        from retrain_contract.artifacts.layout import ERROR_FILE

        store, prefix = store_and_prefix()
        body = json.dumps({"reason": reason, "message": message, "exitCode": code}).encode()
        store.put_bytes(prefix + ERROR_FILE, body, "application/json")
    except Exception as error:  # the exit code still tells the operator
        log.warning("could not write error.json: %s", error)


def _store(storage: dict) -> object:
    from retrain_contract.artifacts.s3 import make_client
    from retrain_contract.artifacts.store import ArtifactStore

    return ArtifactStore(make_client(storage.get("endpoint"), storage.get("region")), storage["bucket"])


def _config_text(args: argparse.Namespace) -> tuple[str, str]:
    """(the configuration's text, where it came from): a file that cannot be read is named."""
    if not args.config:
        text = os.environ.get(ENV_RUN_CONFIG) or ""
        if not text.strip():
            raise ConfigError(f"no run configuration: set ${ENV_RUN_CONFIG} or pass --config")
        return text, f"${ENV_RUN_CONFIG}"
    source = f"--config {args.config}"
    try:
        text = Path(args.config).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{source}: cannot read the file: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"{source} is not UTF-8 text: {error}") from error
    if not text.strip():
        raise ConfigError(f"{source} is empty")
    return text, source


def _execute(args: argparse.Namespace, parse, run, where) -> int:
    """Parse, run, and on failure classify and report; `where(config)` locates error.json."""
    config = None
    try:
        config = parse(*_config_text(args))
        result = run(config)
    except Exception as error:
        code, reason = classify(error)
        if code == EXIT_UNEXPECTED:
            log.exception("unexpected failure")
        _report_failure(None if config is None else (lambda: where(config)), code, reason, str(error))
        return code
    log.info("done: %s", json.dumps(result.get("metrics") or
                                    {"verdict": result.get("verdict"), "drift": result.get("drift")}))
    return EXIT_OK


def _train(args: argparse.Namespace) -> int:
    from . import config as config_module

    def run(config):
        from .train import run as train  # scikit-learn and pandas: only once the configuration is good

        return train(config)

    def where(config):
        storage = {"endpoint": config.endpoint, "region": config.region, "bucket": config.bucket}
        return _store(storage), config.output_prefix

    return _execute(args, config_module.parse, run, where)


def _drift(args: argparse.Namespace) -> int:
    from .drift_config import parse

    def run(config):
        from .drift_check import run as check  # numpy, pyarrow, joblib: only once the configuration is good

        return check(config)

    return _execute(args, parse, run, lambda config: (_store(config.storage), config.output_prefix))


def _public_key(path: str) -> object:
    """The Ed25519 public key manifests must be signed with; an unusable file is a ConfigError."""
    from retrain_contract.artifacts.signature import SigningKeyError, load_public_key

    try:
        return load_public_key(Path(path).read_bytes())
    except OSError as error:
        raise ConfigError(f"--public-key-file {path}: {error.strerror or error}") from error
    except SigningKeyError as error:
        raise ConfigError(f"--public-key-file {path}: {error}") from error


def _check_serve_options(args: argparse.Namespace) -> None:
    """Every option, before S3 is asked: a wrong one is a ConfigError naming it (exit 2), never a traceback."""
    from retrain_contract.artifacts.uris import parse_s3_uri

    from .fields import http_url

    if not args.model_uri:
        raise ConfigError("no model: pass --model-uri or set RETRAIN_MODEL_URI")
    if not 0 <= args.drain_seconds <= 300:
        raise ConfigError(f"--drain-seconds must be between 0 and 300, not {args.drain_seconds:g}")
    for option, uri in (("--model-uri", args.model_uri), ("--capture-uri", args.capture_uri)):
        try:
            if uri:
                parse_s3_uri(uri)
        except ValueError as error:
            raise ConfigError(f"{option}: {error}") from error
    if args.endpoint:
        try:
            http_url(args.endpoint)
        except ValueError as error:
            raise ConfigError(f"--endpoint (or $AWS_ENDPOINT_URL): {error}") from error
    if not 0.0 <= args.capture_fraction <= 1.0:
        raise ConfigError(f"--capture-fraction must be within 0..1, got {args.capture_fraction}")
    if args.manifest_sha256 and not re.fullmatch(r"[0-9a-fA-F]{64}", args.manifest_sha256):
        raise ConfigError(f"--manifest-sha256 must be 64 hex digits, got {args.manifest_sha256!r}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be within 0..65535, got {args.port}")
    if args.capture_flush_rows < 1 or not args.capture_flush_seconds > 0:
        raise ConfigError("--capture-flush-rows must be at least 1 and --capture-flush-seconds above 0, got "
                          f"{args.capture_flush_rows} and {args.capture_flush_seconds}")


def _serve(args: argparse.Namespace) -> int:
    """Load and verify the model, then serve until SIGTERM; a model that fails verification never serves."""
    from retrain_contract.artifacts.s3 import make_client
    from retrain_contract.artifacts.store import ArtifactStore

    from .serving import lifecycle
    from .serving import loaded as loaded_module
    from .serving.app import build_app
    from .serving.capture import RequestCapture
    from .serving.metrics import ServingMetrics

    try:
        _check_serve_options(args)
        store_for = functools.partial(ArtifactStore, make_client(args.endpoint, args.region))  # bucket -> store
        model = loaded_module.load(store_for, args.model_uri, args.manifest_sha256 or None,
                                   _public_key(args.public_key_file) if args.public_key_file else None)
        capture = (RequestCapture(store_for, args.capture_uri, model.version, args.capture_fraction,
                                  args.capture_flush_rows) if args.capture_uri and args.capture_fraction > 0 else None)
    except Exception as error:
        code, reason = classify(error)
        _report_failure(None, code, reason, str(error))
        return code
    log.info("serving %s (%s) on %s:%d", model.version, model.uri, args.host, args.port)
    log.info("model format %s, computed by %s", model.format, model.backend)
    app = build_app(model, ServingMetrics(model.version, args.policy, model.format, model.backend), capture,
                    args.capture_flush_seconds, args.model_name or args.policy or "model")
    lifecycle.run(app, args.host, args.port, args.drain_seconds)
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    """The subcommands and their options; defaults from the environment are parsed as the options are
    (a wrong $RETRAIN_SERVE_PORT is a usage error naming --port, exit 2, not a traceback)."""
    root = argparse.ArgumentParser(prog="retrain-trainer", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train one version as the run configuration says")
    train.add_argument("--config", help=f"a run configuration file (default: ${ENV_RUN_CONFIG})")
    train.set_defaults(func=_train)
    drift = sub.add_parser("drift", help="compare recent data with the current model's training profile")
    drift.add_argument("--config", help=f"a drift check configuration file (default: ${ENV_RUN_CONFIG})")
    drift.set_defaults(func=_drift)
    compare.add_parser(sub)
    serve = sub.add_parser("serve", help="serve one verified model version over HTTP")
    serve.add_argument("--model-uri", default=os.environ.get("RETRAIN_MODEL_URI"),
                       help="s3://bucket/prefix/<namespace>/<policy>/<uid>/<version>/ (default: $RETRAIN_MODEL_URI)")
    serve.add_argument("--manifest-sha256", default=os.environ.get("RETRAIN_MANIFEST_SHA256"),
                       help="the sha256 of manifest.json as recorded: any other manifest is refused")
    serve.add_argument("--public-key-file", default=os.environ.get("RETRAIN_PUBLIC_KEY_FILE") or None,
                       help="an Ed25519 public key (PEM): a manifest without a manifest.json.sig that verifies "
                            "with it is refused (default: $RETRAIN_PUBLIC_KEY_FILE)")
    serve.add_argument("--host", default=os.environ.get("RETRAIN_SERVE_HOST", "0.0.0.0"))
    serve.add_argument("--port", type=int, default=os.environ.get("RETRAIN_SERVE_PORT", "8080"),
                       help="(default: $RETRAIN_SERVE_PORT or 8080)")
    serve.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"), help="S3 endpoint URL")
    serve.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    serve.add_argument("--policy", default=os.environ.get("RETRAIN_POLICY", ""), help="a label for metrics")
    serve.add_argument("--model-name", default=os.environ.get("RETRAIN_MODEL_NAME") or None,
                       help="the model's name in the Open Inference Protocol's /v2/models/<name> "
                            "(default: $RETRAIN_MODEL_NAME, else --policy, else 'model')")
    serve.add_argument("--drain-seconds", type=float, default=os.environ.get("RETRAIN_DRAIN_SECONDS", "5"),
                       help="after SIGTERM, answer not ready but keep serving this long, so the requests routed "
                            "here before endpoints catch up are answered (default: $RETRAIN_DRAIN_SECONDS or 5)")
    serve.add_argument("--capture-uri", default=os.environ.get("RETRAIN_CAPTURE_URI"),
                       help="write a sample of requests and predictions under this S3 prefix")
    serve.add_argument("--capture-fraction", type=float, default=os.environ.get("RETRAIN_CAPTURE_FRACTION", "0.1"),
                       help="(default: $RETRAIN_CAPTURE_FRACTION or 0.1)")
    serve.add_argument("--capture-flush-rows", type=int, default=1000)
    serve.add_argument("--capture-flush-seconds", type=float, default=60.0)
    serve.set_defaults(func=_serve)
    return root


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exit_:
        return EXIT_CONFIG if exit_.code else EXIT_OK
    level = os.environ.get("RETRAIN_LOG_LEVEL", "INFO").upper()
    if level not in logging.getLevelNamesMapping():
        _report_failure(None, EXIT_CONFIG, "ConfigError", f"$RETRAIN_LOG_LEVEL: unknown level {level!r}")
        return EXIT_CONFIG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
