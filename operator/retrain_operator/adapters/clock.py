"""Where "now" comes from.

Production reads the system clock. Tests and demos can point the operator at a file holding
an RFC 3339 time, so a nightly schedule can be shown firing without waiting for the night.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Protocol

from ..core.timeutil import from_rfc3339


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FileClock:
    """The time written in a file; the system time while the file is missing or empty."""

    def __init__(self, path: Path):
        self.path = path

    def now(self) -> dt.datetime:
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            text = ""
        return from_rfc3339(text) or dt.datetime.now(dt.UTC)
