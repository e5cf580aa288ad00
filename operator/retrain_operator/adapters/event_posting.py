"""Posting one decision's Events, each once (core/event_records.py names them), with what they owe spec.notify.

An Event a notifier wants carries it (core/notifications/outbox.py): the ones created now go to the
notifier, and any left undelivered stay listed in the API server for the next operator.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from kubernetes.client.rest import ApiException

from retrain_contract.api.spec import NotifierSpec

from ..core import event_records
from ..core.decide import Event
from ..core.notifications import outbox, select
from .kube import Kube

log = logging.getLogger(__name__)


def post_events(kube: Kube, body: dict[str, Any], before: dict[str, Any], events: list[Event], now: dt.datetime,
                instance: str, notifiers: tuple[NotifierSpec, ...] = (), status: dict[str, Any] | None = None) \
        -> list[dict[str, Any]]:
    """Post each Event once (at least once across crashes); a refusal that no retry can fix is only logged.

    Returns the Events created now that owe notifications. An unavailable API server (5xx, 429, no
    answer) raises: the status is then not written either, and the next reconcile posts the same
    Events again."""
    meta = body["metadata"]
    key = event_records.decision_key(meta.get("uid", ""), before)
    owed = []
    for event in events:
        level = logging.WARNING if event.type == "Warning" else logging.INFO
        log.log(level, "%s/%s %s: %s", meta["namespace"], meta["name"], event.reason, event.message)
        record = event_records.event_object(body, key, event.type, event.reason, event.message, now, instance)
        outgoing = select.outgoing(event, notifiers, status or {}) if notifiers else None
        if outgoing is not None:
            record = outbox.mark(record, outgoing)
        try:
            created = kube.post_event(record)
        except ApiException as error:
            if error.status in (400, 403, 404, 422):
                log.error("%s/%s: the API server refused Event %s (%s %s)", meta["namespace"], meta["name"],
                          event.reason, error.status, error.reason)
                continue
            raise
        if created and outgoing is not None:  # one that existed (409) is pending or closed already: the sweep knows
            owed.append(record)
    return owed
