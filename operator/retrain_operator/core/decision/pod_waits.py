"""A run's or drift check's pod that does not start: said once as a Warning Event, kept in status while it lasts."""

from __future__ import annotations

from typing import Any

from ..timeutil import to_rfc3339
from .round import Round

POD_NOT_STARTING = "PodNotStarting"


def note(r: Round, what: str, problem: tuple[str, str] | None, old: dict[str, Any] | None) -> dict[str, Any] | None:
    """The status record of `problem` (None once the pod starts); an Event when its reason is new."""
    if problem is None:
        return None
    reason, message = problem
    same = bool(old) and old.get("reason") == reason
    if not same:
        r.event("Warning", POD_NOT_STARTING, f"{what}: {reason}: {message}")
    return {"reason": reason, "message": message, "since": old.get("since") if same and old else to_rfc3339(r.now)}
