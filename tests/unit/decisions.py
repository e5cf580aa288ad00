"""Driving the decision core the way the shell does (decide, gather what it wants, decide again),
shared by the test files of the sub-decisions (test_decision_*.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from retrain_contract.api import names
from retrain_operator.core.decide import Plan, PolicyState, Settings, decide
from retrain_operator.core.observed import ACTIVE, SUCCEEDED, ArtifactOutcome, JobView, Observed
from retrain_operator.core.runs import Trigger

from .policies import policy, spec

# The scheduled re-verification of the current model is off here (it would ask S3 whenever a test moves the
# clock on); test_decision_verify.py drives it.
SETTINGS = Settings(default_image="trainer:test", verify_interval=0)

NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)

MANUAL = {names.ANNOTATION_TRIGGER: "2026-11-24T09:59:00Z"}

MANIFEST = {"version": "v1", "createdAt": "2026-11-24T10:05:00Z", "parentVersion": None,
            "metrics": {"accuracy": 0.91, "f1Macro": 0.88}}

def job(version: str, state: str, trigger: Trigger | None = None, reason: str = "", message: str = "") -> JobView:
    return JobView(name=f"churn-{version}", version=version, index=int(version[1:]), state=state,
                   trigger=trigger, parent_version=None, started_at="2026-11-24T10:00:00Z",
                   finished_at=None if state == ACTIVE else "2026-11-24T10:05:00Z", reason=reason, message=message)

def step(state: PolicyState, observed: Observed | None = None, now: dt.datetime = NOW) -> Plan:
    return decide(state, observed or Observed(), now, SETTINGS)

def then(state: PolicyState, plan: Plan) -> PolicyState:
    """The policy as the next reconcile sees it, after the plan's status was written."""
    return dataclasses.replace(state, status=plan.status)

def started(annotations: dict[str, str] | None = None, **spec_sections) -> tuple[PolicyState, Plan]:
    state = policy(spec(**spec_sections), annotations=annotations or MANUAL)
    plan = step(state)
    assert plan.create_job is not None
    return then(state, plan), plan

def finished_ok(state: PolicyState, version: str = "v1", manifest: dict | None = None) -> Plan:
    observed = Observed(jobs=(job(version, SUCCEEDED),))
    assert step(state, observed).wants.outcomes == (version,)
    outcome = ArtifactOutcome(manifest=manifest or {**MANIFEST, "version": version},
                              uri=f"s3://models/retrain/ml/churn/{version}/")
    return step(state, dataclasses.replace(observed, outcomes={version: outcome}))

NIGHTLY = {"schedule": {"cron": "0 3 * * *", "timeZone": "UTC"}}

def evaluation(challenger: float, champion: float = 0.88) -> dict:
    return {"heldOut": {"f1Macro": challenger},
            "comparison": {"rows": 400, "challenger": {"f1Macro": challenger}, "champion": {"f1Macro": champion}},
            "olderData": {"rows": 400, "challenger": {"f1Macro": champion}, "championHeldOut": {"f1Macro": champion}}}

def serving_v1(**spec_sections) -> PolicyState:
    current = {"version": "v1", "uri": "s3://models/retrain/ml/churn/v1/"}
    return policy(spec(**spec_sections), status={
        "runCounter": 2, "currentModel": current, "history": [current],
        "lastRun": {"version": "v1", "phase": "Succeeded", "finishedAt": "2026-11-24T09:00:00Z"},
        "activeRun": {"version": "v2", "jobName": "churn-v2", "trigger": {"type": "schedule"},
                      "parentVersion": "v1", "startedAt": "2026-11-24T09:30:00Z"}})
