"""What deleting a policy must undo before its children go: the weights it put on the user's route.

Without this step a route deleted mid-rollout would keep sending a share of its traffic to the
canary Service the garbage collector is about to delete (a 500 for every such request).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from retrain_contract.api.spec import PolicySpec

from ..api.validation import problems
from . import routes, serving

Json = dict[str, Any]


@dataclass(frozen=True)
class RouteRelease:
    router: str  # gatewayAPI | istio
    route: str
    stable_service: str
    canary_service: str

    def operations(self, route: Json) -> list[Json]:
        """The JSON patch that leaves `route` as the user wrote it ([] when there is nothing of ours)."""
        if self.router == "gatewayAPI":
            return routes.httproute_release(route, self.stable_service, self.canary_service)
        return routes.virtualservice_release(route, self.stable_service, self.canary_service)


def route_release(policy: str, spec: Json) -> RouteRelease | None:
    """The route this policy may have weighted, or None (no serving, the replica router, an invalid spec)."""
    if problems(spec):
        return None
    parsed = PolicySpec.from_dict(spec)
    if parsed.serving is None:
        return None
    router = parsed.serving.router
    name = router.http_route if router.type == "gatewayAPI" else router.virtual_service if router.type == "istio" \
        else None
    if not name:
        return None
    return RouteRelease(router=router.type, route=name,
                        stable_service=serving.service_name(policy, serving.STABLE),
                        canary_service=serving.service_name(policy, serving.CANARY))
