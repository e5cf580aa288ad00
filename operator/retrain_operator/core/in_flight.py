"""Whether a policy's bucket is in use right now: a run, a drift check or a canary rollout under way.

Such a policy checks its bucket at every look instead of taking the shared answer (adapters/bucket_checks.py),
so an outage in the middle of a run shows as StorageUnreachable at once; an idle one waits for the resync.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .rollout import PAUSED, PROGRESSING, PROMOTING


def storage_in_use(status: Mapping[str, Any]) -> bool:
    rollout = status.get("rollout") or {}
    return bool(status.get("activeRun") or status.get("activeDriftCheck")
                or rollout.get("phase") in (PROGRESSING, PAUSED, PROMOTING))
