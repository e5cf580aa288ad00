"""Undo and retry (core/undo.py): an earlier version serves again, through the canary steps or at once,
once S3 still holds exactly what was recorded for it."""

from __future__ import annotations

from retrain_contract.api import names

from .. import promotion, rollout, undo
from ..status import ModelRecord, RolloutRecord, UndoRecord
from ..timeutil import to_rfc3339
from . import verify
from .plan import Wants
from .round import ACTIVE_RUN_REQUEUE, Round

STARTED, APPLIED, REFUSED = "Started", "Applied", "Refused"


def _done(r: Round, value: str, version: str | None, result: str, message: str, retry: bool = False) -> None:
    r.status.last_undo = UndoRecord(request=value, at=to_rfc3339(r.now), version=version, result=result,
                                    message=message)
    r.event("Warning" if result == REFUSED else "Normal", f"{'Retry' if retry else 'Undo'}{result}", message)


def step(r: Round) -> Wants | None:
    """Act on a new undo annotation; ask for the target's artifacts first."""
    value = (r.policy.annotations or {}).get(names.ANNOTATION_UNDO)
    if not value or (r.status.last_undo is not None and r.status.last_undo.request == value):
        return None
    request = undo.parse(value)
    if request is None:
        return None
    if isinstance(request, str):
        _done(r, value, None, REFUSED, request)
        return None
    if promotion.rollout_active(r.status):
        version = r.status.rollout.version if r.status.rollout else "?"
        _done(r, value, None, REFUSED, f"the rollout of {version} is in progress: abort it first "
                                       "(kubectl retrain abort), then ask again", request.retry)
        return None
    found = undo.target(request, r.status)
    if isinstance(found, str):
        _done(r, value, None, REFUSED, found, request.retry)
        return None
    seen = r.observed.current_artifacts
    if seen is None or seen.uri != found.uri:
        return Wants(verify_uri=found.uri)
    if seen.storage_error:  # unreadable is not changed: the request waits (the storage condition says why)
        r.look_again_in(ACTIVE_RUN_REQUEUE)
        return None
    problems = verify.differences(seen, found.manifest_sha256)
    if problems:
        _done(r, value, found.version, REFUSED, f"{found.version} at {found.uri} changed since it was recorded: "
                                                f"{'; '.join(problems[:3])}", request.retry)
        return None
    _bring_back(r, value, found, request)
    return None


def _bring_back(r: Round, value: str, found: ModelRecord, request: undo.UndoRequest) -> None:
    previous = r.status.current_version
    model = found.copy()
    model.rejected, model.artifact_problem, model.verified_at = None, None, to_rfc3339(r.now)
    what = "retry of" if request.retry else "undo to"
    if request.immediate or not promotion.uses_canary(r.spec, r.status):
        model.rollout, model.rolled_out_at = None, to_rfc3339(r.now)
        r.status.current_model = model
        message = (f"{what} {model.version}: it serves all traffic now"
                   f"{' (was ' + previous + ')' if previous else ''}")
        result = APPLIED
    else:
        assert previous is not None  # uses_canary: a model serves
        r.status.rollout = RolloutRecord.from_dict(rollout.start(
            model.version, model.uri or "", previous, r.now, promotion.commands(r.policy.annotations),
            manifest_sha256=model.manifest_sha256))
        model.rollout = rollout.PROGRESSING
        message = f"{what} {model.version}: canary rollout started; {previous} keeps serving until it is promoted"
        result = STARTED
    r.status.history = [model.copy() if h.version == model.version else h for h in r.status.history]
    _done(r, value, model.version, result, message, request.retry)
