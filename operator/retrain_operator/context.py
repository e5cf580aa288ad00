"""What every reconcile shares: the API client, the clock, the settings, the caches, this replica's shard."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from retrain_contract.api import names

from .adapters.bucket_checks import BucketChecks
from .adapters.caches import Caches
from .adapters.clock import Clock
from .adapters.kube import Kube
from .adapters.notifier import Notifier
from .core.decide import MAX_REQUEUE, Settings
from .core.sharding import Shard


@dataclass
class Context:
    kube: Kube
    clock: Clock
    settings: Settings
    max_requeue: float = MAX_REQUEUE
    bucket_checks: BucketChecks = field(default_factory=BucketChecks)
    caches: Caches | None = None  # the informers behind ctx.kube's reads (a CachedKube), started by handlers
    instance: str = field(default_factory=lambda: os.environ.get("HOSTNAME") or names.MANAGED_BY)  # Event source
    shard: Shard = field(default_factory=Shard)  # the policies this replica reconciles (handlers' filters)
    notifier: Notifier | None = None  # delivers spec.notify's notifications (started by handlers)


