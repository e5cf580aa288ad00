"""Events are one resource with two APIs, as in the real server: `v1` (what kopf writes) and
`events.k8s.io/v1` (what `kubectl get events` and `kubectl events` read since kubectl 1.2x).

Only `v1` objects are stored; the `events.k8s.io/v1` view is converted on every read, with the
field names of k8s.io/kubernetes/pkg/apis/events/v1 conversion. The table is the built-in event
printer's (k8s.io/kubernetes/pkg/printers/internalversion): Last Seen, Type, Reason, Object,
Message, and more at priority 1.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

CORE = ("", "events")
EVENTS_V1 = ("events.k8s.io", "events")
Json = dict[str, Any]

# events.k8s.io/v1 field <- v1 field
_RENAMED = {"regarding": "involvedObject", "note": "message", "reportingController": "reportingComponent",
            "deprecatedSource": "source", "deprecatedFirstTimestamp": "firstTimestamp",
            "deprecatedLastTimestamp": "lastTimestamp", "deprecatedCount": "count"}
_SAME = ("eventTime", "series", "reportingInstance", "action", "reason", "related", "type")


def _convert(event: Json, api_version: str, renamed: dict[str, str]) -> Json:
    """`renamed` maps each field of the result to the field of `event` it comes from."""
    converted: Json = {"apiVersion": api_version, "kind": "Event", "metadata": event.get("metadata") or {}}
    for target, source in [*((name, name) for name in _SAME), *renamed.items()]:
        if event.get(source) not in (None, "", {}):
            converted[target] = event[source]
    return converted


def to_events_v1(event: Json) -> Json:
    return _convert(event, "events.k8s.io/v1", _RENAMED)


def to_core(event: Json) -> Json:
    """An events.k8s.io/v1 Event as the v1 Event it is stored as."""
    return _convert(event, "v1", {old: new for new, old in _RENAMED.items()})


def _since(*stamps: Any) -> str:
    from .tables import human_duration

    for stamp in stamps:
        if isinstance(stamp, str) and stamp:
            then = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            return human_duration((dt.datetime.now(dt.UTC) - then).total_seconds())
    return "<unknown>"


def table_columns() -> list[Json]:
    return [{"name": name, "type": "string", "format": "", "description": name, "priority": priority}
            for name, priority in (("Last Seen", 0), ("Type", 0), ("Reason", 0), ("Object", 0), ("Subobject", 1),
                                   ("Source", 1), ("Message", 0), ("First Seen", 1), ("Count", 1), ("Name", 1))]


def table_cells(event: Json) -> list[Any]:
    """One row, from either API version of the event."""
    core = {old: event.get(new) for new, old in _RENAMED.items()} if "regarding" in event or "note" in event \
        else event
    involved = core.get("involvedObject") or {}
    source = core.get("source") or {}
    meta = event.get("metadata") or {}
    series = event.get("series") or {}
    last = series.get("lastObservedTime") or core.get("lastTimestamp") or event.get("eventTime")
    first = core.get("firstTimestamp") or event.get("eventTime")
    return [_since(last, meta.get("creationTimestamp")), event.get("type", ""), event.get("reason", ""),
            f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}", involved.get("fieldPath", ""),
            ", ".join(filter(None, [source.get("component") or event.get("reportingController")
                                    or event.get("reportingComponent"), source.get("host")])),
            core.get("message", ""), _since(first, meta.get("creationTimestamp")),
            int(core.get("count") or series.get("count") or 1), meta.get("name", "")]

