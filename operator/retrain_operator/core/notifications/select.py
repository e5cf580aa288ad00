"""Which Events are notified, to whom: a decision's Events, each mapped to a category by its reason.

The categories are what users subscribe to (`spec.notify[].categories`). Events that only trace progress
(each canary weight, a drift check that found nothing) are not sent: a webhook should say what a
person may want to know about, not narrate. A Warning of a reason listed nowhere (a Secret or bucket
missing, a write the API server refused) is a `problem`. The notifiers' own Events (a notifier's
Secret missing, a notification that could not be delivered) are never sent: they concern the
webhook that would carry them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from retrain_contract.api import names
from retrain_contract.api.spec import NotifierSpec

from ..decision.plan import Event

RUN, GATE, DRIFT, ROLLOUT, UNDO, SERVING, PROBLEM = names.NOTIFY_CATEGORIES
NOTIFICATION_FAILED = "NotificationFailed"
NOTIFIER_PREFIX = "Notifier"  # NotifierSecretNotFound, ...: the NotifiersReady condition's reasons

# reason -> (category, a few words for a chat line)
REASONS: dict[str, tuple[str, str]] = {
    "RunStarted": (RUN, "run started"),
    "RunSucceeded": (RUN, "run succeeded"),
    "RunFailed": (RUN, "run failed"),
    "RunSkipped": (RUN, "run skipped"),
    "GateFailed": (GATE, "rejected by the gates"),
    "GateInconclusive": (GATE, "not promoted: gates inconclusive"),
    "DriftDetected": (DRIFT, "drift detected"),
    "DriftCheckFailed": (DRIFT, "drift check failed"),
    "InsufficientData": (DRIFT, "drift check without a verdict"),
    "RolloutStarted": (ROLLOUT, "canary rollout started"),
    "ModelPromoted": (ROLLOUT, "promoted"),
    "PromotedByHand": (ROLLOUT, "promoted by hand"),
    "AnalysisFailed": (ROLLOUT, "rolled back: analysis failed"),
    "CanaryNotReady": (ROLLOUT, "rolled back: canary not ready"),
    "RolloutAborted": (ROLLOUT, "rollout aborted"),
    "AnalysisInconclusive": (ROLLOUT, "rollout paused: analysis inconclusive"),
    "RolloutPaused": (ROLLOUT, "rollout paused"),
    "RolloutResumed": (ROLLOUT, "rollout resumed"),
    "UndoStarted": (UNDO, "undo: canary rollout started"),
    "UndoApplied": (UNDO, "undo applied"),
    "UndoRefused": (UNDO, "undo refused"),
    "RetryStarted": (UNDO, "retry: canary rollout started"),
    "RetryApplied": (UNDO, "retry applied"),
    "RetryRefused": (UNDO, "retry refused"),
    "ModelUnavailable": (SERVING, "model unavailable"),
    "ModelServed": (SERVING, "model served again"),
    "ArtifactsChanged": (SERVING, "artifacts changed in S3"),
    "ArtifactsVerified": (SERVING, "artifacts verified again"),
    "RouteNotFound": (SERVING, "route not found"),
    "RouteFound": (SERVING, "route found"),
}
# Progress, not outcomes: each canary step, the end of the steps (ModelPromoted follows), the rollout's end
# (ModelPromoted says it), a check that found no drift.
QUIET = frozenset({"CanaryWeight", "StepsCompleted", "RolloutSucceeded", "NoDrift"})


@dataclass(frozen=True)
class Outgoing:
    """An Event to notify: its category, the notifiers that want it, and what it is about."""

    category: str
    title: str
    notifiers: tuple[str, ...]
    version: str | None = None  # the model version it concerns, where one does
    check_id: str | None = None  # the drift check, for drift Events


def category(event_type: str, reason: str) -> tuple[str, str] | None:
    """(category, title) of an Event; None for one that is never notified."""
    if reason == NOTIFICATION_FAILED or reason.startswith(NOTIFIER_PREFIX) or reason in QUIET:
        return None
    if reason in REASONS:
        return REASONS[reason]
    return (PROBLEM, reason) if event_type == "Warning" else None


def wants(notifier: NotifierSpec, event_type: str, category_: str) -> bool:
    severe = names.SEVERITIES.index(event_type) if event_type in names.SEVERITIES else 0
    return category_ in notifier.categories and severe >= names.SEVERITIES.index(notifier.min_severity)


def _field(status: Mapping[str, Any], section: str, key: str) -> str | None:
    value = (status.get(section) or {}).get(key)
    return str(value) if value else None


def _subject(category_: str, reason: str, status: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(version, drift check) the Event is about, read from the status the same decision wrote."""
    if category_ == RUN:
        section = "activeRun" if reason == "RunStarted" else "lastRun"
        return (_field(status, section, "version") if reason != "RunSkipped" else None), None
    if category_ == GATE:
        return _field(status, "lastRun", "version"), None
    if category_ == ROLLOUT:
        return _field(status, "rollout", "version"), None
    if category_ == UNDO:
        return _field(status, "lastUndo", "version"), None
    if category_ == DRIFT:
        return _field(status, "drift", "modelVersion"), _field(status, "drift", "checkId")
    if category_ == SERVING:
        return _field(status, "currentModel", "version"), None
    return None, None


def _refused_again(reason: str, status: Mapping[str, Any]) -> bool:
    """A write the API server refuses once more (status.applyErrors counts the attempts): its first
    refusal was sent; each retry (15 s to 5 minutes apart) posts an Event, but would only repeat it."""
    entries = status.get("applyErrors") or {}
    return any(isinstance(entry, Mapping) and entry.get("reason") == reason and int(entry.get("attempts") or 0) > 1
               for entry in entries.values())


def outgoing(event: Event, notifiers: Sequence[NotifierSpec], status: Mapping[str, Any]) -> Outgoing | None:
    """Who is told of `event` (from the decision whose status is `status`), or None."""
    found = category(event.type, event.reason)
    if found is None or (found[0] == PROBLEM and _refused_again(event.reason, status)):
        return None
    category_, title = found
    targets = tuple(n.name for n in notifiers if wants(n, event.type, category_))
    if not targets:
        return None
    version, check_id = _subject(category_, event.reason, status)
    return Outgoing(category_, title, targets, version, check_id)
