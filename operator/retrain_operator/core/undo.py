"""Undo: which earlier version a request names, and whether it may serve again.

The request is the annotation `retrain.mlops.dev/undo`, acted on once per value (status.lastUndo):
`previous` (the newest version before the current one that has served) or a version name, and
optional flags after `;`: `immediate` (no canary: it serves all traffic at once), `retry` (said by
`kubectl retrain retry`, for the version whose rollout was aborted or rolled back), and `at=<time>`
(the plugin's, so the same request can be made twice). Argo Rollouts' `undo` is the model; unlike
it, a version that never passed its gates cannot be undone to.
"""

from __future__ import annotations

from dataclasses import dataclass

from .status import ModelRecord, PolicyStatus

PREVIOUS = "previous"


@dataclass(frozen=True)
class UndoRequest:
    raw: str
    target: str  # a version name, or PREVIOUS
    immediate: bool = False
    retry: bool = False


def parse(value: str | None) -> UndoRequest | str | None:
    """The request in an annotation value; a string saying what is wrong with it; None when there is none."""
    if not value or not value.strip():
        return None
    target, *flags = [part.strip() for part in value.split(";")]
    known = {"immediate", "retry"}
    unknown = [flag for flag in flags if flag and flag not in known and not flag.startswith("at=")]
    if not target:
        return f"undo {value!r}: no version named (a version from status.history, or {PREVIOUS!r})"
    if unknown:
        return f"undo {value!r}: unknown option {unknown[0]!r} (known: immediate, retry, at=<time>)"
    return UndoRequest(raw=value, target=target, immediate="immediate" in flags, retry="retry" in flags)


def passed_gates(model: ModelRecord) -> bool:
    """Once good enough to serve: it served, it was the canary (only a model that passed its gates is),
    or nothing rejected it."""
    return bool(model.rolled_out_at or model.passed_gates or not model.rejected)


def target(request: UndoRequest, status: PolicyStatus) -> ModelRecord | str:
    """The history entry to serve again, or why there is none."""
    current = status.current_version
    kept = ", ".join(h.version for h in status.history) or "none"
    if request.target == PREVIOUS:
        found = next((h for h in status.history if h.version != current and h.rolled_out_at), None)
        if found is None:
            return f"no version before {current or 'the current one'} has served (history: {kept})"
    else:
        found = next((h for h in status.history if h.version == request.target), None)
        if found is None:
            return f"{request.target} is not in status.history (kept: {kept})"
    if found.version == current:
        return f"{found.version} is already the current version"
    if not passed_gates(found):
        return f"{found.version} never passed its gates ({found.rejected})"
    if not found.uri or not found.manifest_sha256:
        return f"{found.version} has no recorded location and manifest digest to verify it by"
    return found
