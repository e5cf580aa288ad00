"""What a decision is made from, besides what was observed: the policy as read, and the operator's settings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..jobs import PolicyRef
from ..status import PolicyStatus


@dataclass(frozen=True)
class PolicyState:
    name: str
    namespace: str
    uid: str
    generation: int
    created: dt.datetime
    spec: dict[str, Any]
    status: dict[str, Any]
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> PolicyRef:
        return PolicyRef(name=self.name, namespace=self.namespace, uid=self.uid)

    @cached_property
    def typed_status(self) -> PolicyStatus:
        """The status as read, parsed once however many rounds a reconcile decides (never modified)."""
        return PolicyStatus.parse(self.status)


@dataclass(frozen=True)
class Settings:
    default_image: str = "ghcr.io/retrain-operator/trainer:0.1.0"
    # Stable servers of the current version without a Ready pod for this long: Ready is False.
    serving_grace: float = 120.0
    # How often the current version's manifest and files are re-read and checked (seconds; 0: never).
    verify_interval: float = 600.0
