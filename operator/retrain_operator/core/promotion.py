"""From a model that passed its gates to the model that serves: the serving part of a decision.

Without `spec.serving`, a model that passes its gates becomes current at once (the operator only
trains). With it, the current model runs in the stable Deployment; a new one either replaces it
directly (no `promotion.canary`, or nothing serving yet) or goes through a canary rollout
(rollout.py), and becomes `currentModel` only when the rollout succeeds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from retrain_contract.api import names
from retrain_contract.api.spec import PolicySpec

from . import rollout, routes, serving
from .jobs import PolicyRef
from .observed import Observed
from .status import PolicyStatus, RolloutRecord, ServingStatus


@dataclass(frozen=True)
class ServingPlan:
    """What the shell makes true: manifests to apply (create or update) and the canary weight."""

    deployments: tuple[dict[str, Any], ...] = ()
    services: tuple[dict[str, Any], ...] = ()
    weight: int = 0
    mirror: bool = False
    router: str = "replicas"
    route_name: str | None = None
    stable_service: str = ""
    canary_service: str = ""
    port: int = 8080


@dataclass
class PromotionResult:
    plan: ServingPlan | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    requeue: float | None = None
    wants_metrics: tuple[str, str] | None = None  # scrape these (stable, canary) versions first
    finished: str | None = None  # a rollout ended now: rollout.SUCCEEDED | ROLLED_BACK | ABORTED


def commands(annotations: dict[str, str]) -> rollout.Commands:
    return rollout.Commands(promote=annotations.get(names.ANNOTATION_PROMOTE) or None,
                            abort=annotations.get(names.ANNOTATION_ABORT) or None,
                            pause=(annotations.get(names.ANNOTATION_PAUSE) or "").lower() == "true")


def rollout_active(status: PolicyStatus) -> bool:
    return status.rollout is not None and status.rollout.phase not in rollout.FINAL


def uses_canary(spec: PolicySpec, status: PolicyStatus) -> bool:
    """A new model goes through a canary when there is one configured and a model already serves."""
    return bool(spec.serving and spec.canary and status.serving and status.serving.stable_version)


def step(spec: PolicySpec, policy: PolicyRef, status: PolicyStatus, annotations: dict[str, str],
         observed: Observed, now: dt.datetime, default_image: str) -> PromotionResult:
    """Advance an active rollout (mutating `status`) and say what serving should look like."""
    result = PromotionResult()
    serving_spec = spec.serving
    if serving_spec is None:
        if rollout_active(status):  # serving was removed from the spec mid-rollout: nothing left to roll
            state = status.rollout.to_dict() if status.rollout else {}
            status.rollout = RolloutRecord.from_dict({
                **state, "phase": rollout.ABORTED, "reason": "ServingRemoved", "weight": 0,
                "message": "spec.serving was removed; the rollout ended"})
            result.finished = rollout.ABORTED
            result.events.append(("Warning", "RolloutAborted", f"{state.get('version')}: spec.serving was removed"))
        return result
    current = status.current_model
    state = status.rollout.to_dict() if status.rollout else {}
    total = serving_spec.replicas
    route_name = serving_spec.router.http_route or serving_spec.router.virtual_service
    route_problem = None
    if serving_spec.router.type != "replicas" and route_name and observed.serving.route_missing:
        kind = routes.ROUTE_KINDS.get(serving_spec.router.type, serving_spec.router.type)
        stable_service = serving.service_name(policy.name, serving.STABLE)
        route_problem = (f"the {kind} {route_name} does not exist; canary weights cannot be set and a rollout "
                         f"waits at 0% (create it with a rule to the {stable_service} Service)")
    canary_target: serving.Served | None = None
    weight, mirror = 0, False
    if rollout_active(status) and spec.canary is not None:
        if rollout.due_for_analysis(spec.canary, state, now) and observed.metrics is None:
            result.wants_metrics = (str(state.get("stableVersion")), str(state["version"]))
            return result
        metrics = observed.metrics
        seen = rollout.Observation(
            canary_ready=serving.deployment_ready(observed.serving.canary, state["version"]),
            stable_version=serving.deployment_version(observed.serving.stable),
            stable_metrics=metrics.stable if metrics and not metrics.error else None,
            canary_metrics=metrics.canary if metrics and not metrics.error else None,
            queries=metrics.queries if metrics else {},
            commands=commands(annotations), route_ready=route_problem is None)
        moved = rollout.advance(spec.canary, state, total, now, seen)
        status.rollout = RolloutRecord.from_dict(moved.state)
        result.events, result.requeue, result.finished = moved.events, moved.requeue, moved.finished
        stable_version = moved.stable_version
        promoted = stable_version == state["version"]
        stable_uri = state["uri"] if promoted else (current.uri if current else None)
        stable_digest = state.get("manifestSha256") if promoted else (current.manifest_sha256 if current else None)
        stable_target = serving.Served(stable_version, stable_uri, moved.stable_replicas, stable_digest)
        canary_target = serving.Served(state["version"], state["uri"], moved.canary_replicas,
                                       state.get("manifestSha256"))
        weight, mirror = moved.weight, moved.mirror
    elif rollout_active(status):  # the canary section was removed mid-rollout: finish it by hand
        message = "promotion.canary was removed from the spec; stable keeps serving"
        status.rollout = RolloutRecord.from_dict({**state, "phase": rollout.ABORTED, "reason": "CanaryRemoved",
                                                  "message": message})
        result.finished = rollout.ABORTED
        result.events.append(("Warning", "RolloutAborted", f"{state.get('version')}: {message}"))
        if current is None:
            return result
        stable_target = serving.Served(current.version, current.uri or "", total, current.manifest_sha256)
    elif current:
        stable_target = serving.Served(current.version, current.uri or "", total, current.manifest_sha256)
    else:
        return result  # nothing trained yet: nothing to serve
    if canary_target is None and observed.serving.canary is not None:
        # An ended rollout leaves its Deployment at zero pods, ready for the next one.
        labels = ((observed.serving.canary.get("spec") or {}).get("template") or {}).get("metadata", {}).get(
            "labels") or {}
        last = status.rollout.to_dict() if status.rollout else {}
        canary_target = serving.Served(labels.get(names.LABEL_MODEL_VERSION) or last.get("version") or
                                       stable_target.version, last.get("uri") or stable_target.uri, 0,
                                       last.get("manifestSha256") if last else stable_target.manifest_sha256)
    deployments = [serving.model_deployment(policy, spec, serving.STABLE, stable_target, default_image)]
    if canary_target is not None:
        deployments.append(serving.model_deployment(policy, spec, serving.CANARY, canary_target, default_image))
    status.serving = ServingStatus(stable_version=stable_target.version,
                                   served_version=serving.deployment_version(observed.serving.stable),
                                   replicas=total, router=serving_spec.router.type, route_problem=route_problem)
    result.plan = ServingPlan(
        deployments=tuple(deployments), services=tuple(serving.services(policy, spec)), weight=weight,
        mirror=mirror, router=serving_spec.router.type,
        route_name=None if route_problem else route_name,
        stable_service=serving.service_name(policy.name, serving.STABLE),
        canary_service=serving.service_name(policy.name, serving.CANARY), port=serving_spec.port)
    return result
