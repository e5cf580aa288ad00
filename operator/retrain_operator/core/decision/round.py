"""One decision's working state, shared by the sub-decisions in the order core/decide.py runs them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from retrain_contract.api.spec import PolicySpec
from retrain_contract.artifacts.layout import version_prefix

from .. import apply_errors
from .. import conditions as cond
from ..observed import Observed
from ..promotion import ServingPlan
from ..status import PolicyStatus
from ..timeutil import from_rfc3339
from .inputs import PolicyState, Settings
from .outcomes import Outcome
from .plan import MAX_REQUEUE, Event

ACTIVE_RUN_REQUEUE = 15.0


@dataclass
class Round:
    policy: PolicyState
    observed: Observed
    now: dt.datetime
    settings: Settings
    spec: PolicySpec
    old: PolicyStatus  # as read: what the Events compare with ("post only when it changed")
    status: PolicyStatus  # what this decision writes
    events: list[Event] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)  # what the metrics count
    requeue: list[float] = field(default_factory=lambda: [MAX_REQUEUE])
    create_job: dict[str, Any] | None = None
    prune: list[str] = field(default_factory=list)
    discard: list[str] = field(default_factory=list)
    idle_reason: tuple[str, str] = ("Idle", "no run in progress")  # the Training condition when no run is active
    serving: ServingPlan | None = None

    def condition(self, type_: str, ok: bool | None, reason: str, message: str) -> None:
        self.status.conditions = cond.set_condition(self.status.conditions, type_, ok, reason, message,
                                                    self.policy.generation, self.now)

    def old_condition(self, type_: str) -> dict[str, Any] | None:
        return cond.get_condition(self.old.conditions, type_)

    def event(self, type_: str, reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))

    def look_again_in(self, seconds: float) -> None:
        self.requeue.append(seconds)

    def look_again_at(self, when: dt.datetime) -> None:
        self.requeue.append((when - self.now).total_seconds())

    def job_waiting(self) -> dict[str, Any] | None:
        """The refused Job creation whose backoff has not run out yet (then no Job is planned)."""
        entry = apply_errors.waiting_entry(self.status.apply_errors, apply_errors.JOB, self.now,
                                           self.policy.generation)
        if entry:
            due = from_rfc3339(entry.get("nextAttemptAt"))
            if due is not None:
                self.look_again_at(due)
        return entry

    def uri(self, version: str) -> str:
        key = version_prefix(self.spec.storage.prefix, self.policy.namespace, self.policy.name, version,
                             uid=self.policy.uid)
        return f"s3://{self.spec.storage.bucket}/{key}"
