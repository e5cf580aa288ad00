"""The operator's view of the cluster: informers for what it reads on every reconcile, and who to wake.

Jobs, Deployments and Services carry the operator's managed-by label and are listed and watched by it.
Secrets and routes belong to users: they are watched whole (namespaces as the operator's), but only
those some policy names are kept (core/references.py), and one named before it was seen is read once
directly. A change to any of them wakes the policies it concerns. An informer that has not listed yet,
or cannot (403, a route CRD not installed), is bypassed: those reads go to the API server as before.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import kubernetes

from retrain_contract.api import names

from ..api import kubenames
from ..core.references import SECRET, Ref, ReferenceIndex, references
from ..core.sharding import Shard
from .informer import Informer, Json, key_of, trim
from .kube import ROUTES
from .policy_cache import PolicyCache
from .shard_labels import ShardLabeler
from .written import Written

log = logging.getLogger(__name__)

Lister = Callable[..., Any]
Wake = Callable[[str, str], None]  # namespace, policy name; must be safe to call from any thread
OWNED = f"{names.LABEL_MANAGED_BY}={names.MANAGED_BY}"


def secret_fields(obj: Json) -> Json:
    """A Secret as the operator uses it: its data, and enough metadata to name it."""
    meta = obj.get("metadata") or {}
    kept = {"metadata": {key: meta[key] for key in ("name", "namespace", "uid", "resourceVersion") if key in meta},
            "type": obj.get("type"), "data": obj.get("data") or {}}
    if obj.get("stringData"):
        kept["stringData"] = obj["stringData"]
    return kept


class Kind:
    """One kind across the operator's namespaces: an informer per namespace, or one for all of them."""

    def __init__(self, what: str, listers: dict[str | None, Callable[..., Any]], **options: Any):
        self.what = what
        self.informers = {ns: Informer(f"{what}" + (f" in {ns}" if ns else ""), lister, **options)
                          for ns, lister in listers.items()}

    def informer(self, namespace: str) -> Informer | None:
        found = self.informers.get(namespace)  # not `or`: an Informer holding nothing is falsy (len 0)
        return found if found is not None else self.informers.get(None)

    def usable(self, namespace: str) -> Informer | None:
        """The informer that holds `namespace`'s objects, if it has listed them and can."""
        informer = self.informer(namespace)
        return informer if informer is not None and informer.synced() and informer.available else None

    def all(self) -> list[Informer]:
        return list(self.informers.values())


class Caches:
    def __init__(self, api_client: kubernetes.client.ApiClient, namespaces: Sequence[str],
                 shard: Shard | None = None):
        self.shard = shard or Shard()
        self.wake: Wake = lambda namespace, name: None  # set by start()
        self.policies = PolicyCache()
        self.refs = ReferenceIndex()
        self._refs_lock = threading.Lock()
        self.created_jobs = Written()
        self.written_deployments = Written()
        self.written_services = Written()
        self.missing: set[Ref] = set()  # named, read directly, not found: the informer says when they appear
        self._jobs_by_policy: dict[tuple[str, str], set[str]] = {}
        self._jobs_lock = threading.Lock()
        scopes: list[str | None] = list(namespaces) or [None]
        batch = kubernetes.client.BatchV1Api(api_client)
        apps = kubernetes.client.AppsV1Api(api_client)
        core = kubernetes.client.CoreV1Api(api_client)
        custom = kubernetes.client.CustomObjectsApi(api_client)

        def listers(namespaced: Callable[..., Any], cluster: Callable[..., Any]) -> dict[str | None, Lister]:
            return {ns: partial(namespaced, ns) if ns else cluster for ns in scopes}

        self.jobs = Kind("Jobs", listers(batch.list_namespaced_job, batch.list_job_for_all_namespaces),
                         label_selector=OWNED, keep=self._in_shard, on_change=self._job_changed)
        self.deployments = Kind("Deployments", listers(apps.list_namespaced_deployment,
                                                       apps.list_deployment_for_all_namespaces),
                                label_selector=OWNED, keep=self._in_shard,
                                on_change=self._owned_changed(self.written_deployments))
        self.services = Kind("Services", listers(core.list_namespaced_service, core.list_service_for_all_namespaces),
                             label_selector=OWNED, keep=self._in_shard,
                             on_change=self._owned_changed(self.written_services, wake=False))
        self.secrets = Kind("Secrets", listers(core.list_namespaced_secret, core.list_secret_for_all_namespaces),
                            keep=self._keeper(SECRET, secret_fields), on_change=self._referenced_changed(SECRET))
        self.routes: dict[str, Kind] = {}
        for router, (group, version, plural) in ROUTES.items():
            self.routes[router] = Kind(plural, {
                ns: partial(custom.list_namespaced_custom_object, group, version, ns, plural) if ns else
                partial(custom.list_cluster_custom_object, group, version, plural) for ns in scopes},
                keep=self._keeper(router, trim), on_change=self._referenced_changed(router))
        self.labeler = ShardLabeler(api_client, list(namespaces), self.shard)

    def kinds(self) -> list[Kind]:
        return [self.jobs, self.deployments, self.services, self.secrets, *self.routes.values()]

    def informers(self) -> list[Informer]:
        return [informer for kind in self.kinds() for informer in kind.all()] + self.labeler.informers

    def start(self, wake: Wake) -> None:
        self.wake = wake
        for kind in self.kinds():
            for informer in kind.all():
                informer.start()
        self.labeler.start()

    def stop(self, timeout: float = 5.0) -> list[str]:
        """Stop every informer and wait for them (within `timeout` in all); returns those still running."""
        for kind in self.kinds():
            for informer in kind.all():
                informer.stop()
        self.labeler.stop()
        deadline = time.monotonic() + timeout
        late = [informer.what for informer in self.informers()
                if not informer.join(max(0.0, deadline - time.monotonic()))]
        return late if self.labeler.join(max(0.0, deadline - time.monotonic())) else [*late, "shard labeler"]

    async def ready(self, timeout: float) -> list[str]:
        """Wait until every informer has listed once (or `timeout`); returns those that have not."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            late = [informer.what for informer in self.informers() if not informer.synced()]
            if not late or loop.time() >= deadline:
                return late
            await asyncio.sleep(0.05)

    def _in_shard(self, obj: Json) -> Json | None:
        """One of our Jobs, Deployments or Services, if its policy is this shard's by hash (it carries none of
        the policy's labels: a selector shard keeps those of every policy its hash owns)."""
        policy = kubenames.policy_of(obj.get("metadata"))
        if policy is not None and not self.shard.owns_key(key_of(obj)[0], policy):
            return None
        return trim(obj)

    # -- policies ---------------------------------------------------------------------------------

    def policy_event(self, event_type: str | None, body: Json) -> bool:
        """A watch event of a policy (kopf's); True when its loop should look again."""
        namespace, name = key_of(body)
        with self._refs_lock:
            if event_type == "DELETED":
                self.refs.forget((namespace, name))
            else:
                self.refs.set((namespace, name), references(namespace, body.get("spec")))
        return self.policies.observe(event_type, body)

    # -- Jobs -------------------------------------------------------------------------------------

    def _job_changed(self, event: str, old: Json | None, new: Json | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        namespace, name = key_of(obj)
        policy = kubenames.policy_of(obj.get("metadata"))
        self.created_jobs.seen(namespace, name)
        if policy:
            with self._jobs_lock:
                members = self._jobs_by_policy.setdefault((namespace, policy), set())
                if new is None:
                    members.discard(name)
                    if not members:
                        del self._jobs_by_policy[(namespace, policy)]
                else:
                    members.add(name)
            self.wake(namespace, policy)

    def jobs_of(self, namespace: str, policy: str) -> list[Json] | None:
        """The policy's Jobs (by owner, annotation or label), or None when the informer cannot say."""
        informer = self.jobs.usable(namespace)
        if informer is None:
            return None
        with self._jobs_lock:
            members = sorted(self._jobs_by_policy.get((namespace, policy), ()))
        found = [job for name in members if (job := informer.get(namespace, name)) is not None]
        known = {key_of(job)[1] for job in found}
        for job in self.created_jobs.in_namespace(namespace):
            if key_of(job)[1] not in known and kubenames.policy_of(job.get("metadata")) == policy:
                found.append(job)
        return found

    # -- Deployments and Services -----------------------------------------------------------------

    def _owned_changed(self, written: Written, wake: bool = True) -> Callable[[str, Json | None, Json | None], None]:
        def changed(event: str, old: Json | None, new: Json | None) -> None:
            obj = new if new is not None else old
            assert obj is not None
            namespace, name = key_of(obj)
            written.seen(namespace, name)
            policy = kubenames.policy_of(obj.get("metadata"))
            if wake and policy:
                self.wake(namespace, policy)
        return changed

    @staticmethod
    def owned(kind: Kind, written: Written, namespace: str, name: str) -> tuple[bool, Json | None]:
        """(known, object): known is False when the informer cannot say and the API must be asked."""
        informer = kind.usable(namespace)
        if informer is None:
            return False, None
        obj = informer.get(namespace, name)
        return True, obj if obj is not None else written.get(namespace, name)

    # -- Secrets and routes ------------------------------------------------------------------------

    def _keeper(self, kind: str, fields: Callable[[Json], Json]) -> Callable[[Json], Json | None]:
        def keep(obj: Json) -> Json | None:
            namespace, name = key_of(obj)
            return fields(obj) if Ref(kind, namespace, name) in self.refs else None
        return keep

    def _referenced_changed(self, kind: str) -> Callable[[str, Json | None, Json | None], None]:
        def changed(event: str, old: Json | None, new: Json | None) -> None:
            obj = new if new is not None else old
            assert obj is not None
            ref = Ref(kind, *key_of(obj))
            with self._refs_lock:
                self.missing.discard(ref)
                policies = self.refs.policies(ref)
            for namespace, name in policies:
                self.wake(namespace, name)
        return changed

    def referenced(self, kind: str, namespace: str, name: str,
                   read: Callable[[], Json | None], fields: Callable[[Json], Json] = trim) -> Json | None:
        """A Secret or route a policy names: from its informer, else read once and kept."""
        informer = (self.secrets if kind == SECRET else self.routes[kind]).usable(namespace)
        if informer is None:
            return read()
        obj = informer.get(namespace, name)
        ref = Ref(kind, namespace, name)
        if obj is not None:
            return obj
        with self._refs_lock:
            if ref in self.missing:
                return None
        obj = read()
        if obj is None:
            with self._refs_lock:
                self.missing.add(ref)
            return None
        informer.put_if_absent(obj)
        return informer.get(namespace, name) or fields(obj)

    def route_written(self, router: str, obj: Json) -> None:
        """Our own patch of a route: its answer is the route now (the watch event follows)."""
        informer = self.routes[router].usable(key_of(obj)[0])
        if informer is not None and Ref(router, *key_of(obj)) in self.refs:
            informer.put(obj)
