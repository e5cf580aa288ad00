"""`status` as types: parsed once per reconcile, changed as fields, written whole.

Only the fields below survive a round trip: a field a state no longer has (the last rollout's
`finishedAt`, a drift record's `error` after a good check) is not carried over by accident,
and a key an older operator wrote is dropped at the next write. The refused-write records
(`applyErrors`) and `conditions` keep their own modules' shapes (core/apply_errors.py,
core/conditions.py); the canary machine (core/rollout.py) works on a dict of `rollout`.

Serialisation omits None: absent and null mean the same to every reader of status.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .runs import Trigger

Json = dict[str, Any]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@cache
def _fields(cls: type) -> tuple[tuple[str, str, type | None, bool], ...]:
    """(attribute, JSON key, nested record type or None, is a list of it) per field."""
    hints = typing.get_type_hints(cls)
    found = []
    for item in dataclasses.fields(cls):
        hint = hints[item.name]
        is_list = typing.get_origin(hint) is list
        args = typing.get_args(hint)
        candidates = args if typing.get_origin(hint) in (typing.Union, types.UnionType, list) else (hint,)
        nested = next((a for a in candidates if isinstance(a, type) and issubclass(a, _Record)), None)
        found.append((item.name, item.metadata.get("key", _camel(item.name)), nested, is_list))
    return tuple(found)


class _Record:
    """camelCase JSON in and out; unknown keys dropped, None omitted."""

    @classmethod
    def from_dict(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not data:
            return None
        values = {}
        for attr, key, nested, is_list in _fields(cls):
            if key not in data or data[key] is None:
                continue
            value = data[key]
            if nested is not None and is_list:
                value = [parsed for item in value or [] if (parsed := nested.from_dict(item)) is not None]
            elif nested is not None:
                value = nested.from_dict(value)
            values[attr] = value
        return cls(**values)

    def copy(self) -> Any:
        """An independent copy: what it holds is copied too."""
        return type(self).from_dict(copy.deepcopy(self.to_dict()))

    def to_dict(self) -> Json:
        out: Json = {}
        for attr, key, nested, is_list in _fields(type(self)):
            value = getattr(self, attr)
            if value is None:
                continue
            if nested is not None and is_list:
                value = [item.to_dict() for item in value]
            elif nested is not None:
                value = value.to_dict()
            out[key] = value
        return out


@dataclass
class ModelRecord(_Record):
    """A trained version: `currentModel`, and each entry of `history`."""

    version: str = ""
    uri: str | None = None
    trained_at: str | None = None
    trigger: str | None = None
    parent_version: str | None = None
    metrics: dict[str, Any] | None = None
    # sha256 of manifest.json as recorded: the servers refuse any other manifest.
    manifest_sha256: str | None = None
    verified_at: str | None = None  # when S3 was last compared with what was recorded
    artifact_problem: str | None = None  # what that comparison found changed
    rollout: str | None = None  # "Progressing" while it is the canary
    rejected: str | None = None  # why it never became current (a gate, a rollback)
    rolled_out_at: str | None = None
    passed_gates: bool | None = None  # its gates let it serve (core/undo.py may then bring it back)


@dataclass
class ActiveRun(_Record):
    version: str = ""
    job_name: str | None = None
    trigger: dict[str, Any] | None = None  # runs.Trigger.as_dict()
    parent_version: str | None = None
    started_at: str | None = None
    pod_problem: dict[str, Any] | None = None  # {reason, message, since}: why its pod does not start

    @property
    def started_by(self) -> Trigger | None:
        return Trigger.from_dict(self.trigger)


@dataclass
class LastRun(_Record):
    version: str = ""
    phase: str = ""  # Succeeded | Rejected | Failed
    trigger: str | None = None
    trigger_reason: str | None = None
    job_name: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    reason: str | None = None
    message: str | None = None
    gates: list[dict[str, Any]] | None = None  # gates.Verdict.as_status(), for recorded runs


@dataclass
class ActiveDriftCheck(_Record):
    check_id: str = ""
    job_name: str | None = None
    started_at: str | None = None
    model_version: str | None = None  # the model whose profile it compares with
    pod_problem: dict[str, Any] | None = None  # {reason, message, since}: why its pod does not start


@dataclass
class DriftRecord(_Record):
    """The last finished drift check: its result, or the error that left it without one."""

    check_id: str = ""
    checked_at: str | None = None
    model_version: str | None = None
    result_uri: str | None = None
    error: dict[str, Any] | None = None  # {reason, message} of a check that failed
    verdict: str | None = None  # drift | no-drift | insufficient-data (drift is None for the last)
    drift: bool | None = None
    dataset_drift: bool | None = None
    score: float | None = None
    drifted_features: list[str] | None = None
    top_features: list[Any] | None = None
    feature_scores: dict[str, float] | None = None
    rows: int | None = None
    min_rows: int | None = None
    insufficient_features: list[str] | None = None
    message: str | None = None  # why an insufficient-data check gave no verdict
    performance: dict[str, Any] | None = None
    report_uri: str | None = None


@dataclass
class PendingDrift(_Record):
    """Drift that asks for a run, until a run starts (a later check that finds drift again keeps `at`)."""

    check_id: str = ""
    reason: str = ""
    at: str = ""
    # minNewSamples holds the run: the last count of new rows, and when it was made (counted again later).
    new_samples: int | None = None
    counted_at: str | None = None


@dataclass
class RolloutRecord(_Record):
    """The canary rollout under way, or the last one (core/rollout.py's machine works on its dict)."""

    version: str = ""
    uri: str | None = None
    manifest_sha256: str | None = None
    stable_version: str = ""  # the version serving when it started: kept until promotion
    phase: str = ""  # Progressing | Paused | Promoting | Succeeded | RolledBack | Aborted
    reason: str | None = None
    message: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    step_index: int = 0
    step_started_at: str | None = None
    paused_at: str | None = None  # since when it is Paused (absent in any other phase)
    weight: int = 0
    went_live: bool | None = None  # the canary has had live traffic (the shadow step is over)
    passed_in_step: bool = False
    failures: int = 0
    inconclusive: int = 0
    query_failures: dict[str, int] = field(default_factory=dict)
    last_analysis_at: str | None = None
    last_analysis: dict[str, Any] | None = None
    not_ready_since: str | None = None
    # The scrape that starts the next analysis window: {"stable": snapshot, "canary": snapshot}.
    baseline: dict[str, Any] | None = None
    consumed: dict[str, Any] = field(default_factory=dict)  # promote/abort annotation values acted on


@dataclass
class UndoRecord(_Record):
    """The last undo (or retry) request acted on, and what came of it."""

    request: str = ""  # the annotation value: a new value is a new request
    at: str | None = None
    version: str | None = None  # the version it brings back
    result: str = ""  # Started (a canary) | Applied (at once) | Refused
    message: str = ""


@dataclass
class ServingStatus(_Record):
    stable_version: str | None = None  # what the stable Deployment is asked to run
    served_version: str | None = None  # what all its pods run, once rolled out
    replicas: int | None = None
    router: str | None = None
    route_problem: str | None = None  # why canary weights cannot be set now (the route does not exist)


@dataclass
class PolicyStatus(_Record):
    observed_generation: int | None = None
    phase: str | None = None
    message: str | None = None
    conditions: list[dict[str, Any]] | None = None
    current_model: ModelRecord | None = None
    history: list[ModelRecord] = field(default_factory=list)
    active_run: ActiveRun | None = None
    last_run: LastRun | None = None
    run_counter: int = 0
    next_run_at: str | None = None
    last_schedule_time: str | None = None
    last_manual_trigger: str | None = None
    last_undo: UndoRecord | None = None  # the last undo annotation acted on (core/undo.py)
    last_drift_trigger: str | None = None
    pending_drift_trigger: PendingDrift | None = None
    active_drift_check: ActiveDriftCheck | None = None
    drift: DriftRecord | None = None
    drift_counter: int = 0
    rollout: RolloutRecord | None = None
    serving: ServingStatus | None = None
    canary: str | None = None  # "<version> <weight>%" while a rollout is active (kubectl get)
    apply_errors: dict[str, Any] | None = None  # core/apply_errors.py's records, per step

    @classmethod
    def parse(cls, data: Json | None) -> PolicyStatus:
        return cls.from_dict(copy.deepcopy(data)) or cls()

    def copy(self) -> PolicyStatus:
        return PolicyStatus.parse(self.to_dict())

    def to_dict(self) -> Json:
        out = super().to_dict()
        for counter in ("runCounter", "driftCounter"):
            if not out.get(counter):
                out.pop(counter, None)
        if not out.get("history"):
            out.pop("history", None)
        return out

    @property
    def current_version(self) -> str | None:
        return self.current_model.version if self.current_model else None

