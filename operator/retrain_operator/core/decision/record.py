"""How a run ended: a version recorded (through its gates, current or the canary) or a failure; history and pruning."""

from __future__ import annotations

from .. import conditions as cond
from .. import gates, promotion, rollout
from ..observed import ArtifactOutcome, JobView
from ..status import ActiveRun, LastRun, ModelRecord, RolloutRecord
from ..timeutil import from_rfc3339, to_rfc3339
from .outcomes import RunFinished
from .round import Round


def _finish(r: Round, active: ActiveRun, job: JobView | None, phase: str, reason: str, message: str) -> LastRun:
    trigger = active.trigger or {}
    last = LastRun(version=active.version, phase=phase, trigger=trigger.get("type"),
                   trigger_reason=trigger.get("reason"), job_name=active.job_name, started_at=active.started_at,
                   finished_at=job.finished_at if job and job.finished_at else to_rfc3339(r.now),
                   reason=reason, message=message)
    r.status.last_run = last
    r.status.active_run = None
    started, finished = from_rfc3339(last.started_at), from_rfc3339(last.finished_at)
    r.outcomes.append(RunFinished(last.trigger or "unknown", phase.lower(),
                                  (finished - started).total_seconds() if started and finished else None))
    return last


def _keep_history(r: Round, model: ModelRecord) -> None:
    """The newest `historyLimit` versions; the serving one is never pruned, however many rejected
    challengers came after it. What falls out is deleted from S3."""
    history = [model, *(h for h in r.status.history if h.version != model.version)]
    limit = r.spec.history_limit
    current = r.status.current_version
    kept = history[:limit]
    if current and all(h.version != current for h in kept):
        kept = [*history[: limit - 1], *(h for h in history if h.version == current)]
    r.status.history = kept
    kept_versions = {h.version for h in kept}
    r.prune = [h.version for h in history if h.version and h.version not in kept_versions]


def success(r: Round, active: ActiveRun, job: JobView | None, outcome: ArtifactOutcome) -> None:
    manifest = outcome.manifest or {}
    version = active.version
    uri = outcome.uri or r.uri(version)
    previous = r.status.current_version
    verdict = gates.judge(r.spec.gates, manifest.get("evaluation") or {}, previous)
    if verdict.passed:
        last = _finish(r, active, job, "Succeeded", "TrainingSucceeded", f"{version} trained and verified")
    else:
        last = _finish(r, active, job, "Rejected", verdict.reason, f"{version} not promoted: {verdict.summary()}")
    last.gates = verdict.as_status()
    metrics = manifest.get("metrics") or {}
    model = ModelRecord(
        version=version, uri=uri, trained_at=manifest.get("createdAt") or last.finished_at, trigger=last.trigger,
        parent_version=manifest.get("parentVersion"), metrics=metrics,
        # Pinned: the servers refuse any other manifest, and the scheduled check compares with it.
        manifest_sha256=outcome.manifest_sha256,
        verified_at=to_rfc3339(r.now),  # the checksums were just verified
        passed_gates=verdict.passed or None,
    )
    rolling_out = verdict.passed and previous is not None and promotion.uses_canary(r.spec, r.status)
    if rolling_out:
        r.status.rollout = RolloutRecord.from_dict(rollout.start(
            version, uri, previous, r.now, promotion.commands(r.policy.annotations),
            manifest_sha256=outcome.manifest_sha256))
        last.message = f"{version} passed the gates; canary rollout started ({previous} keeps serving)"
        model.rollout = rollout.PROGRESSING
    elif verdict.passed:
        r.status.current_model = model
    else:
        model.rejected = verdict.reason
    _keep_history(r, model.copy())
    summary = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, int | float))
    trained = f"{version} trained ({last.trigger}){': ' + summary if summary else ''}"
    if rolling_out:
        r.event("Normal", "RunSucceeded", f"{trained}; it passed the gates")
        r.event("Normal", "RolloutStarted", f"{version}: canary rollout started; {previous} keeps serving")
    elif verdict.passed:
        r.event("Normal", "RunSucceeded", f"{trained}; now current{' (was ' + previous + ')' if previous else ''}")
    else:
        r.event("Warning", verdict.reason,
                f"{version} not promoted: {verdict.summary()}; {previous or 'no model'} keeps serving")


def failure(r: Round, active: ActiveRun, job: JobView | None, reason: str, message: str) -> None:
    _finish(r, active, job, "Failed", reason, message)
    current = r.status.current_version
    keeps = f"{current} keeps serving" if current else "no model yet"
    r.event("Warning", "RunFailed", f"{active.version} failed: {reason}: {message}; {keeps}")


def condition(r: Round) -> None:
    """The Trained condition (this module's): how the last run ended."""
    last = r.status.last_run
    if last is None:
        return
    if last.phase == "Succeeded":
        r.condition(cond.TRAINED, True, last.reason or "TrainingSucceeded", last.message or "")
    elif last.phase in ("Failed", "Rejected"):
        r.condition(cond.TRAINED, False, last.reason or "TrainingFailed", last.message or "")
