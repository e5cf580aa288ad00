"""A run: started, adopted after a crash, followed to its end (then core/decision/record.py says how it ended)."""

from __future__ import annotations

from .. import conditions as cond
from ..jobs import RunRequest, trainer_job
from ..observed import ACTIVE, FAILED, SUCCEEDED, ArtifactOutcome, JobView
from ..runs import Trigger, version_index, version_name
from ..status import ActiveRun
from ..timeutil import from_rfc3339, to_rfc3339
from . import pod_waits, record
from .outcomes import RunStarted
from .plan import Wants
from .round import ACTIVE_RUN_REQUEUE, Round

SIGNATURE_INVALID = "SignatureInvalid"  # a run whose manifest.json.sig is missing or does not verify


def started_message(version: str, trigger: Trigger, job: str) -> str:
    return f"{version} started by {trigger.type} ({trigger.reason}) as Job {job}"


def consume(r: Round, trigger: Trigger) -> None:
    """A trigger that started (or was judged not to need) a run is not taken again."""
    if trigger.type == "schedule":
        previous = from_rfc3339(r.status.last_schedule_time)
        tick = from_rfc3339(trigger.key)
        if tick and (previous is None or tick > previous):
            r.status.last_schedule_time = to_rfc3339(tick)
    elif trigger.type == "manual":
        r.status.last_manual_trigger = trigger.key
    elif trigger.type == "drift":
        r.status.last_drift_trigger = trigger.key
        r.status.pending_drift_trigger = None


def start(r: Round, trigger: Trigger) -> None:
    index = r.status.run_counter + 1
    version = version_name(index)
    current = r.status.current_model
    parent = current.version if current else None
    job = trainer_job(r.policy.ref, r.spec, RunRequest(version, parent, trigger, current.uri if current else None),
                      r.settings.default_image)
    r.create_job = job
    r.status.run_counter = index
    r.status.active_run = ActiveRun(version=version, job_name=job["metadata"]["name"], trigger=trigger.as_dict(),
                                    parent_version=parent, started_at=to_rfc3339(r.now))
    consume(r, trigger)
    # Whatever started it, the new model answers any drift seen so far.
    r.status.pending_drift_trigger = None
    r.look_again_in(ACTIVE_RUN_REQUEUE)
    r.event("Normal", "RunStarted", started_message(version, trigger, job["metadata"]["name"]))
    r.outcomes.append(RunStarted(trigger.type))


def _recorded_index(r: Round) -> int:
    last = r.status.last_run
    return version_index(last.version) if last and last.finished_at else 0


def adopt_unrecorded_jobs(r: Round) -> None:
    """Take over a Job the status does not know (the operator died right after creating it)."""
    recorded = _recorded_index(r)
    counter = r.status.run_counter
    for job in sorted(r.observed.jobs, key=lambda j: j.index):
        counter = max(counter, job.index)
        if job.index <= recorded or r.status.active_run:
            continue
        r.status.active_run = ActiveRun(version=job.version, job_name=job.name,
                                        trigger=job.trigger.as_dict() if job.trigger else None,
                                        parent_version=job.parent_version, started_at=job.started_at)
        if job.trigger:
            consume(r, job.trigger)
            # The Event the run's start would have posted, word for word: if that post was lost with
            # the crash it is posted now, and if not its name (derived from the same decision) exists.
            r.event("Normal", "RunStarted", started_message(job.version, job.trigger, job.name))
            r.outcomes.append(RunStarted(job.trigger.type))
    r.status.run_counter = counter


def _job(r: Round, version: str) -> JobView | None:
    return next((job for job in r.observed.jobs if job.version == version), None)


def _discard_unfinished(r: Round, version: str, outcome: ArtifactOutcome) -> None:
    """A failed run's partial uploads would stay in S3 forever: no manifest, so no version to prune later.

    A finished version (a manifest there, even a broken one) is evidence and stays."""
    if outcome.manifest is None and not outcome.foreign:
        r.discard.append(version)


def follow(r: Round) -> Wants | None:
    """The active run's Job and its artifacts: still running, or how it ended."""
    active = r.status.active_run
    if not active:
        return None
    version = active.version
    job = _job(r, version)
    if job is not None and job.state == ACTIVE:
        active.pod_problem = pod_waits.note(r, f"{version} (Job {job.name})", job.pod_problem, active.pod_problem)
        r.look_again_in(ACTIVE_RUN_REQUEUE)
        return None
    outcome = r.observed.outcomes.get(version)
    if outcome is None:
        return Wants(outcomes=(version,))
    if outcome.storage_error:
        # Cannot read the result now; the run is not lost: look again soon.
        r.idle_reason = ("AwaitingArtifacts", outcome.storage_error)
        r.look_again_in(ACTIVE_RUN_REQUEUE)
        return None
    if outcome.foreign:  # another incarnation's version under this name: never this run's result
        record.failure(r, active, job, "ForeignVersion", outcome.foreign)
        return None
    if outcome.manifest is not None and outcome.signature_problem and (job is None or job.state == SUCCEEDED):
        # Not authentic, whatever its checksums say: never recorded, never served.
        record.failure(r, active, job, SIGNATURE_INVALID,
                       f"{version} at {outcome.uri}: {outcome.signature_problem}; it is not recorded")
        return None
    if job is None:
        # Gone before it was recorded (deleted, or its TTL expired while we were down):
        # S3 still tells whether the run finished.
        if outcome.manifest is not None and not outcome.problems:
            record.success(r, active, None, outcome)
        else:
            record.failure(r, active, None, "JobNotFound",
                           f"Job {active.job_name} disappeared before its run was recorded")
            _discard_unfinished(r, version, outcome)
        return None
    if job.state == SUCCEEDED:
        if outcome.manifest is None:
            record.failure(r, active, job, "ArtifactMissing",
                           f"the Job succeeded but {outcome.uri}manifest.json is missing")
            _discard_unfinished(r, version, outcome)
        elif outcome.problems:
            record.failure(r, active, job, "ChecksumMismatch", "; ".join(outcome.problems))
        else:
            record.success(r, active, job, outcome)
    elif job.state == FAILED:
        error = outcome.error or {}
        reason = str(error.get("reason") or job.reason or "TrainingFailed")
        message = str(error.get("message") or job.message or "the trainer failed")
        record.failure(r, active, job, reason, message)
        _discard_unfinished(r, version, outcome)
    return None


def condition(r: Round) -> None:
    """The Training condition (this module's): True while a run's Job runs; otherwise why none does
    (idle, cooldown, a refused Job, too few new samples)."""
    active = r.status.active_run
    if active and active.pod_problem:  # running, as far as the Job says; its pod waits on something
        problem = active.pod_problem
        r.condition(cond.TRAINING, True, pod_waits.POD_NOT_STARTING,
                    f"{active.version}'s pod does not start: {problem.get('reason')}: {problem.get('message')}")
    elif active:
        trigger = active.trigger or {}
        r.condition(cond.TRAINING, True, "Running", f"{active.version} ({trigger.get('type')}) running as Job "
                                               f"{active.job_name}")
    else:
        r.condition(cond.TRAINING, False, *r.idle_reason)

