"""Starting a run: manual, scheduled and drift triggers and their guards (core/decision/trigger.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from retrain_contract.api import names
from retrain_operator.core.conditions import get_condition
from retrain_operator.core.observed import Observed

from .decisions import MANUAL, NIGHTLY, finished_ok, started, step, then
from .policies import policy, spec


def test_a_manual_trigger_starts_one_run():
    state = policy(annotations=MANUAL)
    plan = step(state)
    assert plan.create_job["metadata"]["name"] == "churn-v1"
    active = plan.status["activeRun"]
    assert active["version"] == "v1" and active["trigger"]["type"] == "manual"
    assert plan.status["runCounter"] == 1
    assert plan.status["lastManualTrigger"] == MANUAL[names.ANNOTATION_TRIGGER]
    assert plan.status["phase"] == "Training"
    assert get_condition(plan.status["conditions"], "Training")["status"] == "True"
    assert [e.reason for e in plan.events] == ["RunStarted"]

def test_the_same_annotation_value_never_starts_a_second_run():
    state, _ = started()
    after = then(state, finished_ok(state))
    plan = step(after)
    assert plan.create_job is None
    assert plan.status["phase"] == "Ready"

def test_a_schedule_waits_for_its_tick_then_runs_once():
    state = policy(spec(triggers=NIGHTLY), annotations={})
    before = step(state, now=dt.datetime(2026, 11, 21, 2, 59, 59, tzinfo=dt.UTC))
    assert before.create_job is None
    assert before.status["nextRunAt"] == "2026-11-21T03:00:00Z"
    assert 0.9 <= before.requeue_after <= 1.1
    at_tick = step(state, now=dt.datetime(2026, 11, 21, 3, 0, 1, tzinfo=dt.UTC))
    assert at_tick.create_job is not None
    assert at_tick.status["activeRun"]["trigger"]["type"] == "schedule"
    assert at_tick.status["lastScheduleTime"] == "2026-11-21T03:00:00Z"
    assert at_tick.status["nextRunAt"] == "2026-11-22T03:00:00Z"

def test_cooldown_defers_a_scheduled_run_but_not_a_manual_one():
    state, _ = started(triggers={**NIGHTLY, "cooldown": "6h"})
    state = then(state, finished_ok(state))  # finished 10:05 on the 24th (job finished_at)
    later = dt.datetime(2026, 11, 24, 16, 3, tzinfo=dt.UTC)  # 2 min before the cooldown (10:05 + 6h) ends
    state = dataclasses.replace(state, status={**state.status, "lastScheduleTime": "2026-11-23T03:00:00Z"})
    deferred = step(state, now=later)
    assert deferred.create_job is None
    assert get_condition(deferred.status["conditions"], "Training")["reason"] == "CooldownActive"
    assert 119 <= deferred.requeue_after <= 121
    assert step(state, now=later + dt.timedelta(minutes=3)).create_job is not None
    manual = step(dataclasses.replace(state, annotations={names.ANNOTATION_TRIGGER: "now"}), now=later)
    assert manual.create_job is not None

def test_min_new_samples_asks_for_a_count_and_skips_small_batches():
    state, _ = started(triggers={"minNewSamples": 1000})
    state = then(state, finished_ok(state))
    state = dataclasses.replace(state, annotations={names.ANNOTATION_TRIGGER: "second"})
    assert step(state).wants.new_samples is True
    skipped = step(state, Observed(new_samples=999))
    assert skipped.create_job is None
    assert skipped.status["lastManualTrigger"] == "second"
    assert [e.reason for e in skipped.events] == ["RunSkipped"]
    assert get_condition(skipped.status["conditions"], "Training")["reason"] == "NotEnoughNewSamples"
    assert step(state, Observed(new_samples=1000)).create_job is not None

def test_the_first_run_does_not_wait_for_new_samples():
    state = policy(spec(triggers={"minNewSamples": 10**6}), annotations=MANUAL)
    assert step(state).create_job is not None

def test_a_missing_secret_blocks_new_runs_with_a_clear_reason():
    state = policy(annotations=MANUAL)
    plan = step(state, Observed(dependency_problem=("SecretNotFound", "Secret 's3-creds' does not exist")))
    assert plan.create_job is None
    assert plan.status["phase"] == "Blocked"
    assert get_condition(plan.status["conditions"], "Ready")["reason"] == "SecretNotFound"
    assert "lastManualTrigger" not in plan.status  # the trigger waits for the Secret, it is not lost

def test_a_suspended_policy_starts_nothing():
    state = policy(spec(suspend=True), annotations=MANUAL)
    plan = step(state)
    assert plan.create_job is None and plan.status["phase"] == "Suspended"
