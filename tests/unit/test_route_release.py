"""What a deleted policy gives back: the user's route as it was before the operator weighted it."""

from __future__ import annotations

import jsonpatch

from retrain_operator.core import routes
from retrain_operator.core.release import route_release

from .policies import spec

STABLE, CANARY = "churn-model-stable", "churn-model-canary"


def _apply(document: dict, operations: list[dict]) -> dict:
    """Apply the JSON patch as the API server would (its `test`s included)."""
    return jsonpatch.apply_patch(document, operations)


def gateway_route(weight: int, mirror: bool) -> dict:
    route = {"spec": {"rules": [
        {"matches": [{"path": {"value": "/predict"}}],
         "backendRefs": [{"name": STABLE, "port": 8080, "weight": 100 - weight},
                         {"name": CANARY, "port": 8080, "weight": weight}]},
        {"backendRefs": [{"name": "docs", "port": 80}]}]}}
    if mirror:
        route["spec"]["rules"][0]["filters"] = [
            {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x", "value": "1"}]}},
            {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": CANARY, "port": 8080}}}]
    return route


def test_an_httproute_mid_rollout_gets_stable_only_and_loses_our_mirror():
    route = gateway_route(50, mirror=True)
    released = _apply(route, routes.httproute_release(route, STABLE, CANARY))
    rule = released["spec"]["rules"][0]
    assert rule["backendRefs"] == [{"name": STABLE, "port": 8080, "weight": 100}]
    assert [f["type"] for f in rule["filters"]] == ["RequestHeaderModifier"]  # the user's filter stays
    assert released["spec"]["rules"][1] == route["spec"]["rules"][1]


def test_an_httproute_the_operator_never_weighted_needs_no_patch():
    route = {"spec": {"rules": [{"backendRefs": [{"name": STABLE, "port": 8080, "weight": 100}]}]}}
    assert routes.httproute_release(route, STABLE, CANARY) == []


def test_a_virtualservice_mid_rollout_gets_stable_only_and_loses_our_mirror():
    service = {"spec": {"http": [
        {"route": [{"destination": {"host": f"{STABLE}.ml.svc.cluster.local"}, "weight": 70},
                   {"destination": {"host": f"{CANARY}.ml.svc.cluster.local"}, "weight": 30}],
         "mirror": {"host": f"{CANARY}.ml.svc.cluster.local"}},
        {"route": [{"destination": {"host": "docs"}}]}]}}
    released = _apply(service, routes.virtualservice_release(service, STABLE, CANARY))
    http = released["spec"]["http"][0]
    assert http["route"] == [{"destination": {"host": f"{STABLE}.ml.svc.cluster.local"}, "weight": 100}]
    assert "mirror" not in http
    assert released["spec"]["http"][1] == service["spec"]["http"][1]


def test_only_policies_that_weight_a_route_have_one_to_release():
    gateway = spec(serving={"router": {"type": "gatewayAPI", "httpRoute": "churn"}})
    release = route_release("churn", gateway)
    assert release is not None and (release.router, release.route) == ("gatewayAPI", "churn")
    assert (release.stable_service, release.canary_service) == (STABLE, CANARY)
    istio = route_release("churn", spec(serving={"router": {"type": "istio", "virtualService": "vs"}}))
    assert istio is not None and (istio.router, istio.route) == ("istio", "vs")
    assert route_release("churn", spec(serving={"router": {"type": "replicas"}})) is None
    assert route_release("churn", spec()) is None
    assert route_release("churn", {"model": {}}) is None  # invalid: nothing to act on
