"""The kopf layer: wiring only.

Each policy gets one long-lived loop (a kopf daemon) that reconciles, then sleeps until the
plan's requeue time (jittered: core/requeue.py) or until something it cares about changes: the
policy itself (not the echo of its own status write), its Jobs, Deployments, or the Secrets and
route it names (adapters/caches.py wakes it). No handler decides anything; `reconcile` gathers,
the core decides.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import kopf

from retrain_contract.api import names

from . import deletion
from .adapters import heap_trim, metrics
from .core.requeue import next_look
from .reconcile import Context, reconcile

log = logging.getLogger(__name__)

# Set by the CLI before kopf starts (kopf handlers are module-level by design).
CONTEXT: Context | None = None
ERROR_BACKOFF = 10.0  # after the first failed reconcile; doubled for each further one in a row
ERROR_BACKOFF_CAP = 300.0
CACHES_READY_TIMEOUT = 30.0  # past it, reads an informer cannot answer yet go to the API server
_caches_ready: asyncio.Task[list[str]] | None = None
HEAP_TRIM_INTERVAL = heap_trim.INTERVAL  # set by the CLI (--heap-trim-interval); 0: never
_trimming: asyncio.Task[None] | None = None


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
    # The API server sends this shard only its own policies (core/sharding.py): its memory follows them.
    # Only with the caches, whose labeler puts the shard label on new policies.
    if CONTEXT is not None and CONTEXT.caches is not None and (selector := CONTEXT.shard.watch_selector()):
        settings.watching.label_selectors[names.GROUP, names.PLURAL] = selector


@kopf.on.startup()
async def start_caches(**_: Any) -> None:
    """The informers start before any policy's loop; each loop's first reconcile waits for their lists."""
    global _caches_ready
    assert CONTEXT is not None, "retrain_operator.handlers.CONTEXT must be set before kopf starts"
    if CONTEXT.caches is None:
        return
    loop = asyncio.get_running_loop()
    CONTEXT.caches.start(lambda namespace, name: loop.call_soon_threadsafe(WAKEUPS.wake, namespace, name))
    _caches_ready = asyncio.create_task(CONTEXT.caches.ready(CACHES_READY_TIMEOUT))


@kopf.on.startup()
async def start_heap_trim(**_: Any) -> None:
    global _trimming
    _trimming = asyncio.create_task(heap_trim.keep_trimming(HEAP_TRIM_INTERVAL))


@kopf.on.startup()
async def start_notifier(**_: Any) -> None:
    """spec.notify's deliveries; the sweep of what earlier operators left pending waits for the caches."""
    assert CONTEXT is not None, "retrain_operator.handlers.CONTEXT must be set before kopf starts"
    if CONTEXT.notifier is not None:
        CONTEXT.notifier.start(ready=_caches_listed)


@kopf.on.cleanup()
async def stop_notifier(**_: Any) -> None:
    if CONTEXT is not None and CONTEXT.notifier is not None:
        await CONTEXT.notifier.stop()


@kopf.on.cleanup()
async def stop_heap_trim(**_: Any) -> None:
    if _trimming is not None:
        _trimming.cancel()


@kopf.on.cleanup()
def stop_caches(**_: Any) -> None:
    if CONTEXT is not None and CONTEXT.caches is not None:
        late = CONTEXT.caches.stop()
        if late:
            log.warning("informers still running at exit: %s", ", ".join(late))


async def _caches_listed() -> None:
    if _caches_ready is None:
        return
    late = await asyncio.shield(_caches_ready)
    if late:
        log.warning("informers not listed after %ss (%s); their reads go to the API server until they are",
                    CACHES_READY_TIMEOUT, ", ".join(late))


def owned(name: str, namespace: str, labels: Mapping[str, str], **_: Any) -> bool:
    """kopf's `when=` filter: the policies of this replica's shard (core/sharding.py); all of them by default."""
    return CONTEXT is None or CONTEXT.shard.owns(namespace, name, labels)


def mislabelled(name: str, namespace: str, labels: Mapping[str, str], **_: Any) -> bool:
    """A policy in this shard's watch whose hash is another shard's (its label set by hand or copied)."""
    return CONTEXT is not None and CONTEXT.caches is not None and CONTEXT.shard.mislabelled(namespace, name, labels)


async def _sleep(stopped: kopf.DaemonStopped, wake: asyncio.Event, delay: float) -> None:
    waiters = [asyncio.ensure_future(stopped.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


@kopf.daemon(names.GROUP, names.VERSION, names.PLURAL, cancellation_timeout=10.0, when=owned)
async def policy_loop(name: str, namespace: str, stopped: kopf.DaemonStopped, **_: Any) -> None:
    assert CONTEXT is not None, "retrain_operator.handlers.CONTEXT must be set before kopf starts"
    wake = WAKEUPS.event(namespace, name)
    failures = 0
    await _caches_listed()
    try:
        while not stopped:
            wake.clear()
            try:
                delay = await reconcile(CONTEXT, namespace, name)
                failures = 0
                metrics.reconciled(namespace, name)
            except Exception:
                failures += 1
                delay = error_backoff(failures)
                log.exception("reconcile of %s/%s failed (%d in a row); retrying in %ss", namespace, name, failures,
                              delay)
                metrics.RECONCILE_ERRORS.labels(namespace=namespace, policy=name).inc()
            await _sleep(stopped, wake, next_look(delay, CONTEXT.max_requeue, random.random()))
    finally:
        WAKEUPS.forget(namespace, name)
        metrics.forget(namespace, name)


@kopf.on.event(names.GROUP, names.VERSION, names.PLURAL, when=mislabelled)
def policy_mislabelled(name: str, namespace: str, **_: Any) -> None:
    """Relabelled for the shard its hash falls on, which then reconciles it (this one never does)."""
    assert CONTEXT is not None and CONTEXT.caches is not None
    CONTEXT.caches.labeler.label(namespace, name)


# Not filtered by `owned`, on purpose: every replica that sees a policy must agree that it needs the (one)
# finalizer. With a `when=` here, kopf in a replica that sees but does not own a policy (one outside its
# selector, or one labelled for its shard whose hash is another's) would find the finalizer needless and remove
# it, the owner would add it back: a PATCH war (nolar/kopf#664). The step is idempotent and needs no state (a
# JSON patch with a `test`), so whichever replica runs it first releases the route; the others find nothing
# to do. With several shards, only the shard whose label a policy carries sees it: its deletion waits for
# that shard to run.
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


@kopf.on.event(names.GROUP, names.VERSION, names.PLURAL, when=owned)
async def policy_changed(event: Mapping[str, Any], name: str, namespace: str, **_: Any) -> None:
    """Kept for the reconcile to read; wakes the loop unless it is the echo of the loop's own status write.

    async, so it runs on the event loop: a sync handler runs in kopf's thread pool, and an asyncio.Event set
    from another thread wakes its waiter only when the loop next wakes for something else."""
    news = True
    if CONTEXT is not None and CONTEXT.caches is not None:
        news = CONTEXT.caches.policy_event(event.get("type"), event.get("object") or {})
    if news:
        WAKEUPS.wake(namespace, name)
