"""The one decision: given a policy, what was observed and the time, what to do now.

`decide` is pure. It either asks for more facts (`Plan.wants`: read these versions from S3,
count new samples) or returns the complete next status, the Job to create, the Events to
post and when to look again. Everything needed to resume lives in the status it returns,
so a restarted operator picks up exactly where the previous one stopped.

The sub-decisions run in a fixed order over one round's state (core/decision/): follow the
run and the drift check under way, then an undo request, then serving, then whether to start a run or a check, then
re-verify the current version, then the summary. Each may stop the round to ask for facts.
"""

from __future__ import annotations

import datetime as dt

from retrain_contract.api.spec import PolicySpec

from . import apply_errors, promotion
from .decision import drift, run, serve, summary, trigger, undo, verify
from .decision.drift import feature_scores
from .decision.inputs import PolicyState, Settings
from .decision.plan import MAX_REQUEUE, MIN_REQUEUE, Event, Plan, Wants
from .decision.round import Round
from .observed import Observed

__all__ = ["MAX_REQUEUE", "MIN_REQUEUE", "Event", "Plan", "PolicyState", "Settings", "Wants", "decide",
           "feature_scores"]


def _spec(policy: PolicyState, observed: Observed) -> tuple[PolicySpec | None, list[str]]:
    problems = list(observed.spec_problems)
    if problems:
        return None, problems
    if observed.spec is not None:
        return observed.spec, []
    try:
        return PolicySpec.from_dict(policy.spec), []
    except (KeyError, TypeError, ValueError) as error:
        return None, [f"spec cannot be read: {error!r}"]


def _plan(r: Round, wants: Wants | None = None) -> Plan:
    if wants:  # nothing is written until the facts are in: the same round runs again with them
        return Plan(status=r.policy.status or {}, wants=verify.along_with(r, wants), requeue_after=MIN_REQUEUE)
    return Plan(status=r.status.to_dict(), create_job=r.create_job, events=tuple(r.events),
                requeue_after=max(MIN_REQUEUE, min(r.requeue)), prune_versions=tuple(r.prune),
                discard_partial=tuple(r.discard), serving=r.serving, outcomes=tuple(r.outcomes))


def _round(policy: PolicyState, observed: Observed, now: dt.datetime, settings: Settings,
           spec: PolicySpec | None) -> Round:
    old = policy.typed_status
    status = old.copy()
    # Refused writes of an older spec are forgotten: a changed spec is tried at once.
    status.apply_errors = apply_errors.current(status.apply_errors, policy.generation)
    status.observed_generation = policy.generation
    return Round(policy=policy, observed=observed, now=now, settings=settings, spec=spec,  # type: ignore[arg-type]
                 old=old, status=status)


def decide(policy: PolicyState, observed: Observed, now: dt.datetime, settings: Settings) -> Plan:
    spec, problems = _spec(policy, observed)
    r = _round(policy, observed, now, settings, spec)
    if spec is None:
        summary.invalid(r, problems)
        return _plan(r)
    run.adopt_unrecorded_jobs(r)
    wants = run.follow(r) or drift.follow(r) or undo.step(r) or serve.step(r)
    if wants:
        return _plan(r, wants)
    if promotion.rollout_active(r.status):
        version = r.status.rollout.version if r.status.rollout else None
        r.idle_reason = ("RolloutInProgress", f"new runs wait until the rollout of {version} ends")
    elif not r.status.active_run and not r.status.active_drift_check:
        wants = trigger.maybe_start_run(r)
        if wants:
            return _plan(r, wants)
    # No check while a new model is on its way: the current one is about to be replaced anyway.
    if not r.status.active_run and not r.status.active_drift_check and r.create_job is None \
            and not promotion.rollout_active(r.status):
        drift.maybe_start(r)
    if r.create_job is None and not r.job_waiting():
        # Nothing wants a Job now and the backoff is over: the old refusal no longer stalls anything.
        r.status.apply_errors = apply_errors.without(r.status.apply_errors, apply_errors.JOB)
    wants = verify.current(r)
    if wants:
        return _plan(r, wants)
    summary.summarise(r)
    return _plan(r)
