"""What the shell observed, reduced to the facts the decisions need.

Reading a Job's state is itself a decision (a Job is finished by its conditions, not by a
counter), so it lives here, pure, next to the types the decide step consumes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from retrain_contract.api import names
from retrain_contract.api.spec import PolicySpec

from .jobs import ANNOTATION_RUN, LABEL_DRIFT_CHECK
from .runs import Trigger, version_index

ACTIVE = "Active"
SUCCEEDED = "Succeeded"
FAILED = "Failed"


@dataclass(frozen=True)
class JobView:
    name: str
    version: str
    index: int
    state: str  # ACTIVE | SUCCEEDED | FAILED
    trigger: Trigger | None
    parent_version: str | None
    started_at: str | None
    finished_at: str | None
    reason: str = ""
    message: str = ""
    pod_problem: tuple[str, str] | None = None  # (reason, message): why its pod does not start (pod_problems.py)


@dataclass(frozen=True)
class DriftJobView:
    name: str
    check_id: str
    state: str  # ACTIVE | SUCCEEDED | FAILED
    reason: str = ""
    message: str = ""
    pod_problem: tuple[str, str] | None = None


def waits_for_pods(job: dict[str, Any]) -> bool:
    """An active Job none of whose pods is ready: the only kind whose pods are worth a look."""
    status = job.get("status") or {}
    return _state(job)[0] == ACTIVE and not status.get("ready") and not status.get("succeeded")


def _condition(job: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == type_ and condition.get("status") == "True":
            return condition
    return None


def _state(job: dict[str, Any]) -> tuple[str, str, str, str | None]:
    """(state, reason, message, finished at) from a Job's conditions, as the Job controller sets them."""
    status = job.get("status") or {}
    complete = _condition(job, "Complete")
    failed = _condition(job, "Failed")
    if complete:
        return SUCCEEDED, "", "", status.get("completionTime") or complete.get("lastTransitionTime")
    if failed:
        return (FAILED, failed.get("reason") or "JobFailed", failed.get("message") or "the Job failed",
                failed.get("lastTransitionTime"))
    return ACTIVE, "", "", None


def drift_job_view(job: dict[str, Any]) -> DriftJobView | None:
    meta = job.get("metadata") or {}
    check_id = (meta.get("labels") or {}).get(LABEL_DRIFT_CHECK)
    if not check_id:
        return None
    state, reason, message, _ = _state(job)
    return DriftJobView(name=meta.get("name", ""), check_id=check_id, state=state, reason=reason, message=message)


def job_view(job: dict[str, Any]) -> JobView | None:
    """The view of one of our Jobs, or None for a Job that is not a run of ours."""
    meta = job.get("metadata") or {}
    labels = meta.get("labels") or {}
    version = labels.get(names.LABEL_RUN)
    if not version:
        return None
    try:
        record = json.loads((meta.get("annotations") or {}).get(ANNOTATION_RUN) or "{}")
    except json.JSONDecodeError:
        record = {}
    status = job.get("status") or {}
    state, reason, message, finished = _state(job)
    return JobView(
        name=meta.get("name", ""),
        version=version,
        index=version_index(version),
        state=state,
        trigger=Trigger.from_dict(record.get("trigger")),
        parent_version=record.get("parentVersion"),
        started_at=status.get("startTime") or meta.get("creationTimestamp"),
        finished_at=finished,
        reason=reason,
        message=message,
    )


@dataclass(frozen=True)
class ArtifactOutcome:
    """What S3 says about a finished run's version."""

    manifest: dict[str, Any] | None
    problems: tuple[str, ...] = ()  # checksum/size mismatches of a present manifest
    error: dict[str, Any] | None = None  # the trainer's error.json, if any
    uri: str = ""
    storage_error: str | None = None  # S3 could not be read: decide later, do not fail the run
    # sha256 of manifest.json exactly as stored: pinned in status, it makes a later rewrite detectable.
    manifest_sha256: str | None = None
    # Why the manifest found is another policy incarnation's (it is then never recorded as this run's).
    foreign: str | None = None
    # With spec.signing: why manifest.json.sig does not prove the manifest authentic (missing, invalid).
    signature_problem: str | None = None


@dataclass(frozen=True)
class DriftOutcome:
    """What S3 says about a finished drift check."""

    result: dict[str, Any] | None  # drift.json
    error: dict[str, Any] | None = None  # error.json of a failed check
    uri: str = ""
    storage_error: str | None = None


@dataclass(frozen=True)
class ServingView:
    """The model server Deployments as the shell found them."""

    stable: dict[str, Any] | None = None
    canary: dict[str, Any] | None = None
    # The user's HTTPRoute / VirtualService named in spec.serving.router, when one is; `route_missing`
    # when the API server says it does not exist (or its kind is not installed).
    route: dict[str, Any] | None = None
    route_missing: bool = False


@dataclass(frozen=True)
class MetricsView:
    """One scrape of the stable and canary model servers, and the Prometheus query values."""

    stable: dict[str, Any]
    canary: dict[str, Any]
    queries: dict[str, float | None] = field(default_factory=dict)
    error: str | None = None  # the scrape failed: the window is inconclusive


@dataclass(frozen=True)
class Observed:
    spec_problems: tuple[str, ...] = ()
    spec: PolicySpec | None = None  # the spec, parsed once when it is valid (decide parses it if absent)
    # A dependency the policy names but that is not usable: (reason, message).
    dependency_problem: tuple[str, str] | None = None
    jobs: tuple[JobView, ...] = ()
    outcomes: dict[str, ArtifactOutcome] = field(default_factory=dict)
    new_samples: int | None = None
    drift_jobs: tuple[DriftJobView, ...] = ()
    drift_outcomes: dict[str, DriftOutcome] = field(default_factory=dict)
    serving: ServingView = field(default_factory=ServingView)
    metrics: MetricsView | None = None
    # The current model's artifacts re-read at its recorded URI (the scheduled re-verification).
    current_artifacts: ArtifactOutcome | None = None
    # spec.notify's notifiers whose Secrets give no webhook: (reason, message) each.
    notify_problems: tuple[tuple[str, str], ...] = ()
