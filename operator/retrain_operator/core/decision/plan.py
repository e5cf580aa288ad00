"""What a decision returns: more facts it needs, or the next status and what to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..promotion import ServingPlan
from .outcomes import Outcome

MIN_REQUEUE = 1.0
MAX_REQUEUE = 300.0


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Wants:
    """Facts the decision needs before it can be made."""

    outcomes: tuple[str, ...] = ()  # versions whose artifacts must be read from S3
    new_samples: bool = False  # count incoming rows not yet used by the current model
    drift_outcomes: tuple[str, ...] = ()  # drift checks whose results must be read from S3
    # Scrape the model servers of these (stable, canary) versions and run the rollout's Prometheus queries:
    # the rollout may have started in this very decision, so the versions come from it, not from status.
    metrics: tuple[str, str] | None = None
    verify_uri: str | None = None  # re-read the current model's manifest and files where status records them

    def __bool__(self) -> bool:
        return (bool(self.outcomes) or self.new_samples or bool(self.drift_outcomes) or self.metrics is not None
                or bool(self.verify_uri))


@dataclass(frozen=True)
class Plan:
    status: dict[str, Any]
    create_job: dict[str, Any] | None = None
    events: tuple[Event, ...] = ()
    requeue_after: float = MAX_REQUEUE
    prune_versions: tuple[str, ...] = ()
    discard_partial: tuple[str, ...] = ()  # failed runs: their unfinished uploads go (error.json stays)
    wants: Wants = field(default_factory=Wants)
    serving: ServingPlan | None = None
    outcomes: tuple[Outcome, ...] = ()
