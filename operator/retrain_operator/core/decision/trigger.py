"""Whether to start a run now: the trigger (manual annotation, drift, cron tick) and its guards
(suspend, a dependency missing, a refused Job's backoff, cooldown, minNewSamples)."""

from __future__ import annotations

import datetime as dt

from retrain_contract.api import names

from .. import apply_errors
from ..runs import Trigger
from ..schedule import due_tick, next_tick
from ..timeutil import from_rfc3339, to_rfc3339
from . import run
from .outcomes import RunSkipped
from .plan import Wants
from .round import Round

SAMPLES_RECOUNT = dt.timedelta(minutes=5)  # how often a drift run that waits for minNewSamples counts again


def pending(r: Round) -> Trigger | None:
    """The trigger waiting to start a run, first come first: manual, then drift, then the schedule."""
    value = (r.policy.annotations or {}).get(names.ANNOTATION_TRIGGER)
    if value and value != r.status.last_manual_trigger:
        return Trigger("manual", f"annotation {names.ANNOTATION_TRIGGER}={value}", to_rfc3339(r.now), value)
    drift = r.status.pending_drift_trigger
    if drift:
        return Trigger("drift", drift.reason or "drift detected", drift.at, drift.check_id)
    schedule = r.spec.triggers.schedule
    if schedule:
        tick = due_tick(schedule, from_rfc3339(r.status.last_schedule_time), r.policy.created, r.now)
        if tick:
            at = to_rfc3339(tick)
            return Trigger("schedule", f"cron '{schedule.cron}' ({schedule.time_zone}) at {at}", at, at)
    return None


def cooldown_until(r: Round) -> dt.datetime | None:
    if not r.spec.triggers.cooldown:
        return None
    finished = from_rfc3339(r.status.last_run.finished_at if r.status.last_run else None)
    return finished + r.spec.triggers.cooldown if finished else None


def maybe_start_run(r: Round) -> Wants | None:
    if r.spec.suspend:
        r.idle_reason = ("Suspended", "spec.suspend is true: no new runs")
        return None
    if r.observed.dependency_problem:
        return None
    trigger = pending(r)
    if trigger is None:
        return None
    refused = r.job_waiting()
    if refused:  # the trigger stays pending: the run starts once the API server takes the Job
        r.idle_reason = (str(refused.get("reason")), f"{trigger.type} run waits: {apply_errors.describe(refused)}")
        return None
    until = cooldown_until(r)
    bypass = trigger.type == "manual" and r.spec.triggers.manual_bypasses_cooldown
    if until and until > r.now and not bypass:
        r.idle_reason = ("CooldownActive", f"{trigger.type} run waits for the cooldown until {to_rfc3339(until)}")
        r.look_again_at(until)
        return None
    current = r.status.current_model
    minimum = r.spec.triggers.min_new_samples
    if minimum > 0 and current:
        if trigger.type == "drift":
            return _drift_waits_for_samples(r, trigger, minimum)
        if r.observed.new_samples is None:
            return Wants(new_samples=True)
        if r.observed.new_samples < minimum:
            run.consume(r, trigger)
            message = (f"{trigger.type} run skipped: {r.observed.new_samples} new samples since "
                       f"{current.version}, minNewSamples is {minimum}")
            r.idle_reason = ("NotEnoughNewSamples", message)
            r.event("Normal", "RunSkipped", message)
            r.outcomes.append(RunSkipped(trigger.type))
            return None
    run.start(r, trigger)
    return None


def _drift_waits_for_samples(r: Round, trigger: Trigger, minimum: int) -> Wants | None:
    """Drift is not answered by skipping it: its run waits until minNewSamples rows have come, and the
    pending trigger (with the RetrainDriftNotRetrained alert's clock) stays. The rows are counted again
    every SAMPLES_RECOUNT, not on every reconcile: a count lists the incoming prefix."""
    pending = r.status.pending_drift_trigger
    assert pending is not None and r.status.current_model is not None
    version = r.status.current_model.version
    counted = from_rfc3339(pending.counted_at)
    if r.observed.new_samples is None:
        if counted is not None and pending.new_samples is not None and counted + SAMPLES_RECOUNT > r.now:
            r.idle_reason = ("NotEnoughNewSamples", _waits_message(pending.new_samples, version, minimum))
            r.look_again_at(counted + SAMPLES_RECOUNT)
            return None
        return Wants(new_samples=True)
    if r.observed.new_samples >= minimum:
        run.start(r, trigger)
        return None
    message = _waits_message(r.observed.new_samples, version, minimum)
    if pending.counted_at is None:  # said once; the condition carries the count from then on
        r.event("Normal", "RunWaitsForSamples", f"{trigger.reason}: {message}")
    pending.new_samples = r.observed.new_samples
    pending.counted_at = to_rfc3339(r.now)
    r.idle_reason = ("NotEnoughNewSamples", message)
    r.look_again_in(SAMPLES_RECOUNT.total_seconds())
    return None


def _waits_message(samples: int, version: str, minimum: int) -> str:
    return (f"drift run waits for new samples: {samples} since {version}, minNewSamples is {minimum} "
            f"(counted again every {int(SAMPLES_RECOUNT.total_seconds() // 60)} min)")


def next_run(r: Round) -> None:
    """status.nextRunAt, and a look at that time."""
    schedule = r.spec.triggers.schedule
    if schedule and not r.spec.suspend:
        floor = max(filter(None, [from_rfc3339(r.status.last_schedule_time), r.policy.created]))
        upcoming = next_tick(schedule, max(floor, r.now))
        r.status.next_run_at = to_rfc3339(upcoming)
        r.look_again_at(upcoming)
    else:
        r.status.next_run_at = None
