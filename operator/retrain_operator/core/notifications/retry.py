"""When a webhook's answer is worth another try, and how long to wait first.

Connection errors, timeouts, 408, 425, 429 and 5xx are transient: tried again with exponential
backoff (1 s, 2 s, 4 s, ...), or after the receiver's Retry-After when it says one. Any other answer
that is not 2xx (400, 401, 403, 404, a redirect) will not change by itself: no retry.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from dataclasses import dataclass

MAX_ATTEMPTS = 5
BASE_DELAY = 1.0
MAX_DELAY = 60.0
MAX_RETRY_AFTER = 120.0  # a longer Retry-After is waited this long: a worker is not held for hours
TRANSIENT = frozenset({408, 425, 429})
SENT, RETRY, GIVE_UP = "sent", "retry", "give-up"


@dataclass(frozen=True)
class Answer:
    """One attempt: the HTTP status (None: no answer, `error` says why) and the Retry-After header."""

    status: int | None
    error: str = ""
    retry_after: str | None = None

    def describe(self) -> str:
        return f"HTTP {self.status}" if self.status is not None else self.error or "no answer"


def verdict(answer: Answer, attempt: int, max_attempts: int = MAX_ATTEMPTS) -> str:
    if answer.status is not None and 200 <= answer.status < 300:
        return SENT
    transient = answer.status is None or answer.status in TRANSIENT or answer.status >= 500
    return RETRY if transient and attempt < max_attempts else GIVE_UP


def retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Retry-After in seconds: a number of seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


def delay(attempt: int, answer: Answer, now: dt.datetime, base: float = BASE_DELAY) -> float:
    """Seconds before attempt `attempt + 1`: the backoff, or the receiver's Retry-After when longer."""
    backoff = min(MAX_DELAY, base * 2 ** (attempt - 1))
    asked = retry_after(answer.retry_after, now)
    return backoff if asked is None else max(backoff, min(asked, MAX_RETRY_AFTER))
