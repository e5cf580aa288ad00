"""RFC 3339 timestamps as Kubernetes writes them (UTC, seconds, `Z`)."""

from __future__ import annotations

import datetime as dt


def to_rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_rfc3339(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
