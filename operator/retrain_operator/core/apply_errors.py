"""Writes the API server refused: what they were, how the status shows them, when to try again.

A decision is applied by the shell as writes (create a Job; create or patch the serving Services,
Deployments and the route). When the API server refuses one (422 Invalid, 403 Forbidden, a route
that does not exist, a Service someone else owns), the shell turns it into an `ApplyFailure` and
these functions decide the rest: the status keeps one record per step in `status.applyErrors`
(what failed, the server's own message, how many attempts, when the next one is due), the
`Stalled` condition and `status.message` say it, and the next attempt waits with exponential
backoff (kept in status, so a restarted operator waits too). A changed spec (a new generation)
ends the wait at once: the fix is tried right away.

Pure: no I/O, the time is an argument.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from . import conditions as cond
from .timeutil import from_rfc3339, to_rfc3339

JOB = "job"  # creating a training or drift check Job
SERVING = "serving"  # the model servers' Services and Deployments, and the route weights
STEPS = (JOB, SERVING)
FIELD = "applyErrors"

# Condition and Event reasons.
JOB_REJECTED = "JobRejected"
SERVING_REJECTED = "ServingObjectRejected"
ACCEPTED = "Accepted"

BACKOFF_BASE = 15.0  # seconds before the first retry
BACKOFF_CAP = 300.0  # the longest wait between attempts
MAX_MESSAGE = 2048  # of the server's message kept in status

Status = dict[str, Any]


@dataclass(frozen=True)
class ApplyFailure:
    """One refused write: which step, which object, the HTTP status and the server's message."""

    step: str  # JOB | SERVING
    kind: str  # Job, Service, Deployment, HTTPRoute, VirtualService
    name: str
    code: int | None  # HTTP status; None when the operator itself refused (e.g. a Service it does not own)
    reason: str  # the condition's and the Event's reason
    message: str  # the API server's message (its Status body's `message`), or the operator's
    api_reason: str = ""  # the Status body's `reason`: Invalid, Forbidden, NotFound, ...

    def text(self) -> str:
        code = f" ({self.code}{' ' + self.api_reason if self.api_reason else ''})" if self.code else ""
        return f"{self.kind} {self.name} refused{code}: {self.message}"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def not_owned(step: str, kind: str, name: str, message: str) -> ApplyFailure:
    """An object of our name that belongs to someone else: the operator refuses to adopt it."""
    return ApplyFailure(step=step, kind=kind, name=name, code=None, reason=f"{kind}NotOwned", message=_clip(message))


def from_api_error(step: str, kind: str, name: str, code: int | None, body: Any, http_reason: str = "") -> ApplyFailure:
    """The typed failure of an API error response: the Status body's `message` and `reason` when it has them."""
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", "replace")
    status: Any = None
    if isinstance(body, str) and body.strip():
        try:
            status = json.loads(body)
        except ValueError:
            status = None
    elif isinstance(body, dict):
        status = body
    message = api_reason = ""
    if isinstance(status, dict):
        message = str(status.get("message") or "")
        api_reason = str(status.get("reason") or "")
    if not message:
        message = (body.strip() if isinstance(body, str) and body.strip() else "") or http_reason or \
            f"HTTP {code}"
    reason = JOB_REJECTED if step == JOB else SERVING_REJECTED
    return ApplyFailure(step=step, kind=kind, name=name, code=code, reason=reason, message=_clip(message),
                        api_reason=api_reason)


def backoff(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failure in a row: 15, 30, 60, ... up to 300."""
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))


def records(status: Status) -> dict[str, dict[str, Any]]:
    return dict(status.get(FIELD) or {})


def record(status: Status, failure: ApplyFailure, now: dt.datetime, generation: int) -> Status:
    """A new status with `failure` recorded for its step and the next attempt scheduled."""
    result = copy.deepcopy(status)
    entries = records(result)
    before = entries.get(failure.step) or {}
    same = before.get("observedGeneration") == generation
    attempts = int(before.get("attempts") or 0) + 1 if same else 1
    entry = {
        "reason": failure.reason,
        "kind": failure.kind,
        "name": failure.name,
        "code": failure.code,
        "apiReason": failure.api_reason or None,
        "message": failure.message,
        "attempts": attempts,
        "firstFailedAt": before.get("firstFailedAt") if same and before.get("firstFailedAt") else to_rfc3339(now),
        "lastAttemptAt": to_rfc3339(now),
        "nextAttemptAt": to_rfc3339(now + dt.timedelta(seconds=backoff(attempts))),
        "observedGeneration": generation,
    }
    # No nulls: a merge patch would drop them, and the next status would differ from the stored one.
    entries[failure.step] = {key: value for key, value in entry.items() if value is not None}
    result[FIELD] = entries
    return result


def without(entries: dict[str, Any] | None, step: str) -> dict[str, Any] | None:
    """The records without `step` (its write went through); None when none are left."""
    kept = {name: entry for name, entry in (entries or {}).items() if name != step}
    return kept or None


def clear(status: Status, step: str) -> Status:
    """A new status without the record of `step` (its write went through)."""
    if step not in records(status):
        return status
    result = copy.deepcopy(status)
    result[FIELD] = without(records(result), step)
    return result


def current(entries: dict[str, Any] | None, generation: int) -> dict[str, Any] | None:
    """The records of this generation: after a spec change every write is tried afresh."""
    kept = {step: entry for step, entry in (entries or {}).items() if entry.get("observedGeneration") == generation}
    return kept or None


def waiting_entry(entries: dict[str, Any] | None, step: str, now: dt.datetime,
                  generation: int) -> dict[str, Any] | None:
    """The record of `step` while its next attempt is not due yet; None when the step may be tried now."""
    entry = (entries or {}).get(step)
    if not entry or entry.get("observedGeneration") != generation:
        return None
    due = from_rfc3339(entry.get("nextAttemptAt"))
    return entry if due is not None and due > now else None


def waiting(status: Status, step: str, now: dt.datetime, generation: int) -> dict[str, Any] | None:
    """The record of `step` while its next attempt is not due yet; None when the step may be tried now."""
    return waiting_entry(records(status), step, now, generation)


def seconds_to_next_attempt(status: Status, now: dt.datetime) -> float | None:
    """How long until the earliest recorded step may be tried again (at least 0), or None."""
    times = [from_rfc3339(entry.get("nextAttemptAt")) for entry in records(status).values()]
    due = [time for time in times if time is not None]
    return max(0.0, (min(due) - now).total_seconds()) if due else None


def describe(entry: dict[str, Any]) -> str:
    """One line for a record: what was refused, the server's message, the next attempt."""
    code = entry.get("code")
    shown = f" ({code}{' ' + entry['apiReason'] if entry.get('apiReason') else ''})" if code else ""
    return (f"{entry.get('kind')} {entry.get('name')} refused{shown}: {entry.get('message')}; "
            f"attempt {entry.get('attempts')}, next at {entry.get('nextAttemptAt')}")


def summarise(status: Status, now: dt.datetime, generation: int) -> Status:
    """Set the `Stalled` condition and append the refusals to `status.message`.

    Called once per reconcile, on the status the decision computed (whose message it made afresh).
    The condition appears with the first refusal and then stays, False once nothing is refused."""
    entries = records(status)
    result = copy.deepcopy(status)
    if not entries:
        if cond.get_condition(status.get("conditions"), cond.STALLED) is None:
            return status
        result["conditions"] = cond.set_condition(result.get("conditions"), cond.STALLED, False, ACCEPTED,
                                                  "the API server accepts the operator's writes", generation, now)
        return result
    ordered = [entries[step] for step in STEPS if step in entries]
    lines = [describe(entry) for entry in ordered]
    result["conditions"] = cond.set_condition(result.get("conditions"), cond.STALLED, True,
                                              str(ordered[0].get("reason")), "; ".join(lines), generation, now)
    base = str(result.get("message") or "")
    result["message"] = f"{base}; {lines[0]}" if base else lines[0]
    return result
