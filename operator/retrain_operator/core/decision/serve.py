"""Serving: the stable and canary Deployments, the canary rollout's next step, and what its end records."""

from __future__ import annotations

from .. import conditions as cond
from .. import promotion, rollout
from ..status import ModelRecord
from ..timeutil import to_rfc3339
from .outcomes import RolloutEnded
from .plan import Wants
from .round import Round

ROUTE_NOT_FOUND, ROUTE_FOUND = "RouteNotFound", "RouteFound"


def _rollout_finished(r: Round, phase: str) -> None:
    """A rollout that ended now: its version becomes current (promoted) or is marked rejected."""
    state = r.status.rollout
    assert state is not None  # it just ended
    version = state.version
    recorded = next((h for h in r.status.history if h.version == version), None)
    model = recorded.copy() if recorded else ModelRecord(
        version=version, uri=state.uri, manifest_sha256=state.manifest_sha256)
    model.rollout = None
    previous = r.status.current_version
    r.outcomes.append(RolloutEnded(phase))
    if phase == rollout.SUCCEEDED:
        model.rolled_out_at = to_rfc3339(r.now)
        r.status.current_model = model
        r.event("Normal", "ModelPromoted", f"{version} serves all traffic; now current"
                                           f"{' (was ' + previous + ')' if previous else ''}")
    else:
        model.rejected = state.reason or phase
    r.status.history = [model.copy() if h.version == version else h
                        for h in r.status.history]


def step(r: Round) -> Wants | None:
    result = promotion.step(r.spec, r.policy.ref, r.status, r.policy.annotations, r.observed, r.now,
                            r.settings.default_image)
    if result.wants_metrics:
        return Wants(metrics=result.wants_metrics)
    r.serving = result.plan
    for kind, reason, message in result.events:
        r.event(kind, reason, message)
    if result.requeue is not None:
        r.look_again_in(result.requeue)
    if result.finished:
        _rollout_finished(r, result.finished)
    _route(r)
    return None


def _route(r: Round) -> None:
    """A route that does not exist holds canary weights at 0 (core/promotion.py); it is said once, and
    again when it exists."""
    problem = route_problem(r)
    before = r.old.serving.route_problem if r.old.serving else None
    if problem and problem != before:
        r.event("Warning", ROUTE_NOT_FOUND, problem)
    elif before and not problem and r.status.serving is not None:
        r.event("Normal", ROUTE_FOUND, f"the {r.status.serving.router} route exists: canary weights are set on it")


def route_problem(r: Round) -> str | None:
    return r.status.serving.route_problem if r.status.serving else None


def condition(r: Round) -> None:
    """The Progressing condition (this module's) and the canary column of `kubectl get`."""
    rolling = r.status.rollout
    if rolling is None or r.spec.serving is None:
        return
    message = f"{rolling.version}: {rolling.message}"
    if promotion.rollout_active(r.status):
        r.condition(cond.PROGRESSING, True, rolling.reason or "CanaryProgressing", message)
        r.status.canary = f"{rolling.version} {rolling.weight}%"
    else:
        r.condition(cond.PROGRESSING, False, rolling.reason or rolling.phase, message)
        r.status.canary = None
