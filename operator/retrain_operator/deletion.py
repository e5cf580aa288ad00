"""The finalizer step of a deleted policy: give the user's route back before the children go.

The policy's Deployments and Services are owned by it and go with it (garbage collection); the
route is the user's, so only the operator can undo the weights it set there. Until this step
succeeds the policy stays Terminating (kopf retries), so no request is ever split towards a
Service that no longer exists.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes.client.rest import ApiException

from .adapters.kube import Kube
from .core.release import route_release

log = logging.getLogger(__name__)


class RouteNotReleased(Exception):
    """The route could not be restored yet; the finalizer stays and the step is retried."""


def release_route(kube: Kube, body: dict[str, Any]) -> str | None:
    """Restore the policy's route; returns what was done, for the Event (None: nothing to do)."""
    meta = body["metadata"]
    release = route_release(meta["name"], body.get("spec") or {})
    if release is None:
        return None
    try:
        route = kube.read_route(meta["namespace"], release.router, release.route)
        if route is None:
            return None
        operations = release.operations(route)
        if not operations:
            return None
        kube.patch_route(meta["namespace"], release.router, release.route, operations)
    except ApiException as error:
        # 422: the route changed between read and patch (a `test` failed); anything else: retry too.
        raise RouteNotReleased(f"restoring {release.router} {release.route} failed: {error.status} "
                               f"{error.reason}") from error
    message = (f"{release.router} {release.route}: canary backend {release.canary_service} and mirror removed, "
               f"{release.stable_service} at full weight")
    log.info("%s/%s deleted: %s", meta["namespace"], meta["name"], message)
    return message
