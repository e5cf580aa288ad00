"""The policy's Events are the notifications' outbox: what is owed rides on the Event itself.

An Event to notify is created with the label `retrain.mlops.dev/notify: pending` and an annotation
naming its notifiers and what it is about. Once every notifier was tried, the Event is relabelled
`sent` or `failed` (`dropped` when its policy or notifiers are gone), with a one-line result. An
operator that dies in between leaves the label `pending`: the next one lists those Events and
delivers them, so a notification is sent at least once, for as long as the API server keeps the
Event (`--event-ttl`, one hour by default).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from retrain_contract.api import names

from .select import Outgoing

LABEL = f"{names.GROUP}/notify"
ANNOTATION = f"{names.GROUP}/notify"
RESULT_ANNOTATION = f"{names.GROUP}/notify-result"
PENDING, SENT, FAILED, DROPPED = "pending", "sent", "failed", "dropped"
PENDING_SELECTOR = f"{LABEL}={PENDING}"
MAX_RESULT = 1024


@dataclass(frozen=True)
class Pending:
    """One Event still owed to its notifiers, as read back from the Event."""

    id: str  # the Event's name: derived from the decision, so receivers can de-duplicate on it
    namespace: str
    policy: str
    uid: str
    type: str
    reason: str
    message: str
    time: str
    outgoing: Outgoing


def mark(record: dict[str, Any], outgoing: Outgoing) -> dict[str, Any]:
    """The Event `record` with what it owes; a new dict (the record is not modified)."""
    meta = dict(record["metadata"])
    meta["labels"] = {**(meta.get("labels") or {}), LABEL: PENDING}
    about = {"to": list(outgoing.notifiers), "category": outgoing.category, "title": outgoing.title}
    if outgoing.version:
        about["version"] = outgoing.version
    if outgoing.check_id:
        about["checkId"] = outgoing.check_id
    meta["annotations"] = {**(meta.get("annotations") or {}), ANNOTATION: json.dumps(about, separators=(",", ":"))}
    return {**record, "metadata": meta}


def read(event: dict[str, Any]) -> Pending | None:
    """What a pending Event owes; None for one that is not (or not readable: never delivered, never a crash)."""
    meta = event.get("metadata") or {}
    if (meta.get("labels") or {}).get(LABEL) != PENDING:
        return None
    try:
        about = json.loads((meta.get("annotations") or {}).get(ANNOTATION) or "")
        notifiers = tuple(str(n) for n in about["to"])
        outgoing = Outgoing(str(about["category"]), str(about.get("title") or event.get("reason") or ""), notifiers,
                            about.get("version"), about.get("checkId"))
    except (ValueError, KeyError, TypeError):
        return None
    involved = event.get("involvedObject") or {}
    if involved.get("kind") != names.KIND or not involved.get("name"):
        return None
    return Pending(id=str(meta.get("name")), namespace=str(meta.get("namespace") or involved.get("namespace")),
                   policy=str(involved["name"]), uid=str(involved.get("uid") or ""), type=str(event.get("type")),
                   reason=str(event.get("reason")), message=str(event.get("message") or ""),
                   time=str(event.get("firstTimestamp") or event.get("eventTime") or ""), outgoing=outgoing)


def done(state: str, results: dict[str, str]) -> dict[str, Any]:
    """The merge patch that closes an Event: its label, and each notifier's result (never a URL)."""
    text = "; ".join(f"{name}: {result}" for name, result in results.items())
    if len(text) > MAX_RESULT:
        text = text[:MAX_RESULT - 3] + "..."
    return {"metadata": {"labels": {LABEL: state}, "annotations": {RESULT_ANNOTATION: text}}}
