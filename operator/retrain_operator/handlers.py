"""The kopf layer: wiring only.

Each policy gets one long-lived loop (a kopf daemon) that reconciles, then sleeps until the
plan's requeue time or until something it cares about changes: the policy itself or one of
its Jobs. No handler decides anything; `reconcile` gathers, the core decides.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import kopf

from retrain_contract.api import names

from . import deletion
from .adapters import metrics
from .api import kubenames
from .reconcile import Context, reconcile

log = logging.getLogger(__name__)

# Set by the CLI before kopf starts (kopf handlers are module-level by design).
CONTEXT: Context | None = None
ERROR_BACKOFF = 10.0  # after the first failed reconcile; doubled for each further one in a row
ERROR_BACKOFF_CAP = 300.0


def error_backoff(failures: int) -> float:
    """Seconds to wait after `failures` reconciles in a row raised: 10, 20, 40, ... up to 300."""
    return min(ERROR_BACKOFF_CAP, ERROR_BACKOFF * 2 ** max(0, failures - 1))


class Wakeups:
    """One asyncio.Event per policy, set when something the policy's loop waits for happened."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, str], asyncio.Event] = defaultdict(asyncio.Event)

    def event(self, namespace: str, name: str) -> asyncio.Event:
        return self._events[(namespace, name)]

    def wake(self, namespace: str | None, name: str | None) -> None:
        if namespace and name and (namespace, name) in self._events:
            self._events[(namespace, name)].set()

    def forget(self, namespace: str, name: str) -> None:
        self._events.pop((namespace, name), None)


WAKEUPS = Wakeups()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = f"{names.GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=names.GROUP)
    settings.posting.level = logging.INFO
    # The "From" of every Event in `kubectl describe`; the instance is the pod, for several replicas.
    settings.posting.reporting_component = names.MANAGED_BY
    settings.posting.reporting_instance = os.environ.get("HOSTNAME") or names.MANAGED_BY
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330


async def _sleep(stopped: kopf.DaemonStopped, wake: asyncio.Event, delay: float) -> None:
    waiters = [asyncio.ensure_future(stopped.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


@kopf.daemon(names.GROUP, names.VERSION, names.PLURAL, cancellation_timeout=10.0)
async def policy_loop(name: str, namespace: str, stopped: kopf.DaemonStopped, **_: Any) -> None:
    assert CONTEXT is not None, "retrain_operator.handlers.CONTEXT must be set before kopf starts"
    wake = WAKEUPS.event(namespace, name)
    failures = 0
    try:
        while not stopped:
            wake.clear()
            try:
                delay = await reconcile(CONTEXT, namespace, name)
                failures = 0
            except Exception:
                failures += 1
                delay = error_backoff(failures)
                log.exception("reconcile of %s/%s failed (%d in a row); retrying in %ss", namespace, name, failures,
                              delay)
                metrics.RECONCILE_ERRORS.labels(namespace=namespace, policy=name).inc()
            await _sleep(stopped, wake, delay)
    finally:
        WAKEUPS.forget(namespace, name)
        metrics.forget(namespace, name)


@kopf.on.delete(names.GROUP, names.VERSION, names.PLURAL)
async def policy_deleted(body: kopf.Body, **_: Any) -> None:
    """The finalizer step: the user's route loses our canary backend before the Services go."""
    assert CONTEXT is not None, "retrain_operator.handlers.CONTEXT must be set before kopf starts"
    try:
        done = await asyncio.to_thread(deletion.release_route, CONTEXT.kube, dict(body))
    except deletion.RouteNotReleased as error:
        kopf.warn(body, reason="RouteNotReleased", message=f"{error}; the policy is deleted once it succeeds")
        raise kopf.TemporaryError(str(error), delay=10) from error
    if done:
        kopf.info(body, reason="RouteReleased", message=done)


@kopf.on.event(names.GROUP, names.VERSION, names.PLURAL)
def policy_changed(name: str, namespace: str, **_: Any) -> None:
    WAKEUPS.wake(namespace, name)


@kopf.on.event("batch", "v1", "jobs", labels={names.LABEL_MANAGED_BY: names.MANAGED_BY})
def job_changed(namespace: str, meta: Mapping[str, Any], **_: Any) -> None:
    # The owner's name, not the policy label: that one is hashed for names longer than 63.
    WAKEUPS.wake(namespace, kubenames.policy_of(meta))


@kopf.on.event("apps", "v1", "deployments", labels={names.LABEL_MANAGED_BY: names.MANAGED_BY})
def deployment_changed(namespace: str, meta: Mapping[str, Any], **_: Any) -> None:
    """Model server pods became Ready (or stopped being): a rollout may move on."""
    WAKEUPS.wake(namespace, kubenames.policy_of(meta))
