"""What `kubectl retrain status` and `history` print: pure functions of policy objects and the time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from ..core import rollout
from ..core.timeutil import from_rfc3339

Json = dict[str, Any]
STATUS_HEADERS = ["NAME", "PHASE", "MODEL", "LAST TRAINED", "DRIFT", "CANARY", "NEXT RUN", "MESSAGE"]
HISTORY_HEADERS = ["VERSION", "TRAINED", "TRIGGER", "PARENT", "STATE", "METRICS"]
# The held-out metrics the trainer writes (retrain_trainer.evaluate), in the order a person reads them.
PREFERRED_METRICS = ("accuracy", "f1Macro", "f1Weighted", "r2", "rmse", "mae")


def age(timestamp: str | None, now: dt.datetime) -> str:
    """As kubectl prints ages: 45s, 3m, 2h, 5d."""
    when = from_rfc3339(timestamp) if timestamp else None
    if when is None:
        return "-"
    seconds = max(int((now - when).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def drift_cell(status: Json) -> str:
    """The last drift check: its share of drifted features, and '!' when it found drift; 'too few rows'
    when it had too few for a verdict (neither a share nor 'no drift' would be true)."""
    drift = status.get("drift") or {}
    if not drift:
        return "-"
    if drift.get("verdict") == "insufficient-data" and not drift.get("error"):
        return "too few rows"
    if drift.get("drift") is None:
        return "error"
    return f"{float(drift.get('score') or 0.0):.2f}{'!' if drift.get('drift') else ''}"


def drift_verdict(drift: Json) -> str:
    """The last check's verdict in words, for `kubectl retrain report`."""
    if drift.get("error"):
        return "failed"
    if drift.get("verdict") == "insufficient-data":
        return f"insufficient data: {drift.get('message') or 'too few rows'}"
    return "drift" if drift.get("drift") else "no drift"


def canary_cell(status: Json) -> str:
    rolling = status.get("rollout") or {}
    if not rolling:
        return "-"
    phase = rolling.get("phase", "")
    if phase in rollout.FINAL:
        return f"{rolling.get('version')} {phase}"
    return f"{rolling.get('version')} {int(rolling.get('weight') or 0)}% {phase}"


def status_row(policy: Json, now: dt.datetime, with_namespace: bool = False) -> list[str]:
    meta, status = policy.get("metadata") or {}, policy.get("status") or {}
    current = status.get("currentModel") or {}
    row = [meta.get("name", ""), status.get("phase") or "-", current.get("version") or "-",
           age(current.get("trainedAt"), now), drift_cell(status), canary_cell(status),
           status.get("nextRunAt") or "-", _shorten(status.get("message") or "", 60)]
    return [meta.get("namespace", ""), *row] if with_namespace else row


def metrics_cell(metrics: Json) -> str:
    numbers = {k: v for k, v in (metrics or {}).items() if isinstance(v, int | float) and not isinstance(v, bool)}
    shown = [k for k in PREFERRED_METRICS if k in numbers] or sorted(numbers)[:3]
    return " ".join(f"{k}={numbers[k]:.3f}" for k in shown) or "-"


def history_rows(policy: Json) -> list[list[str]]:
    status = policy.get("status") or {}
    current = (status.get("currentModel") or {}).get("version")
    rolling = status.get("rollout") or {}
    rows = []
    for entry in status.get("history") or []:
        version = entry.get("version", "")
        if version == current:
            state = "current"
        elif entry.get("rejected"):
            state = f"rejected: {entry['rejected']}"
        elif version == rolling.get("version") and rollout.is_active(status.get("rollout")):
            state = f"canary {int(rolling.get('weight') or 0)}%"
        else:
            state = "superseded"
        rows.append([version, entry.get("trainedAt") or "-", entry.get("trigger") or "-",
                     entry.get("parentVersion") or "-", state, metrics_cell(entry.get("metrics") or {})])
    return rows


def render(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded like kubectl's: three spaces between, no trailing blanks."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = ["   ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
             for line in (headers, *rows)]
    return "\n".join(lines)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
