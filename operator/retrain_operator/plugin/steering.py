"""`kubectl retrain undo | retry | pause | resume`: the requests a person makes of a model's life.

Each writes what the operator acts on (an annotation, or `spec.suspend` for runs) and, for undo and
retry, waits for the operator's answer in `status.lastUndo`, so the command says what happened (or why
it was refused) instead of only that it asked.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from typing import Any

from retrain_contract.api import names

from ..core import rollout, undo
from ..core.timeutil import to_rfc3339
from .session import UserError

Json = dict[str, Any]
WAIT = 30.0  # seconds undo/retry wait for the operator's answer by default
POLL = 0.5


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _answer(session: Any, name: str, request: str, timeout: float) -> Json | None:
    """status.lastUndo once the operator has acted on `request`; None if it has not within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        answer = (session.policy(name).get("status") or {}).get("lastUndo") or {}
        if answer.get("request") == request:
            return answer
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL)


def _request(session: Any, args: argparse.Namespace, value: str) -> int:
    session.annotate(args.policy, names.ANNOTATION_UNDO, value)
    answer = _answer(session, args.policy, value, args.timeout)
    if answer is None:
        print(f"retrainpolicy/{args.policy}: asked ({names.ANNOTATION_UNDO}={value}); the operator has not answered "
              f"within {args.timeout:g}s (is it running?): see `kubectl describe retrainpolicy {args.policy}`")
        return 0
    if answer.get("result") == "Refused":
        raise UserError(f"retrainpolicy/{args.policy}: refused: {answer.get('message')}")
    print(f"retrainpolicy/{args.policy}: {answer.get('message')}")
    return 0


def undo_command(session: Any, args: argparse.Namespace) -> int:
    status = session.policy(args.policy).get("status") or {}
    if rollout.is_active(status.get("rollout")):
        raise UserError(f"{args.policy}: the rollout of {status['rollout'].get('version')} is in progress; "
                        f"abort it first (kubectl retrain abort {args.policy})")
    flags = ";immediate" if args.immediate else ""
    return _request(session, args, f"{args.to_version or undo.PREVIOUS}{flags};at={to_rfc3339(_now())}")


def retry_command(session: Any, args: argparse.Namespace) -> int:
    last = (session.policy(args.policy).get("status") or {}).get("rollout") or {}
    if last.get("phase") not in (rollout.ABORTED, rollout.ROLLED_BACK):
        state = f" (the last one, {last.get('version')}, is {last.get('phase')})" if last else ""
        raise UserError(f"{args.policy} has no aborted or rolled-back rollout to retry{state}")
    return _request(session, args, f"{last.get('version')};retry;at={to_rfc3339(_now())}")


def _targets(args: argparse.Namespace, pausing: bool, canary: bool, held: bool, suspended: bool) -> tuple[bool, bool]:
    """(the canary, runs): what pause/resume acts on. Unasked, pause holds the canary in progress (else runs);
    resume lets go of whatever is held."""
    if args.runs or args.canary:
        return args.canary, args.runs
    if pausing:
        return canary, not canary
    return canary and held, suspended


def _pause_or_resume(pausing: bool) -> Callable[[Any, argparse.Namespace], int]:
    verb = "pause" if pausing else "resume"

    def command(session: Any, args: argparse.Namespace) -> int:
        policy = session.policy(args.policy)
        spec, status = policy.get("spec") or {}, policy.get("status") or {}
        meta = policy.get("metadata") or {}
        rolling = status.get("rollout") or {}
        canary = rollout.is_active(rolling)
        held = ((meta.get("annotations") or {}).get(names.ANNOTATION_PAUSE) or "").lower() == "true"
        on_canary, on_runs = _targets(args, pausing, canary, held, bool(spec.get("suspend")))
        said = []
        if on_canary:
            if not canary:
                raise UserError(f"{args.policy} has no canary rollout in progress")
            session.annotate(args.policy, names.ANNOTATION_PAUSE, "true" if pausing else None)
            said.append(f"canary {rolling.get('version')} {verb}d at {int(rolling.get('weight') or 0)}%")
        if on_runs:
            session.patch_spec(args.policy, {"suspend": pausing})
            said.append(f"runs {verb}d (spec.suspend={str(pausing).lower()})")
            print("note: spec.suspend is part of the spec: if a GitOps tool manages this policy, change it there "
                  "too, or it will be set back", file=sys.stderr)
        if not said:
            raise UserError(f"{args.policy}: nothing is held: no paused canary, runs not suspended")
        print(f"retrainpolicy/{args.policy}: {'; '.join(said)}")
        return 0
    return command


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    undo_parser = sub.add_parser("undo", parents=[common],
                                 help="serve an earlier version again (from status.history), through the canary")
    undo_parser.add_argument("policy")
    undo_parser.add_argument("--to-version", help="the version (default: the newest earlier one that has served)")
    undo_parser.add_argument("--immediate", action="store_true", help="no canary: all traffic at once")
    undo_parser.add_argument("--timeout", type=float, default=WAIT, help="seconds to wait for the operator's answer")
    undo_parser.set_defaults(func=undo_command)

    retry = sub.add_parser("retry", parents=[common], help="roll out the last aborted or rolled-back version again")
    retry.add_argument("policy")
    retry.add_argument("--timeout", type=float, default=WAIT, help="seconds to wait for the operator's answer")
    retry.set_defaults(func=retry_command)

    for verb, pausing, text in (
            ("pause", True, "hold the canary in progress, or (--runs, or with none in progress) start no new runs"),
            ("resume", False, "resume a held canary and runs (spec.suspend=false)")):
        command = sub.add_parser(verb, parents=[common], help=text)
        command.add_argument("policy")
        which = command.add_mutually_exclusive_group()
        which.add_argument("--runs", action="store_true", help="only runs (spec.suspend)")
        which.add_argument("--canary", action="store_true", help="only the canary rollout in progress")
        command.set_defaults(func=_pause_or_resume(pausing))
