"""When a policy's loop looks again: the periodic look is jittered so that no wave forms.

After a restart every policy reconciles at once and, idle, would sleep the same longest requeue: all
of them would come due together again, every period, and a trigger arriving then would wait behind the
whole wave. Shortening each periodic sleep by a random part of JITTER spreads them out a little more
every period. A shorter requeue asked for a reason (a cron tick, a run to follow, a backoff) is kept as
it is: jitter only ever makes a look earlier, never later than the decision asked.
"""

from __future__ import annotations

JITTER = 0.2


def next_look(delay: float, max_requeue: float, rand: float) -> float:
    """`delay` capped at `max_requeue`; the periodic look (the cap) shortened by up to JITTER of it.

    `rand` is a uniform draw in [0, 1): the caller's randomness, so this stays a pure function."""
    if delay < max_requeue:
        return delay
    return max_requeue * (1 - JITTER * rand)
