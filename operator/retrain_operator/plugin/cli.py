"""`kubectl retrain`: a kubectl plugin (kubectl runs `kubectl-retrain` from PATH).

Everything goes through the user's kubeconfig and RBAC: reading policies, setting the command
annotations the operator acts on, and reading the storage Secret only to fetch a drift report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import webbrowser
from pathlib import Path
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from retrain_contract.api import names

from .. import __version__
from ..core import rollout
from ..core.timeutil import to_rfc3339
from . import tables
from .report import ReportError, fetch_report


class UserError(Exception):
    """Something the user can fix: printed as one line, exit status 1."""


class Session:
    """The kubeconfig's cluster, context and namespace, as kubectl would pick them."""

    def __init__(self, kubeconfig: str | None, context: str | None, namespace: str | None):
        configuration = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_kube_config(config_file=kubeconfig, context=context,
                                               client_configuration=configuration)
            contexts, active = kubernetes.config.list_kube_config_contexts(config_file=kubeconfig)
        except (kubernetes.config.ConfigException, FileNotFoundError) as error:
            raise UserError(f"cannot load the kubeconfig: {error}") from error
        if context:
            active = next((c for c in contexts if c["name"] == context), active)
        self.namespace = namespace or (active or {}).get("context", {}).get("namespace") or "default"
        self.api_client = kubernetes.client.ApiClient(configuration)
        self.custom = kubernetes.client.CustomObjectsApi(self.api_client)
        self.core = kubernetes.client.CoreV1Api(self.api_client)

    def policies(self, all_namespaces: bool) -> list[dict[str, Any]]:
        if all_namespaces:
            found = self.custom.list_cluster_custom_object(names.GROUP, names.VERSION, names.PLURAL)
        else:
            found = self.custom.list_namespaced_custom_object(names.GROUP, names.VERSION, self.namespace,
                                                              names.PLURAL)
        return sorted(found.get("items") or [], key=lambda p: (p["metadata"].get("namespace", ""),
                                                               p["metadata"]["name"]))

    def policy(self, name: str) -> dict[str, Any]:
        try:
            return self.custom.get_namespaced_custom_object(names.GROUP, names.VERSION, self.namespace,
                                                            names.PLURAL, name)
        except ApiException as error:
            if error.status == 404:
                raise UserError(f"retrainpolicy {name!r} not found in namespace {self.namespace!r}") from error
            raise

    def annotate(self, name: str, key: str, value: str) -> None:
        """What `kubectl annotate --overwrite` does, as a merge patch of metadata only (never spec)."""
        self.custom.patch_namespaced_custom_object(names.GROUP, names.VERSION, self.namespace, names.PLURAL,
                                                   name, {"metadata": {"annotations": {key: value}}})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _status(session: Session, args: argparse.Namespace) -> int:
    policies = [session.policy(args.policy)] if args.policy else session.policies(args.all_namespaces)
    if not policies:
        where = "any namespace" if args.all_namespaces else f"namespace {session.namespace!r}"
        print(f"No retrainpolicies found in {where}.", file=sys.stderr)
        return 0
    wide = args.all_namespaces
    headers = ["NAMESPACE", *tables.STATUS_HEADERS] if wide else tables.STATUS_HEADERS
    print(tables.render(headers, [tables.status_row(p, _now(), wide) for p in policies]))
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
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", help="the namespace (default: the kubeconfig context's)")
    common.add_argument("--kubeconfig", help="path to the kubeconfig (default: KUBECONFIG or ~/.kube/config)")
    common.add_argument("--context", help="the kubeconfig context to use")
    sub = root.add_subparsers(dest="command", required=True)

    status = sub.add_parser("status", parents=[common], help="phase, model, drift and canary of each policy")
    status.add_argument("policy", nargs="?")
    status.add_argument("-A", "--all-namespaces", action="store_true")
    status.set_defaults(func=_status)

    history = sub.add_parser("history", parents=[common], help="model versions with metrics and trigger")
    history.add_argument("policy")
    history.set_defaults(func=_history)

    trigger = sub.add_parser("trigger", parents=[common], help="retrain now (guards still apply)")
    trigger.add_argument("policy")
    trigger.set_defaults(func=_trigger)

    for verb, done, annotation, text in (
            ("promote", "promoted", names.ANNOTATION_PROMOTE, "promote the canary to 100% now"),
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
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        session = Session(args.kubeconfig, args.context, args.namespace)
        return int(args.func(session, args) or 0)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ApiException as error:
        print(f"error: the API server answered {error.status} {error.reason}: {_api_message(error)}",
              file=sys.stderr)
        return 1


def _api_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or "")
    except ValueError:
        return str(error.body or "")[:200]


if __name__ == "__main__":
    sys.exit(main())
