"""The Events of one decision, as core/v1 Event objects with names derived from the decision.

Events are posted before the status that goes with them is written, so a crash between the two
can lose neither: the next reconcile starts from the same status, makes the same decision and
derives the same names, and the API server's 409 for a name that exists keeps each Event single.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from retrain_contract.api import names

from ..api import kubenames
from .timeutil import to_rfc3339

MAX_MESSAGE = 1024  # what `kubectl describe` shows well; the API server itself does not cut


def decision_key(uid: str, status_before: dict[str, Any]) -> str:
    """What identifies one decision: the policy incarnation and the status it started from."""
    canonical = json.dumps(status_before, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{uid}\n{canonical}".encode()).hexdigest()


def event_name(policy: str, key: str, type_: str, reason: str, message: str) -> str:
    """`<policy>.<hash>`: a DNS subdomain of at most 253 characters, one per decision and Event."""
    digest = hashlib.sha256(f"{key}\n{type_}\n{reason}\n{message}".encode()).hexdigest()[:16]
    return kubenames.bounded(policy, f".{digest}", kubenames.EVENT_NAME)


def event_object(policy: dict[str, Any], key: str, type_: str, reason: str, message: str, now: dt.datetime,
                 instance: str) -> dict[str, Any]:
    meta = policy.get("metadata") or {}
    at = to_rfc3339(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name(meta["name"], key, type_, reason, message), "namespace": meta["namespace"]},
        "involvedObject": {"apiVersion": names.API_VERSION, "kind": names.KIND, "name": meta["name"],
                           "namespace": meta["namespace"], "uid": meta.get("uid"),
                           "resourceVersion": meta.get("resourceVersion")},
        "type": type_,
        "reason": reason,
        "message": message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE - 3] + "...",
        "source": {"component": names.MANAGED_BY},
        "reportingComponent": names.MANAGED_BY,
        "reportingInstance": instance,
        "firstTimestamp": at,
        "lastTimestamp": at,
        "count": 1,
    }
