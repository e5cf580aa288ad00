"""Kubernetes API calls the operator makes, and nothing else (so RBAC can be read off it).

Raw JSON in and out (`_preload_content=False`): the decisions work on plain dicts shaped as
the API server sends them, not on the client's generated models.
"""

from __future__ import annotations

import json
from typing import Any

import kubernetes
from kubernetes.client.rest import ApiException

from ..api import names

Json = dict[str, Any]


def load_api_client(kubeconfig: str | None = None) -> kubernetes.client.ApiClient:
    """In-cluster config when running in a pod, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    return kubernetes.client.ApiClient(configuration)


def _json(response: Any) -> Json:
    return json.loads(response.data)


class Kube:
    def __init__(self, api_client: kubernetes.client.ApiClient):
        self.custom = kubernetes.client.CustomObjectsApi(api_client)
        self.batch = kubernetes.client.BatchV1Api(api_client)
        self.core = kubernetes.client.CoreV1Api(api_client)

    def get_policy(self, namespace: str, name: str) -> Json | None:
        try:
            return _json(self.custom.get_namespaced_custom_object(
                names.GROUP, names.VERSION, namespace, names.PLURAL, name, _preload_content=False))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def patch_policy_status(self, namespace: str, name: str, patch: Json) -> Json:
        return _json(self.custom.patch_namespaced_custom_object_status(
            names.GROUP, names.VERSION, namespace, names.PLURAL, name, patch, _preload_content=False))

    def list_jobs(self, namespace: str, policy: str) -> list[Json]:
        selector = f"{names.LABEL_POLICY}={policy},{names.LABEL_MANAGED_BY}={names.MANAGED_BY}"
        result = _json(self.batch.list_namespaced_job(namespace, label_selector=selector, _preload_content=False))
        return list(result.get("items") or [])

    def create_job(self, job: Json) -> tuple[Json, bool]:
        """Create the Job, or return the existing one of the same name (created=False)."""
        meta = job["metadata"]
        try:
            return _json(self.batch.create_namespaced_job(meta["namespace"], job, _preload_content=False)), True
        except ApiException as error:
            if error.status != 409:
                raise
        existing = _json(self.batch.read_namespaced_job(meta["name"], meta["namespace"], _preload_content=False))
        return existing, False

    def read_secret(self, namespace: str, name: str) -> Json | None:
        try:
            return _json(self.core.read_namespaced_secret(name, namespace, _preload_content=False))
        except ApiException as error:
            if error.status == 404:
                return None
            raise
