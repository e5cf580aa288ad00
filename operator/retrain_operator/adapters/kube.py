"""Kubernetes API calls the operator makes, and nothing else (so RBAC can be read off it).

Raw JSON in and out (`_preload_content=False`): the decisions work on plain dicts shaped as
the API server sends them, not on the client's generated models.
"""

from __future__ import annotations

import json
from typing import Any

import kubernetes
from kubernetes.client.rest import ApiException
from kubernetes.utils.quantity import parse_quantity

from retrain_contract.api import names

from ..api import kubenames
from ..core import serving

Json = dict[str, Any]


class NotOwned(Exception):
    """An object of the name the operator needs exists but is not controlled by the policy: never adopted."""

    def __init__(self, kind: str, name: str, message: str):
        super().__init__(message)
        self.kind, self.name, self.message = kind, name, message


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
        self.apps = kubernetes.client.AppsV1Api(api_client)

    def get_policy(self, namespace: str, name: str) -> Json | None:
        try:
            return _json(self.custom.get_namespaced_custom_object(
                names.GROUP, names.VERSION, namespace, names.PLURAL, name, _preload_content=False))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def write_policy_status(self, namespace: str, name: str, status: Json) -> Json:
        """Replace the whole status (a JSON patch `add /status`).

        A merge patch would keep every nested key the new status lacks: a new rollout would
        inherit the last one's `wentLive`, `reason` and `finishedAt`."""
        operations = [{"op": "add", "path": "/status", "value": status}]
        return _json(self.custom.patch_namespaced_custom_object_status(
            names.GROUP, names.VERSION, namespace, names.PLURAL, name, operations,
            _content_type="application/json-patch+json", _preload_content=False))

    def post_event(self, event: Json) -> bool:
        """Create the Event; False when one of its name exists already (posted before a crash or a retry)."""
        try:
            self.core.create_namespaced_event(event["metadata"]["namespace"], event, _preload_content=False)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    def list_events(self, namespace: str | None, label_selector: str) -> list[Json]:
        """Events with these labels (the notifications still owed: core/notifications/outbox.py)."""
        if namespace:
            result = self.core.list_namespaced_event(namespace, label_selector=label_selector, _preload_content=False)
        else:
            result = self.core.list_event_for_all_namespaces(label_selector=label_selector, _preload_content=False)
        return list(_json(result).get("items") or [])

    def patch_event(self, namespace: str, name: str, patch: Json) -> bool:
        """Merge-patch one of the operator's Events; False when it is gone (expired, or its namespace deleted)."""
        try:
            self.core.patch_namespaced_event(name, namespace, patch, _content_type="application/merge-patch+json",
                                             _preload_content=False)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    def list_jobs(self, namespace: str, policy: str) -> list[Json]:
        selector = f"{names.LABEL_POLICY}={kubenames.policy_label(policy)},{names.LABEL_MANAGED_BY}={names.MANAGED_BY}"
        result = _json(self.batch.list_namespaced_job(namespace, label_selector=selector, _preload_content=False))
        return list(result.get("items") or [])

    def create_job(self, job: Json) -> tuple[Json, bool]:
        """Create the Job, or return the existing one of the same name (created=False) if this policy owns it.

        One this policy does not control (a deleted policy's of the same name, someone else's) raises
        NotOwned: adopting it would record another run's outcome, and its artifacts, as this one's."""
        meta = job["metadata"]
        try:
            return _json(self.batch.create_namespaced_job(meta["namespace"], job, _preload_content=False)), True
        except ApiException as error:
            if error.status != 409:
                raise
        # Read back by list (a right the operator has anyway), so it needs no `get` on Jobs.
        found = _json(self.batch.list_namespaced_job(meta["namespace"], field_selector=f"metadata.name={meta['name']}",
                                                     _preload_content=False)).get("items") or []
        if not found:
            raise RuntimeError(f"Job {meta['name']} exists (409) but cannot be listed")
        if not serving.owned_by(found[0], serving.owner_uid(job)):
            raise NotOwned("Job", meta["name"], (
                f"Job {meta['name']} exists but is not owned by this policy (it has {serving.owners(found[0])}); "
                "the operator does not adopt it: delete it, and the run starts"))
        return found[0], False

    def read_secret(self, namespace: str, name: str) -> Json | None:
        try:
            return _json(self.core.read_namespaced_secret(name, namespace, _preload_content=False))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    # -- serving -----------------------------------------------------------------------------

    def read_deployment(self, namespace: str, name: str) -> Json | None:
        try:
            return _json(self.apps.read_namespaced_deployment(name, namespace, _preload_content=False))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def apply_deployment(self, manifest: Json, existing: Json | None) -> Json | None:
        """Create, or patch what differs: the spec (the operator owns it all) and our labels; returns
        the Deployment written (None: nothing to do). The pod template is replaced whole (a strategic
        merge would keep a label, variable or volume the policy no longer has); the server's defaults
        come back the same, so an unchanged template never rolls the pods.

        A Deployment of that name that the policy does not control raises NotOwned, untouched."""
        meta = manifest["metadata"]
        if existing is None:
            try:
                return _json(self.apps.create_namespaced_deployment(meta["namespace"], manifest,
                                                                    _preload_content=False))
            except ApiException as error:
                if error.status != 409:
                    raise
                # From the API server itself: a cache (adapters/cached_kube.py) is what said it was absent.
                existing = Kube.read_deployment(self, meta["namespace"], meta["name"]) or {}
        if not serving.owned_by(existing, serving.owner_uid(manifest)):
            raise NotOwned("Deployment", meta["name"], (
                f"Deployment {meta['name']} exists but is not owned by this policy (it has "
                f"{serving.owners(existing)}); the operator does not adopt it: delete or rename it"))
        wanted_meta = {key: meta[key] for key in ("labels", "annotations") if meta.get(key)}
        if _covers(existing.get("spec") or {}, manifest["spec"]) and \
                _covers(existing.get("metadata") or {}, wanted_meta):
            return None
        patch = {"metadata": wanted_meta, "spec": {**manifest["spec"], "template": {
            **_kept_restart(manifest["spec"]["template"], existing), "$patch": "replace"}}}
        return _json(self.apps.patch_namespaced_deployment(meta["name"], meta["namespace"], patch,
                                                           _preload_content=False))

    def read_service(self, namespace: str, name: str) -> Json | None:
        try:
            return _json(self.core.read_namespaced_service(name, namespace, _preload_content=False))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def ensure_service(self, manifest: Json) -> str:
        """Read first; create when absent, patch only the fields the operator manages when they differ.

        Returns what was done (serving.CREATE, KEEP or PATCH); a Service of that name that the
        policy does not control raises NotOwned and is left as it is."""
        meta = manifest["metadata"]
        existing = self.read_service(meta["namespace"], meta["name"])
        if existing is None:
            try:
                self.wrote_service(_json(self.core.create_namespaced_service(meta["namespace"], manifest,
                                                                             _preload_content=False)))
                return serving.CREATE
            except ApiException as error:
                if error.status != 409:
                    raise
            # Created by someone else between our read and our create: judge that one, read from the server.
            existing = Kube.read_service(self, meta["namespace"], meta["name"])
            if existing is None:
                raise RuntimeError(f"Service {meta['name']} exists (409) but cannot be read")
        change = serving.service_change(existing, manifest)
        if change.action == serving.NOT_OWNED:
            raise NotOwned("Service", meta["name"], change.message)
        if change.action == serving.PATCH:
            self.wrote_service(_json(self.core.patch_namespaced_service(
                meta["name"], meta["namespace"], change.patch, _content_type="application/merge-patch+json",
                _preload_content=False)))
        return change.action

    def wrote_service(self, service: Json) -> None:
        """A Service this operator just created or patched (a cache takes note: adapters/cached_kube.py)."""

    def read_route(self, namespace: str, kind: str, name: str) -> Json | None:
        group, version, plural = ROUTES[kind]
        try:
            return _json(self.custom.get_namespaced_custom_object(group, version, namespace, plural, name,
                                                                  _preload_content=False))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def patch_route(self, namespace: str, kind: str, name: str, operations: list[Json]) -> Json:
        group, version, plural = ROUTES[kind]
        # A JSON patch, so that its `test` operations guard against concurrent edits.
        return _json(self.custom.patch_namespaced_custom_object(group, version, namespace, plural, name, operations,
                                                                _content_type="application/json-patch+json",
                                                                _preload_content=False))

    def ready_pods(self, namespace: str, selector: dict[str, str]) -> list[Json]:
        text = ",".join(f"{key}={value}" for key, value in selector.items())
        pods = _json(self.core.list_namespaced_pod(namespace, label_selector=text, _preload_content=False))
        return [pod for pod in pods.get("items") or [] if pod_ready(pod)]

    def job_pods(self, namespace: str, job: str) -> list[Json]:
        """The pods of one Job (the label the Job controller sets on them)."""
        pods = _json(self.core.list_namespaced_pod(namespace, label_selector=f"batch.kubernetes.io/job-name={job}",
                                                   _preload_content=False))
        return list(pods.get("items") or [])

    def pod_metrics(self, namespace: str, pod: str, port: int) -> str:
        """A pod's /metrics through the API server's pod proxy (RBAC: pods/proxy get)."""
        response = self.core.connect_get_namespaced_pod_proxy_with_path(
            f"{pod}:{port}", namespace, "metrics", _preload_content=False)
        return response.data.decode()


ROUTES = {"gatewayAPI": ("gateway.networking.k8s.io", "v1", "httproutes"),
          "istio": ("networking.istio.io", "v1", "virtualservices")}


# Fields (and maps) whose values the server stores as canonical quantities: resources, an emptyDir's size
# limit, a resourceFieldRef's divisor.
QUANTITY_FIELDS = frozenset({"limits", "requests", "sizeLimit", "divisor"})
# What `kubectl rollout restart` sets on the pod template: kept when the template is replaced, or the
# next change by the operator would take a person's restart marker away (and with it rollout history's).
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def _kept_restart(template: Json, existing: Json) -> Json:
    restarted = ((((existing.get("spec") or {}).get("template") or {}).get("metadata") or {})
                 .get("annotations") or {}).get(RESTARTED_AT)
    meta = template.get("metadata") or {}
    if not restarted or RESTARTED_AT in (meta.get("annotations") or {}):
        return template
    return {**template, "metadata": {**meta, "annotations": {**(meta.get("annotations") or {}),
                                                             RESTARTED_AT: restarted}}}


def _covers(actual: Any, wanted: Any, quantities: bool = False) -> bool:
    """Does `actual` hold every field of `wanted` (the server adds defaults; those do not count)?

    Resource quantities are compared by value: the server stores `cpu: 1` as "1" and `512Mi` as it is,
    but `0.5` as "500m" and `1024Mi` as "1Gi"."""
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(
            _covers(actual.get(key), value, quantities or key in QUANTITY_FIELDS)
            for key, value in wanted.items())
    if isinstance(wanted, list):
        return isinstance(actual, list) and len(actual) == len(wanted) and \
            all(_covers(a, w) for a, w in zip(actual, wanted, strict=True))
    if quantities and actual is not None:
        try:
            return bool(parse_quantity(actual) == parse_quantity(wanted))
        except ValueError:
            return False
    return actual == wanted


def pod_ready(pod: Json) -> bool:
    """Ready and not being deleted: a pod a Service would send traffic to."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
