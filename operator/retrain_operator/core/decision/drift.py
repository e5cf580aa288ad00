"""Drift checks: when one is due, following its Job, and what its result asks for (a pending drift trigger)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import conditions as cond
from .. import promotion
from ..jobs import DriftRequest, drift_job
from ..observed import ACTIVE, DriftJobView
from ..runs import check_index
from ..status import ActiveDriftCheck, DriftRecord, PendingDrift
from ..timeutil import from_rfc3339, to_rfc3339
from . import pod_waits
from .outcomes import DriftChecked
from .plan import Wants
from .round import ACTIVE_RUN_REQUEUE, Round

MAX_FEATURE_SCORES = 50  # status stays small; the full table is in the drift report
# drift.json's `verdict` (the trainer's retrain_trainer.drift.sufficiency); a check with too few rows has none.
DRIFT, NO_DRIFT, INSUFFICIENT_DATA = "drift", "no-drift", "insufficient-data"


def feature_scores(features: dict[str, Any]) -> dict[str, float]:
    """The highest per-feature drift scores of a check, for status and the per-feature metric; a feature
    with too few values to judge has a score that is noise, so it has none here."""
    scored = [(name, float(item.get("score") or 0.0)) for name, item in features.items()
              if isinstance(item, dict) and not item.get("insufficient")]
    scored.sort(key=lambda pair: (-pair[1], pair[0]))
    return {name: round(score, 4) for name, score in scored[:MAX_FEATURE_SCORES]}


def verdict_of(result: dict[str, Any]) -> str:
    """The result's verdict; a result of a trainer image from before the field has only its booleans."""
    verdict = result.get("verdict")
    if verdict in (DRIFT, NO_DRIFT, INSUFFICIENT_DATA):
        return str(verdict)
    return DRIFT if result.get("drift") else NO_DRIFT


def insufficient_message(result: dict[str, Any]) -> str:
    """Why a check gave no verdict, with the row counts: the trainer's own words when it wrote them."""
    if result.get("verdictReason"):
        return str(result["verdictReason"])
    rows, minimum = result.get("rows"), result.get("minRows")
    short = list(result.get("insufficientFeatures") or [])
    if short and (rows is None or minimum is None or rows >= minimum):
        return f"{len(short)} feature(s) with fewer than {minimum} values ({', '.join(short[:5])}) in {rows} rows"
    return f"{rows} rows in the window, at least {minimum} needed"


def _job(r: Round, check_id: str) -> DriftJobView | None:
    return next((job for job in r.observed.drift_jobs if job.check_id == check_id), None)


def _adopt(r: Round) -> None:
    """Take over a drift Job the status does not know, and keep the counter past every Job seen."""
    last_id = r.status.drift.check_id if r.status.drift else None
    counter = max(r.status.drift_counter, check_index(last_id))
    for job in r.observed.drift_jobs:
        index = check_index(job.check_id)
        counter = max(counter, index)
        if not r.status.active_drift_check and index > check_index(last_id):
            r.status.active_drift_check = ActiveDriftCheck(check_id=job.check_id, job_name=job.name,
                                                           model_version=r.status.current_version)
    r.status.drift_counter = counter


def _newer_model(r: Round, checked: str | None) -> str | None:
    """A model newer than the one a drift check judged: in training, in a rollout, or current."""
    if r.status.active_run:
        return r.status.active_run.version
    if promotion.rollout_active(r.status):
        return r.status.rollout.version if r.status.rollout else None
    current = r.status.current_version
    return current if current and current != checked else None


def follow(r: Round) -> Wants | None:
    """Adopt an unknown drift Job, follow the active one, and record its result once."""
    _adopt(r)
    active = r.status.active_drift_check
    if not active:
        return None
    check_id = active.check_id
    job = _job(r, check_id)
    if job is not None and job.state == ACTIVE:
        active.pod_problem = pod_waits.note(r, f"drift check {check_id} (Job {job.name})", job.pod_problem,
                                            active.pod_problem)
        r.look_again_in(ACTIVE_RUN_REQUEUE)
        return None
    outcome = r.observed.drift_outcomes.get(check_id)
    if outcome is None:
        return Wants(drift_outcomes=(check_id,))
    if outcome.storage_error:
        r.look_again_in(ACTIVE_RUN_REQUEUE)
        return None
    r.status.active_drift_check = None
    record = DriftRecord(check_id=check_id, checked_at=to_rfc3339(r.now), model_version=active.model_version,
                         result_uri=outcome.uri)
    result = outcome.result
    if result is None:
        error = outcome.error or {}
        reason = str(error.get("reason") or (job.reason if job else "") or "DriftCheckFailed")
        message = str(error.get("message") or (job.message if job else "") or
                      f"drift check {check_id} left no result at {outcome.uri}")
        record.error = {"reason": reason, "message": message}
        r.status.drift = record
        r.event("Warning", "DriftCheckFailed", f"{check_id}: {reason}: {message}; no retraining")
        r.outcomes.append(DriftChecked("failed"))
        return None
    performance = result.get("performance") or {}
    verdict = verdict_of(result)
    record.verdict = verdict
    record.drift = None if verdict == INSUFFICIENT_DATA else verdict == DRIFT  # None: not known either way
    record.dataset_drift = bool(result.get("datasetDrift"))
    record.score = round(float(result.get("driftedShare") or 0.0), 4)
    record.drifted_features = list(result.get("driftedFeatures") or [])[:20]
    record.top_features = list(result.get("topFeatures") or [])[:5]
    record.feature_scores = feature_scores(result.get("features") or {})
    record.rows = result.get("rows")
    record.min_rows = result.get("minRows")
    record.insufficient_features = list(result.get("insufficientFeatures") or [])[:20] or None
    record.performance = {k: performance[k] for k in ("metric", "value", "heldOut", "drifted", "verdict", "message",
                                                      "dropInterval") if k in performance} or None
    record.report_uri = outcome.uri + "report.html"
    r.status.drift = record
    if verdict == INSUFFICIENT_DATA:  # neither drift (no run) nor no drift (says nothing of the data)
        record.message = insufficient_message(result)
        r.outcomes.append(DriftChecked("insufficient_data"))
        r.event("Normal", "InsufficientData", f"drift check {check_id}: {record.message}: no verdict, no retraining")
        return None
    r.outcomes.append(DriftChecked("drift" if record.drift else "no_drift"))
    if record.drift:
        features = ", ".join(record.drifted_features[:5]) or "-"
        why = [f"{len(record.drifted_features)} feature(s) drifted ({features})"] if record.dataset_drift else []
        if performance.get("drifted"):
            why.append("; ".join(performance.get("reasons") or ["performance dropped"]))
        reason = f"drift check {check_id}: " + "; ".join(why)
        newer = _newer_model(r, active.model_version)
        if newer:  # that model was trained on the drifted data too: it answers this drift
            r.event("Warning", "DriftDetected", f"{reason}; {newer} (trained since) already answers it")
        else:
            waiting = r.status.pending_drift_trigger
            # Drift found again while a run waits: the drift has waited since the first finding (the alert's clock).
            r.status.pending_drift_trigger = PendingDrift(check_id=check_id, reason=reason, at=to_rfc3339(r.now)) \
                if waiting is None else dataclasses.replace(waiting, check_id=check_id, reason=reason)
            r.event("Warning", "DriftDetected", reason)
    else:
        r.event("Normal", "NoDrift", f"drift check {check_id}: score {record.score}, no drift")
    return None


def maybe_start(r: Round) -> None:
    """A check when one is due and nothing else is under way (a new model answers drift anyway)."""
    drift = r.spec.triggers.drift
    current = r.status.current_model
    if not drift or not current or r.spec.suspend or r.observed.dependency_problem:
        return
    last = from_rfc3339(r.status.drift.checked_at if r.status.drift else None)
    due = last + drift.interval if last else r.now
    if due > r.now:
        r.look_again_at(due)
        return
    if r.job_waiting():
        return
    index = r.status.drift_counter + 1
    check_id = f"d{index}"
    job = drift_job(r.policy.ref, r.spec, DriftRequest(check_id, current.version, to_rfc3339(r.now), current.uri),
                    r.settings.default_image)
    r.create_job = job
    r.status.drift_counter = index
    r.status.active_drift_check = ActiveDriftCheck(check_id=check_id, job_name=job["metadata"]["name"],
                                                   started_at=to_rfc3339(r.now), model_version=current.version)
    r.look_again_in(ACTIVE_RUN_REQUEUE)


def condition(r: Round) -> None:
    """The DriftDetected condition (this module's); Unknown when the last check failed or had too few rows."""
    record = r.status.drift
    if not r.spec.triggers.drift or record is None:
        return
    if record.error:  # a failed check says nothing about drift
        r.condition(cond.DRIFT_DETECTED, None, "CheckFailed",
                    f"{record.check_id}: {record.error.get('reason')}: {record.error.get('message')}")
    elif record.verdict == INSUFFICIENT_DATA:  # nor does one on too few rows
        r.condition(cond.DRIFT_DETECTED, None, "InsufficientData",
                    f"{record.check_id}: {record.message or 'too few rows for a verdict'}")
    elif record.drift:
        pending = r.status.pending_drift_trigger
        r.condition(cond.DRIFT_DETECTED, True, "DriftDetected",
                    (pending.reason if pending else None) or f"{record.check_id} found drift")
    else:
        r.condition(cond.DRIFT_DETECTED, False, "NoDrift", f"{record.check_id}: score {record.score}")
