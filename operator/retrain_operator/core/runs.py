"""What identifies a run: its version, its Job's name, and the trigger that started it.

Names are derived from the policy and the run counter kept in status, so a retry after a
crash computes the same Job name and adopts the Job instead of creating a second one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..api import kubenames


@dataclass(frozen=True)
class Trigger:
    type: str  # "manual" | "schedule" | "drift"
    reason: str
    at: str  # RFC 3339: the tick, or when the annotation was seen
    key: str = ""  # what consumes it: the cron tick or the annotation's value

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "reason": self.reason, "at": self.at, "key": self.key}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Trigger | None:
        if not data:
            return None
        return cls(
            type=str(data.get("type", "")),
            reason=str(data.get("reason", "")),
            at=str(data.get("at", "")),
            key=str(data.get("key", "")),
        )


def version_name(index: int) -> str:
    return f"v{index}"


def version_index(version: str | None) -> int:
    """`v12` -> 12; anything else -> 0 (older than every run)."""
    match = re.fullmatch(r"v(\d+)", version or "")
    return int(match.group(1)) if match else 0


def check_index(check_id: str | None) -> int:
    """`d7` -> 7; anything else -> 0."""
    match = re.fullmatch(r"d(\d+)", check_id or "")
    return int(match.group(1)) if match else 0


def job_name(policy: str, version: str) -> str:
    """`<policy>-<version>`, shortened with a hash when too long (kubenames.job_name)."""
    return kubenames.job_name(policy, version)
