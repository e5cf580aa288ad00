"""What a webhook receives: the operator's JSON document, or a message in Slack's incoming-webhook format.

Both are built from the Event alone (outbox.Pending), so a delivery after a restart sends exactly
what the first attempt would have. `id` is the Event's name, derived from the decision: the same
outcome always has the same id, and a receiver that sees one twice (at-least-once) can drop it.
"""

from __future__ import annotations

import json
from typing import Any

from retrain_contract.api import names

from .outbox import Pending

SCHEMA = "retrain.mlops.dev/notification/v1"


def document(pending: Pending) -> dict[str, Any]:
    """The generic JSON body."""
    out = pending.outgoing
    body: dict[str, Any] = {
        "schema": SCHEMA,
        "id": pending.id,
        "policy": {"namespace": pending.namespace, "name": pending.policy, "uid": pending.uid},
        "category": out.category,
        "type": pending.type,
        "reason": pending.reason,
        "title": out.title,
        "message": pending.message,
        "version": out.version,
        "time": pending.time,
    }
    if out.check_id:
        body["checkId"] = out.check_id
    return body


def _escape(text: str) -> str:
    """Slack's three control characters in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(pending: Pending) -> dict[str, Any]:
    """A Slack incoming-webhook message: `text` (notifications, and receivers without blocks), and blocks."""
    out = pending.outgoing
    mark = ":warning:" if pending.type == "Warning" else ":white_check_mark:"
    policy = f"{pending.namespace}/{pending.policy}"
    version = f" {out.version}" if out.version else ""
    headline = f"{mark} *{_escape(policy)}*{_escape(version)}: {_escape(out.title)}"
    context = f"{names.KIND} {policy} · {out.category} · {pending.reason} · {pending.time}"
    return {
        "text": f"{headline}\n{_escape(pending.message)}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{headline}\n{_escape(pending.message)}"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(context)}]},
        ],
    }


def body(kind: str, pending: Pending) -> bytes:
    """The request body for a notifier of type `kind` (json | slack)."""
    payload = slack(pending) if kind == "slack" else document(pending)
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
