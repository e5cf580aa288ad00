"""Is the current version still what was recorded (S3, on a schedule), and is it served (its stable pods)?"""

from __future__ import annotations

import dataclasses
import datetime as dt

from .. import serving
from ..observed import ArtifactOutcome
from ..timeutil import from_rfc3339, to_rfc3339
from .plan import Wants
from .round import ACTIVE_RUN_REQUEUE, Round

MODEL_UNAVAILABLE = "ModelUnavailable"
ARTIFACTS_CHANGED = "ArtifactsChanged"


def due(r: Round) -> str | None:
    """The current model's URI when its scheduled re-verification is due (and S3 is usable)."""
    current = r.status.current_model
    interval = r.settings.verify_interval
    if not current or not current.uri or interval <= 0 or r.observed.dependency_problem:
        return None
    last = from_rfc3339(current.verified_at)
    when = last + dt.timedelta(seconds=interval) if last else r.now
    if when > r.now:
        r.look_again_at(when)
        return None
    return current.uri


def along_with(r: Round, wants: Wants) -> Wants:
    """Ask for a due re-verification together with other facts, so it never costs a round of its own."""
    uri = due(r)
    seen = r.observed.current_artifacts
    if uri and not wants.verify_uri and (seen is None or seen.uri != uri):
        return dataclasses.replace(wants, verify_uri=uri)
    return wants


def current(r: Round) -> Wants | None:
    """Compare the current version in S3 with what was recorded: the pinned manifest digest, the
    manifest's checksums and (with spec.signing) its signature. A difference is reported (Ready
    False, a Warning Event); the serving model is never replaced because of it: the servers that
    run keep the bytes they verified."""
    uri = due(r)
    if uri is None:
        return None
    seen = r.observed.current_artifacts
    if seen is None or seen.uri != uri:
        return Wants(verify_uri=uri)
    if seen.storage_error:  # unreadable is not changed: look again at the next reconcile
        r.look_again_in(ACTIVE_RUN_REQUEUE)
        return None
    model = r.status.current_model
    assert model is not None  # due() found it
    pinned = model.manifest_sha256
    problems = differences(seen, pinned)
    model.verified_at = to_rfc3339(r.now)
    if problems:
        message = f"{model.version} at {uri} changed since it was recorded: {'; '.join(problems[:3])}"
        if model.artifact_problem != message:
            r.event("Warning", ARTIFACTS_CHANGED, f"{message}; the running servers keep the model they verified, "
                                                  "restarted ones refuse to load it")
        model.artifact_problem = message
    else:
        if not pinned and seen.manifest_sha256:  # recorded before digests were pinned: pinned now
            model.manifest_sha256 = seen.manifest_sha256
        if model.artifact_problem:
            r.event("Normal", "ArtifactsVerified", f"{model.version} at {uri} matches what was recorded again")
        model.artifact_problem = None
    due(r)  # schedules the next look
    return None


def differences(seen: ArtifactOutcome, pinned: str | None) -> list[str]:
    """What S3 holds that differs from what was recorded: the manifest's digest, its files, its signature."""
    problems = list(seen.problems)
    if seen.manifest is None and not problems:
        problems.append("manifest.json is missing")
    if seen.manifest is not None and pinned and seen.manifest_sha256 != pinned:
        problems.insert(0, f"manifest.json has sha256 {seen.manifest_sha256}, not the pinned {pinned}")
    if seen.manifest is not None and seen.signature_problem:
        problems.append(seen.signature_problem)
    return problems


def unavailable(r: Round) -> str | None:
    """Why the current version is not served, once its stable servers have had no Ready pod for
    longer than the grace period (e.g. every restarted server refuses the artifacts)."""
    version = r.status.current_version
    if r.spec.serving is None or not version:
        return None
    found = serving.unavailable_since(r.observed.serving.stable, version)
    if found is None:
        return None
    since, detail = found
    grace = dt.timedelta(seconds=r.settings.serving_grace)
    if r.now - since < grace:
        r.look_again_at(since + grace)
        return None
    return (f"no stable model server of {version} has been Ready since {to_rfc3339(since)}"
            f"{': ' + detail if detail else ''}")
