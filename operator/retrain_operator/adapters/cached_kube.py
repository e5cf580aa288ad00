"""Kube with its reads served by the operator's caches (adapters/caches.py), and its writes told to them.

reconcile.py is unchanged by the caches: it calls the same methods. Where a cache cannot answer (an
informer that has not listed, or may not) the read goes to the API server, as Kube's always did.
"""

from __future__ import annotations

from typing import Any

import kubernetes

from ..core.references import SECRET
from .caches import Caches, secret_fields
from .kube import Json, Kube


class CachedKube(Kube):
    def __init__(self, api_client: kubernetes.client.ApiClient, caches: Caches):
        super().__init__(api_client)
        self.caches = caches

    def get_policy(self, namespace: str, name: str) -> Json | None:
        body = self.caches.policies.get(namespace, name)
        return body if body is not None else super().get_policy(namespace, name)

    def write_policy_status(self, namespace: str, name: str, status: Json) -> Json:
        written = super().write_policy_status(namespace, name, status)
        self.caches.policies.wrote(namespace, name, written)
        return written

    def list_jobs(self, namespace: str, policy: str) -> list[Json]:
        jobs = self.caches.jobs_of(namespace, policy)
        return jobs if jobs is not None else super().list_jobs(namespace, policy)

    def create_job(self, job: Json) -> tuple[Json, bool]:
        created, new = super().create_job(job)
        self.caches.created_jobs.put(created)
        return created, new

    def read_secret(self, namespace: str, name: str) -> Json | None:
        return self.caches.referenced(SECRET, namespace, name, lambda: super(CachedKube, self).read_secret(
            namespace, name), fields=secret_fields)

    def read_deployment(self, namespace: str, name: str) -> Json | None:
        known, obj = self.caches.owned(self.caches.deployments, self.caches.written_deployments, namespace, name)
        return obj if known else super().read_deployment(namespace, name)

    def apply_deployment(self, manifest: Json, existing: Json | None) -> Json | None:
        written = super().apply_deployment(manifest, existing)
        if written is not None:
            self.caches.written_deployments.put(written)
        return written

    def read_service(self, namespace: str, name: str) -> Json | None:
        known, obj = self.caches.owned(self.caches.services, self.caches.written_services, namespace, name)
        return obj if known else super().read_service(namespace, name)

    def wrote_service(self, service: Json) -> None:
        self.caches.written_services.put(service)

    def read_route(self, namespace: str, kind: str, name: str) -> Json | None:
        return self.caches.referenced(kind, namespace, name,
                                      lambda: super(CachedKube, self).read_route(namespace, kind, name))

    def patch_route(self, namespace: str, kind: str, name: str, operations: list[Json]) -> Any:
        patched = super().patch_route(namespace, kind, name, operations)
        if patched:
            self.caches.route_written(kind, patched)
        return patched
