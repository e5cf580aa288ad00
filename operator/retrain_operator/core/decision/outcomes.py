"""What a decision did, as typed facts: what the metrics count (never parsed back out of Event reasons)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunStarted:
    trigger: str  # manual | schedule | drift


@dataclass(frozen=True)
class RunFinished:
    trigger: str
    outcome: str  # succeeded | failed | rejected
    seconds: float | None = None  # from the run's start to its end, when both are known


@dataclass(frozen=True)
class RunSkipped:
    trigger: str  # a trigger the guards consumed without a run (minNewSamples)


@dataclass(frozen=True)
class DriftChecked:
    result: str  # drift | no_drift | insufficient_data | failed


@dataclass(frozen=True)
class RolloutEnded:
    outcome: str  # Succeeded | RolledBack | Aborted


Outcome = RunStarted | RunFinished | RunSkipped | DriftChecked | RolloutEnded
