"""The NotifiersReady condition (this module's): do spec.notify's Secrets give each notifier a webhook?

A missing Secret or key, or a value that is not a URL, is said in the condition and once in a Warning
Event (again when it changes); training, rollouts and Ready go on as if it were not there.
"""

from __future__ import annotations

from .. import conditions as cond
from .round import Round


def condition(r: Round) -> None:
    if not r.spec.notify:  # a condition about notifiers the spec no longer has would only mislead
        r.status.conditions = [c for c in r.status.conditions or [] if c.get("type") != cond.NOTIFIERS_READY]
        return
    problems = r.observed.notify_problems
    if not problems:
        names = ", ".join(n.name for n in r.spec.notify)
        r.condition(cond.NOTIFIERS_READY, True, "WebhooksFound", f"{names}: webhook URL found in its Secret")
        return
    reason, message = problems[0][0], "; ".join(message for _, message in problems)
    before = r.old_condition(cond.NOTIFIERS_READY)
    if not before or before.get("reason") != reason or before.get("message") != message:
        r.event("Warning", reason, f"{message}; these notifications are not sent")
    r.condition(cond.NOTIFIERS_READY, False, reason, message)
