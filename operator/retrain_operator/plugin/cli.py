"""`kubectl retrain`: a kubectl plugin (kubectl runs `kubectl-retrain` from PATH).

Everything goes through the user's kubeconfig and RBAC: reading policies, setting the command
annotations the operator acts on, and reading the storage Secret only to fetch a drift report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import traceback
import webbrowser
from pathlib import Path

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from retrain_contract.api import names

from .. import __version__
from ..core import rollout
from ..core.timeutil import to_rfc3339
from . import steering, tables, watching
from .failures import api_failure, one_line, request_failure
from .report import ReportError, fetch_report
from .session import REQUEST_TIMEOUT, Session, UserError


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _status(session: Session, args: argparse.Namespace) -> int:
    wide = args.all_namespaces
    headers = ["NAMESPACE", *tables.STATUS_HEADERS] if wide else tables.STATUS_HEADERS

    def render(policies: list[dict]) -> str:
        return tables.render(headers, [tables.status_row(p, _now(), wide) for p in policies])

    policies = [session.policy(args.policy)] if args.policy else session.policies(args.all_namespaces)
    if args.watch:
        return watching.follow(session, args.policy, args.all_namespaces, render, args.timeout)
    if not policies:
        where = "any namespace" if args.all_namespaces else f"namespace {session.namespace!r}"
        print(f"No retrainpolicies found in {where}.", file=sys.stderr)
        return 0
    print(render(policies))
    return 0


def _history(session: Session, args: argparse.Namespace) -> int:
    rows = tables.history_rows(session.policy(args.policy))
    if not rows:
        print(f"{args.policy} has no model versions yet.", file=sys.stderr)
        return 0
    print(tables.render(tables.HISTORY_HEADERS, rows))
    return 0


def _trigger(session: Session, args: argparse.Namespace) -> int:
    policy = session.policy(args.policy)
    value = to_rfc3339(_now())
    session.annotate(args.policy, names.ANNOTATION_TRIGGER, value)
    print(f"retrainpolicy/{args.policy} triggered ({names.ANNOTATION_TRIGGER}={value})")
    if (policy.get("spec") or {}).get("suspend"):
        print("warning: the policy is suspended (spec.suspend): no run starts until it is resumed", file=sys.stderr)
    return 0


def _rollout_command(annotation: str, verb: str):
    def command(session: Session, args: argparse.Namespace) -> int:
        status = session.policy(args.policy).get("status") or {}
        rolling = status.get("rollout") or {}
        if not rollout.is_active(status.get("rollout")):
            raise UserError(f"{args.policy} has no canary rollout in progress"
                            + (f" (the last one, {rolling.get('version')}, {rolling.get('phase')})" if rolling else ""))
        session.annotate(args.policy, annotation, to_rfc3339(_now()))
        print(f"retrainpolicy/{args.policy}: {verb} {rolling.get('version')} "
              f"(at {int(rolling.get('weight') or 0)}%, {rolling.get('phase')})")
        return 0
    return command


def _report(session: Session, args: argparse.Namespace) -> int:
    policy = session.policy(args.policy)
    try:
        path, drift = fetch_report(session, policy, args.output, endpoint=args.endpoint,
                                   env_credentials=args.env_credentials)
    except ReportError as error:
        raise UserError(str(error)) from error
    verdict = tables.drift_verdict(drift)
    print(f"drift report of check {drift.get('checkId')} ({verdict}, score {drift.get('score')}) "
          f"saved to {path}")
    if args.open:
        webbrowser.open(Path(path).resolve().as_uri())
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="kubectl retrain", description=__doc__.splitlines()[0])
    root.add_argument("--version", action="version", version=__version__)
    # SUPPRESS: given before or after the subcommand, the subparser's default does not overwrite it.
    debug = {"action": "store_true", "default": argparse.SUPPRESS,
             "help": "print the traceback of an unexpected error"}
    root.add_argument("--debug", **debug)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", help="the namespace (default: the kubeconfig context's)")
    common.add_argument("--kubeconfig", help="path to the kubeconfig (default: KUBECONFIG or ~/.kube/config)")
    common.add_argument("--context", help="the kubeconfig context to use")
    common.add_argument("--request-timeout", type=float, default=REQUEST_TIMEOUT,
                        help="seconds to wait for the API server to connect and to answer; 0: no limit "
                             "(default: %(default)s)")
    common.add_argument("--debug", **debug)
    sub = root.add_subparsers(dest="command", required=True)

    status = sub.add_parser("status", parents=[common], help="phase, model, drift and canary of each policy")
    status.add_argument("policy", nargs="?")
    status.add_argument("-A", "--all-namespaces", action="store_true")
    status.add_argument("-w", "--watch", action="store_true", help="print the table again whenever it changes")
    status.add_argument("--timeout", type=float, default=None, help="with --watch: stop after this many seconds")
    status.set_defaults(func=_status)

    history = sub.add_parser("history", parents=[common], help="model versions with metrics and trigger")
    history.add_argument("policy")
    history.set_defaults(func=_history)

    trigger = sub.add_parser("trigger", parents=[common], help="retrain now (guards still apply)")
    trigger.add_argument("policy")
    trigger.set_defaults(func=_trigger)

    for verb, done, annotation, text in (
            ("promote", "promoted", names.ANNOTATION_PROMOTE, "promote the canary to 100%% now"),
            ("abort", "aborted", names.ANNOTATION_ABORT, "abort the canary; the stable model keeps serving")):
        command = sub.add_parser(verb, parents=[common], help=text)
        command.add_argument("policy")
        command.set_defaults(func=_rollout_command(annotation, done))

    report = sub.add_parser("report", parents=[common], help="download (and open) the latest drift report")
    report.add_argument("policy")
    report.add_argument("-o", "--output", help="where to save it (default: ./<policy>-<check>-drift-report.html)")
    report.add_argument("--open", action="store_true", help="open it in the browser")
    report.add_argument("--endpoint", help="S3 endpoint to use instead of spec.storage.endpoint (e.g. a port-forward)")
    report.add_argument("--env-credentials", action="store_true",
                        help="use your own AWS credentials (environment, profile) instead of the policy's Secret")
    report.set_defaults(func=_report)
    steering.add_parsers(sub, common)
    return root


def main(argv: list[str] | None = None) -> int:
    """Run one command; every failure is one line on stderr, as kubectl's ("error: ..."), exit status 1."""
    args = parser().parse_args(argv)
    session: Session | None = None
    try:
        session = Session(args.kubeconfig, args.context, args.namespace, args.request_timeout)
        return int(args.func(session, args) or 0)
    except UserError as error:
        return _fail(str(error))
    except ApiException as error:
        return _fail(api_failure(error, session.target if session is not None else None))
    except HTTPError as error:  # urllib3: no answer at all
        return _fail(request_failure(error, session.target if session is not None else None))
    except Exception as error:  # a bug, not the user's: still one line unless asked for the traceback
        if getattr(args, "debug", False):
            traceback.print_exc()
        where = f" talking to {session.target}" if session is not None else ""
        return _fail(f"unexpected {type(error).__name__}{where}: {one_line(error)} "
                     "(run again with --debug for the traceback)")


def _fail(message: str) -> int:
    print(f"error: {one_line(message)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
