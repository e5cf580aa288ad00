"""Delivers the notifications a reconcile's Events owe (core/notifications/), off the reconcile's path.

A reconcile hands over the Events it created and goes on: `submit` never waits. A few workers take
them from a bounded queue, one decision's Events in order, and POST each to its notifiers with retries
(core/notifications/retry.py), then mark the Event `sent` or `failed` (outbox.py). Nothing is lost
when the queue is full or the process dies: the Events stay `pending` in the API server, and the sweep
(at start, then every `sweep_interval`) lists them and delivers them.

A notifier that gives up posts a Warning Event `NotificationFailed` on the policy (never notified
itself) and logs one line. Neither, nor any other log line, holds the URL or a header: the notifier's
name and the webhook's host at most.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiohttp
from kubernetes.client.rest import ApiException

from retrain_contract.api.spec import NotifierSpec

from ..core import event_records
from ..core.notifications import outbox, payloads, retry, targets
from ..core.notifications.outbox import Pending
from ..core.notifications.select import NOTIFICATION_FAILED
from ..core.notifications.targets import Problem, Target
from ..core.sharding import Shard
from . import metrics, webhooks
from .clock import Clock
from .kube import Json, Kube

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NotifierSettings:
    workers: int = 4
    queue: int = 1000  # decisions' batches of Events waiting; beyond, the sweep delivers them later
    timeout: float = webhooks.TIMEOUT  # per attempt
    max_attempts: int = retry.MAX_ATTEMPTS
    base_delay: float = retry.BASE_DELAY
    sweep_interval: float = 120.0
    remembered: int = 10000  # Events closed lately, which a sweep listed before they were closed must skip


async def _target(kube: Kube, namespace: str, notifier: NotifierSpec) -> tuple[Target | None, Problem | None]:
    """The notifier's webhook from its Secrets, read as the reconcile reads them (from the cache), each time."""
    url_secret = await asyncio.to_thread(kube.read_secret, namespace, notifier.url.name)
    headers_secret = (await asyncio.to_thread(kube.read_secret, namespace, notifier.headers_secret)
                      if notifier.headers_secret else None)
    return targets.resolve(notifier, url_secret, headers_secret, namespace)


async def webhook_problems(kube: Kube, namespace: str, notifiers: Sequence[NotifierSpec]) -> tuple[Problem, ...]:
    """What keeps each notifier from its webhook (for the NotifiersReady condition)."""
    found = [(await _target(kube, namespace, notifier))[1] for notifier in notifiers]
    return tuple(problem for problem in found if problem)


def _notifiers(policy: Json) -> dict[str, NotifierSpec]:
    """spec.notify as it is now, read leniently: a notifier that cannot be read is not there."""
    found = {}
    for item in (policy.get("spec") or {}).get("notify") or []:
        try:
            notifier = NotifierSpec.from_dict(item)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        found[notifier.name] = notifier
    return found


class Notifier:
    def __init__(self, kube: Kube, clock: Clock, shard: Shard | None = None, namespaces: Sequence[str] = (),
                 instance: str = "", settings: NotifierSettings | None = None):
        self.kube, self.clock, self.shard = kube, clock, shard or Shard()
        self.namespaces = list(namespaces)
        self.instance = instance
        self.settings = settings or NotifierSettings()
        self._queue: asyncio.Queue[list[Json]] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._known: set[str] = set()  # Event names queued or being delivered
        self._closed: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._full_said = False

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, ready: Callable[[], Awaitable[None]] | None = None) -> None:
        """Start the workers, and the sweep once `ready` (the caches' first lists) has returned."""
        self._queue = asyncio.Queue(self.settings.queue)
        self._session = webhooks.session()
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self.settings.workers)]
        self._tasks.append(asyncio.create_task(self._sweep_forever(ready)))

    async def stop(self) -> None:
        """Stop at once: what is not delivered yet stays pending on its Event for the next operator."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._session is not None:
            await self._session.close()

    # -- intake --------------------------------------------------------------------------------------

    def submit(self, events: list[Json]) -> None:
        """Queue one decision's pending Events (delivered in this order); never waits."""
        batch = [e for e in events if (name := e["metadata"]["name"]) not in self._known and name not in self._closed]
        if not batch or self._queue is None:
            return
        try:
            self._queue.put_nowait(batch)
        except asyncio.QueueFull:
            if not self._full_said:
                log.warning("notification queue full (%d decisions waiting); the rest stays pending on its Events "
                            "and is delivered by the next sweep", self.settings.queue)
                self._full_said = True
            return
        self._full_said = False
        self._known.update(e["metadata"]["name"] for e in batch)

    async def sweep(self) -> int:
        """Queue every pending Event of the watched namespaces (after a restart, or a full queue)."""
        found: list[Json] = []
        for namespace in self.namespaces or [None]:
            try:
                found += await asyncio.to_thread(self.kube.list_events, namespace, outbox.PENDING_SELECTOR)
            except ApiException as error:
                log.warning("listing the pending notifications%s failed: %s %s",
                            f" in {namespace}" if namespace else "", error.status, error.reason)
        batches: dict[tuple[str, str], list[Json]] = collections.defaultdict(list)
        for event in found:
            involved = event.get("involvedObject") or {}
            key = (str(involved.get("namespace")), str(involved.get("name")))
            if self.shard.owns_key(*key):  # another shard's policy: that shard delivers it
                batches[key].append(event)
        for batch in batches.values():
            batch.sort(key=lambda e: (str(e.get("firstTimestamp") or ""), str(e["metadata"]["name"])))
            self.submit(batch)
        return len(found)

    async def _sweep_forever(self, ready: Callable[[], Awaitable[None]] | None) -> None:
        if ready is not None:
            await ready()
        while True:
            try:
                await self.sweep()
            except Exception:  # the next sweep tries again; nothing is lost meanwhile
                log.exception("the sweep of pending notifications failed")
            await asyncio.sleep(self.settings.sweep_interval)

    # -- delivery ------------------------------------------------------------------------------------

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            batch = await self._queue.get()
            try:
                for event in batch:
                    await self._event(event)
            finally:
                self._known.difference_update(e["metadata"]["name"] for e in batch)
                self._queue.task_done()

    async def _event(self, event: Json) -> None:
        pending = outbox.read(event)
        if pending is None:
            return
        try:
            state = await self._deliver(pending)
        except Exception:  # the API server, most likely: the Event stays pending, the sweep tries again
            log.exception("%s/%s: delivering notification %s failed; it is tried again later", pending.namespace,
                          pending.policy, pending.id)
            return
        if state is not None:
            self._closed[pending.id] = None
            while len(self._closed) > self.settings.remembered:
                self._closed.popitem(last=False)

    async def _deliver(self, pending: Pending) -> str | None:
        """Every notifier of one Event; returns how the Event was closed (None: left to another shard)."""
        policy = await asyncio.to_thread(self.kube.get_policy, pending.namespace, pending.policy)
        meta = (policy or {}).get("metadata") or {}
        if policy is None or (pending.uid and meta.get("uid") != pending.uid):
            await self._close(pending, outbox.DROPPED, {"*": "the policy was deleted"})
            return outbox.DROPPED
        if not self.shard.owns(pending.namespace, pending.policy, meta.get("labels") or {}):
            return None
        notifiers = _notifiers(policy)
        results: dict[str, str] = {}
        failed = sent = False
        for name in pending.outgoing.notifiers:
            notifier = notifiers.get(name)
            if notifier is None:
                results[name] = "not sent: no longer in spec.notify"
                continue
            ok, results[name] = await self._notify(pending, policy, notifier)
            sent, failed = sent or ok, failed or not ok
        state = outbox.FAILED if failed else outbox.SENT if sent else outbox.DROPPED
        await self._close(pending, state, results)
        return state

    async def _notify(self, pending: Pending, policy: Json, notifier: NotifierSpec) -> tuple[bool, str]:
        """One notifier: its Secrets, then the POST and its retries; (delivered, result)."""
        target, problem = await _target(self.kube, pending.namespace, notifier)
        if target is None:
            detail = problem[1] if problem else "no webhook"
            await self._failed(pending, policy, notifier.name, None, detail)
            return False, f"not sent: {detail}"
        body = payloads.body(target.type, pending)
        assert self._session is not None
        for attempt in range(1, self.settings.max_attempts + 1):
            answer = await webhooks.post(self._session, target, body, pending.id, self.settings.timeout)
            verdict = retry.verdict(answer, attempt, self.settings.max_attempts)
            if verdict == retry.SENT:
                metrics.notified(pending.namespace, pending.policy, notifier.name, "sent")
                log.info("%s/%s: %s sent to notifier %s (%s)%s", pending.namespace, pending.policy, pending.reason,
                         notifier.name, target.host, f" at attempt {attempt}" if attempt > 1 else "")
                return True, f"sent ({answer.describe()}, attempt {attempt})"
            if verdict == retry.GIVE_UP:
                detail = f"{answer.describe()} at attempt {attempt} of {self.settings.max_attempts}"
                await self._failed(pending, policy, notifier.name, target.host, detail)
                return False, f"failed: {detail}"
            metrics.notified(pending.namespace, pending.policy, notifier.name, "retried")
            await asyncio.sleep(retry.delay(attempt, answer, dt.datetime.now(dt.UTC), self.settings.base_delay))
        raise AssertionError("unreachable: the last attempt gives up")

    async def _failed(self, pending: Pending, policy: Json, notifier: str, host: str | None, detail: str) -> None:
        """Given up: counted, one log line, one Warning Event on the policy."""
        metrics.notified(pending.namespace, pending.policy, notifier, "failed")
        log.warning("%s/%s: %s (%s) not delivered to notifier %s%s: %s", pending.namespace, pending.policy,
                    pending.reason, pending.id, notifier, f" ({host})" if host else "", detail)
        message = f"{pending.reason} ({pending.id}) was not delivered to notifier {notifier}: {detail}"
        record = event_records.event_object(policy, f"{pending.id}\n{notifier}", "Warning", NOTIFICATION_FAILED,
                                            message, self.clock.now(), self.instance)
        try:
            await asyncio.to_thread(self.kube.post_event, record)
        except ApiException as error:
            log.error("%s/%s: the API server refused Event %s (%s %s)", pending.namespace, pending.policy,
                      NOTIFICATION_FAILED, error.status, error.reason)

    async def _close(self, pending: Pending, state: str, results: dict[str, str]) -> None:
        await asyncio.to_thread(self.kube.patch_event, pending.namespace, pending.id, outbox.done(state, results))

