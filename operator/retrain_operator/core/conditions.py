"""status.conditions kept the Kubernetes way.

lastTransitionTime moves only when `status` flips, so `kubectl describe` tells how long a
condition has held, not when the operator last looked.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .timeutil import to_rfc3339

Condition = dict[str, Any]

READY = "Ready"
TRAINING = "Training"
TRAINED = "Trained"
DRIFT_DETECTED = "DriftDetected"
PROGRESSING = "Progressing"  # a canary rollout is under way
# The API server refuses a write the operator needs (core/apply_errors.py). Present from the first
# refusal on: True with the refusal's reason while one is outstanding, then False (`Accepted`).
STALLED = "Stalled"
# With spec.notify: whether every notifier's Secrets give a webhook (core/decision/notifiers.py). Never
# part of Ready: a webhook that cannot be reached stops no training and no rollout.
NOTIFIERS_READY = "NotifiersReady"


def set_condition(
    conditions: list[Condition] | None,
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int | None,
    now: dt.datetime,
) -> list[Condition]:
    """A new list with `type_` set; the input list is not modified. None means Unknown."""
    value = "Unknown" if status is None else "True" if status else "False"
    result: list[Condition] = []
    found = False
    for condition in conditions or []:
        if condition.get("type") != type_:
            result.append(dict(condition))
            continue
        found = True
        changed = condition.get("status") != value
        result.append({
            "type": type_,
            "status": value,
            "reason": reason,
            "message": message,
            "observedGeneration": generation,
            "lastTransitionTime": to_rfc3339(now) if changed else condition.get("lastTransitionTime"),
        })
    if not found:
        result.append({
            "type": type_,
            "status": value,
            "reason": reason,
            "message": message,
            "observedGeneration": generation,
            "lastTransitionTime": to_rfc3339(now),
        })
    return result


def get_condition(conditions: list[Condition] | None, type_: str) -> Condition | None:
    for condition in conditions or []:
        if condition.get("type") == type_:
            return condition
    return None
