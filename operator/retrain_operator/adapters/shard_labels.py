"""Puts the shard label (core/sharding.py LABEL) on the policies this shard's hash owns.

Each shard's kopf watch asks the API server only for policies labelled with its shard, so a policy
without the label of the current layout (a new one; every one after a resize; one a user relabelled)
would reach no shard. Every shard watches those unlabelled policies (normally none: the watch costs
nothing at rest) and labels the ones its hash owns; the label then moves the policy into its owner's
watch. Only `metadata.labels` is patched, never the spec. A failed patch is retried with backoff until
it succeeds or the policy is gone or labelled.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import partial

import kubernetes
from kubernetes.client.rest import ApiException

from retrain_contract.api import names

from ..core.sharding import LABEL, Shard
from .informer import Informer, Json, Key, key_of

log = logging.getLogger(__name__)

RETRY_MIN, RETRY_MAX = 1.0, 60.0


class ShardLabeler:
    def __init__(self, api_client: kubernetes.client.ApiClient, namespaces: list[str], shard: Shard):
        self.shard = shard
        self._custom = kubernetes.client.CustomObjectsApi(api_client)
        selector = shard.unlabelled_selector()
        scopes: list[str | None] = list(namespaces) or [None]
        self.informers = [] if selector is None else [Informer(
            "unlabelled RetrainPolicies" + (f" in {ns}" if ns else ""),
            partial(self._custom.list_namespaced_custom_object, names.GROUP, names.VERSION, ns, names.PLURAL)
            if ns else partial(self._custom.list_cluster_custom_object, names.GROUP, names.VERSION, names.PLURAL),
            label_selector=selector, keep=self._ours, on_change=self._changed) for ns in scopes]
        self._pending: dict[Key, tuple[float, float]] = {}  # policy -> (not before, backoff after a failure)
        self._wanted = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _ours(self, obj: Json) -> Json | None:
        namespace, name = key_of(obj)
        return {"metadata": {"namespace": namespace, "name": name}} if self.shard.owns_key(namespace, name) else None

    def _changed(self, kind: str, old: Json | None, new: Json | None) -> None:
        if new is not None:
            self.label(*key_of(new))

    def label(self, namespace: str, name: str) -> None:
        """Label `namespace/name` for this layout, soon (from any thread)."""
        if self.shard.count == 1:
            return
        with self._wanted:
            self._pending.setdefault((namespace, name), (0.0, RETRY_MIN))
            self._wanted.notify()

    def start(self) -> None:
        if not self.informers:
            return
        for informer in self.informers:
            informer.start()
        self._thread = threading.Thread(target=self._run, name="shard-labeler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._wanted:
            self._wanted.notify()
        for informer in self.informers:
            informer.stop()

    def join(self, timeout: float) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._wanted:
                key, delay = self._next()
                if key is None:
                    self._wanted.wait(delay)
                    continue
                _, backoff = self._pending.pop(key)
            if not self._patch(*key):  # a policy that cannot be labelled waits alone; the others go on
                with self._wanted:
                    self._pending.setdefault(key, (time.monotonic() + backoff, min(RETRY_MAX, backoff * 2)))

    def _next(self) -> tuple[Key | None, float | None]:
        """The policy to label now, or None and how long until one is due (None: until told)."""
        if self._stop.is_set():
            return None, 0.0
        now = time.monotonic()
        due = min(self._pending.items(), key=lambda item: item[1][0], default=None)
        if due is None:
            return None, None
        return (due[0], 0.0) if due[1][0] <= now else (None, due[1][0] - now)

    def _patch(self, namespace: str, name: str) -> bool:
        """True when done (labelled, or nothing left to label)."""
        value = self.shard.label_of(namespace, name)
        try:
            self._custom.patch_namespaced_custom_object(
                names.GROUP, names.VERSION, namespace, names.PLURAL, name, {"metadata": {"labels": {LABEL: value}}},
                _content_type="application/merge-patch+json")
        except ApiException as error:
            if error.status == 404:
                return True
            log.warning("labelling %s/%s %s=%s failed (%s %s); trying again", namespace, name, LABEL, value,
                        error.status, error.reason)
            return False
        except Exception as error:  # the API server unreachable for a moment
            log.warning("labelling %s/%s %s=%s failed (%r); trying again", namespace, name, LABEL, value, error)
            return False
        log.debug("labelled %s/%s %s=%s", namespace, name, LABEL, value)
        return True
