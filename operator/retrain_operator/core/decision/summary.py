"""What `kubectl get` and `describe` show: each sub-decision's condition, then `Ready` and the
phase computed from them."""

from __future__ import annotations

from .. import conditions as cond
from .. import promotion
from . import drift, notifiers, record, run, serve, trigger, verify
from .round import Round

PHASE_PENDING = "Pending"
PHASE_TRAINING = "Training"
PHASE_READY = "Ready"
PHASE_DEGRADED = "Degraded"
PHASE_INVALID = "Invalid"
PHASE_BLOCKED = "Blocked"
PHASE_SUSPENDED = "Suspended"
PHASE_ROLLING_OUT = "RollingOut"
INVALID_REQUEUE = 120.0


def invalid(r: Round, problems: list[str]) -> None:
    """A spec the operator cannot act on: Ready False InvalidSpec, nothing else is decided."""
    message = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
    before = r.old_condition(cond.READY)
    if not before or before.get("reason") != "InvalidSpec" or before.get("message") != message:
        r.event("Warning", "InvalidSpec", message)
    r.condition(cond.READY, False, "InvalidSpec", message)
    r.status.phase = PHASE_INVALID
    r.status.message = message
    r.look_again_in(INVALID_REQUEUE)


def _ready(r: Round, unavailable: str | None, changed: str | None) -> None:
    """Ready: a dependency missing (Blocked) beats the model's state; otherwise the current version
    is served and unchanged, or why not."""
    current = r.status.current_model
    dependency = r.observed.dependency_problem
    before = r.old_condition(cond.READY)
    if dependency:
        reason, message = dependency
        if not before or before.get("reason") != reason or before.get("message") != message:
            r.event("Warning", reason, message)
        r.condition(cond.READY, False, reason, message)
    elif current and (unavailable or changed):
        reason = verify.MODEL_UNAVAILABLE if unavailable else verify.ARTIFACTS_CHANGED
        if unavailable and (not before or before.get("reason") != verify.MODEL_UNAVAILABLE):
            r.event("Warning", verify.MODEL_UNAVAILABLE, unavailable)
        r.condition(cond.READY, False, reason, "; ".join(filter(None, [unavailable, changed])))
    elif current:
        if before and before.get("reason") == verify.MODEL_UNAVAILABLE:
            r.event("Normal", "ModelServed", f"stable model servers of {current.version} are Ready again")
        r.condition(cond.READY, True, "ModelAvailable", f"{current.version} is current ({current.uri})")
    else:
        r.condition(cond.READY, False, "NoModelYet", "no version has been trained yet")


def _phase(r: Round, unavailable: str | None, changed: str | None) -> tuple[str, str]:
    status, current, last = r.status, r.status.current_model, r.status.last_run
    dependency = r.observed.dependency_problem
    rolling = status.rollout
    if dependency:
        return PHASE_BLOCKED, dependency[1]
    if current and (unavailable or changed):
        return PHASE_DEGRADED, "; ".join(filter(None, [unavailable, changed]))
    if rolling is not None and promotion.rollout_active(status):
        return PHASE_ROLLING_OUT, f"canary {rolling.version} {rolling.phase}: {rolling.message}"
    if status.active_run:
        return PHASE_TRAINING, f"training {status.active_run.version}"
    if r.spec.suspend:
        return PHASE_SUSPENDED, "suspended"
    if last and last.phase == "Failed":
        keeps = f"; {current.version} keeps serving" if current else ""
        return PHASE_DEGRADED, f"{last.version} failed: {last.reason}{keeps}"
    if current:
        message = f"{current.version} is current"
        if last and last.phase == "Rejected":
            message += f"; {last.version} was not promoted ({last.reason})"
        return PHASE_READY, message
    if last and last.phase == "Rejected":
        return PHASE_PENDING, f"{last.version} was not promoted: {last.reason}"
    return PHASE_PENDING, "waiting for the first run"


def summarise(r: Round) -> None:
    unavailable = verify.unavailable(r)
    changed = r.status.current_model.artifact_problem if r.status.current_model else None
    trigger.next_run(r)
    run.condition(r)
    drift.condition(r)
    record.condition(r)
    _ready(r, unavailable, changed)
    serve.condition(r)
    notifiers.condition(r)
    r.status.phase, r.status.message = _phase(r, unavailable, changed)
    if problem := serve.route_problem(r):
        r.status.message = f"{r.status.message}; {problem}"
