"""The last answer to "can these credentials reach this bucket?", shared by every policy that asks it.

The check (an S3 HeadBucket) ran in every reconcile of every policy. Now it runs when its question is
new (another endpoint, bucket or credentials: a changed spec or a rotated Secret asks a new question)
and again after a resync period, jittered so that a thousand policies' checks do not come due together.
A failed check is asked again soon, so a repaired bucket is seen quickly. Reads of artifacts still go to
S3 whenever a decision needs them; this only spares the idle check.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Hashable

Problem = tuple[str, str]

DEFAULT_RESYNC = 600.0
FAILURE_RESYNC = 10.0
JITTER = 0.2  # a fresh answer is kept between (1 - JITTER) and 1 times the resync period


class BucketChecks:
    def __init__(self, resync: float = DEFAULT_RESYNC, failure_resync: float = FAILURE_RESYNC,
                 clock: Callable[[], float] = time.monotonic, rand: Callable[[], float] = random.random):
        self.resync = resync
        self.failure_resync = failure_resync
        self._clock = clock
        self._rand = rand
        self._lock = threading.Lock()
        self._answers: dict[Hashable, tuple[float, Problem | None]] = {}

    def lookup(self, key: Hashable) -> tuple[bool, Problem | None]:
        """(True, answer) while an answer is fresh; (False, None) when the check is due."""
        with self._lock:
            entry = self._answers.get(key)
        if entry is None or self._clock() >= entry[0]:
            return False, None
        return True, entry[1]

    def put(self, key: Hashable, problem: Problem | None) -> None:
        period = self.failure_resync if problem is not None else self.resync * (1 - JITTER * self._rand())
        with self._lock:
            self._answers[key] = (self._clock() + period, problem)
            if len(self._answers) > 4096:  # answers to questions nobody asks any more
                now = self._clock()
                self._answers = {k: v for k, v in self._answers.items() if v[0] > now}

    def forget(self) -> None:
        with self._lock:
            self._answers.clear()
