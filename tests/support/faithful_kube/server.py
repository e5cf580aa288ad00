"""kmock's Kubernetes emulator, made to behave like the real API server where operators depend on it.

kmock keeps its HTTP server, request parsing, discovery and its DSL (so tests can still inject
faults: `k['patch', kmock.resource(...)] << 500`). This class replaces its object semantics:
namespaces from URLs, uid/resourceVersion/generation/creationTimestamp, 201 on create, 409 on
conflicts, 422 on failed JSON-patch tests, PUT, an isolated status subresource, label and
field selectors, list kinds, watch resume with 410 Gone, finalizers, owner-reference garbage
collection, server-side tables for kubectl, CRD registration, and a bounded request log.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import datetime as dt
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import aiohttp.web
import attrs
import kmock
from kmock._internal import enums, parsing, rendering
from kmock._internal.k8s import KubernetesError, KubernetesObjectNotFoundError, KubernetesResourceNotFoundError

from . import events, patching, selectors, tables

Json = dict[str, Any]
ObjectKey = tuple[str, str, str, str]  # group, plural, namespace ('' if cluster-scoped), name


def _fixed_parse_path(path: str) -> parsing.ParsedPath:
    """kmock 0.8 cannot parse /api/v1/namespaces[/NAME[/status]]: the namespaces resource itself."""
    parts = path.strip("/").split("/")
    if len(parts) >= 3 and parts[0] == "api" and parts[2] == "namespaces" and len(parts) <= 5:
        if len(parts) == 3:
            return parsing.ParsedPath("", parts[1], "namespaces", None, None, None)
        if len(parts) == 4:
            return parsing.ParsedPath("", parts[1], "namespaces", None, parts[3], None)
        if parts[4] in {"status", "finalize"}:
            return parsing.ParsedPath("", parts[1], "namespaces", None, parts[3], parts[4])
    return _original_parse_path(path)


_original_parse_path = parsing.parse_path
parsing.parse_path = _fixed_parse_path


# Where a pod's container ports really listen, for pods run as local processes (see the sandbox's
# local Deployment controller): {"<containerPort or name>": <local port>}. The real API server
# proxies to the pod IP; this one proxies to 127.0.0.1 at the mapped port.
PORT_MAP = "faithful-kube.local/port-map"
_POD_PROXY = re.compile(r"^/api/v1/namespaces/(?P<namespace>[^/]+)/pods/(?P<name>[^/:]+)(?::(?P<port>[^/]+))?"
                        r"/proxy(?P<path>/.*)?$")


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _gone(message: str) -> Json:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": "Expired", "code": 410}


@dataclass(frozen=True)
class AuditRecord:
    """One request as RBAC sees it: verb, resource, namespace, subresource."""

    method: str
    path: str
    verb: str
    group: str | None
    version: str | None
    plural: str | None
    namespace: str | None
    name: str | None
    subresource: str | None
    user: str = ""  # the bearer token: which client asked (no authentication is done)


def _bearer(request: rendering.Request) -> str:
    header = request.headers.get("Authorization") or ""
    return header.removeprefix("Bearer ").strip()


def _verb(method: str, action: enums.action | None, name: str | None) -> str:
    if action == enums.action.WATCH:
        return "watch"
    if method == "GET":
        return "get" if name else "list"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if name else "deletecollection"
    return method.lower()


@attrs.define(kw_only=True)
class FaithfulKubernetes(kmock.KubernetesEmulator):
    request_log_limit: int = 100
    history_limit: int = 2000

    audit: list[AuditRecord] = attrs.field(factory=list, init=False)
    _store: dict[ObjectKey, Json] = attrs.field(factory=dict, init=False)
    _history: collections.deque[tuple[int, tuple[str, str], Json]] = attrs.field(init=False)
    _trimmed_before: int = attrs.field(default=0, init=False)
    _rv: int = attrs.field(default=0, init=False)
    _changed: asyncio.Condition | None = attrs.field(default=None, init=False)
    _mutex: asyncio.Lock | None = attrs.field(default=None, init=False)
    _crds: dict[tuple[str, str], Json] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._history = collections.deque()
        self.resources.load_bundled()
        self.fallback[kmock.method.PUT] << self._serve_put

    # -- plumbing --------------------------------------------------------------------------

    @property
    def _cond(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    @property
    def _lock_(self) -> asyncio.Lock:
        if self._mutex is None:
            self._mutex = asyncio.Lock()
        return self._mutex

    async def _handle(self, request: rendering.Request) -> Any:
        excess = len(self._requests) - self.request_log_limit
        if excess > 0:
            del self._requests[:excess]
        proxied = _POD_PROXY.match(str(request.url.path))
        if proxied:
            return await self._serve_pod_proxy(request, proxied)
        if request.resource is not None:
            raw = request._raw_request
            method = raw.method if raw is not None else str(request.method)
            resource = request.resource
            self.audit.append(AuditRecord(
                method=method, path=str(request.url.path), verb=_verb(method, request.action, request.name),
                group=resource.group, version=resource.version, plural=resource.plural,
                namespace=request.namespace, name=request.name, subresource=request.subresource,
                user=_bearer(request)))
        # Skip KubernetesEmulator._handle: its lax object mutation is replaced by the _serve_* below.
        return await super(kmock.KubernetesEmulator, self)._handle(request)

    async def _serve_pod_proxy(self, request: rendering.Request, match: re.Match[str]) -> Any:
        """GET /api/v1/namespaces/NS/pods/NAME:PORT/proxy/PATH: the pod's own HTTP answer, or 503."""
        raw = request._raw_request
        method = raw.method if raw is not None else "GET"
        namespace, name = match["namespace"], match["name"]
        self.audit.append(AuditRecord(method=method, path=str(request.url.path), verb=_verb(method, None, name),
                                      group="", version="v1", plural="pods", namespace=namespace, name=name,
                                      subresource="proxy", user=_bearer(request)))
        pod = self._store.get(("", "pods", namespace, name))
        if pod is None:
            raise KubernetesObjectNotFoundError(message=f'pods "{name}" not found')
        ports = json.loads(((pod.get("metadata") or {}).get("annotations") or {}).get(PORT_MAP) or "{}")
        port = match["port"] or next(iter(ports), "")
        if port not in ports:  # a port name: find its number in the pod spec
            for container in (pod.get("spec") or {}).get("containers") or []:
                for declared in container.get("ports") or []:
                    if declared.get("name") == port:
                        port = str(declared.get("containerPort"))
        if port not in ports:
            raise KubernetesError(status=503, reason="ServiceUnavailable",
                                  message=f"error trying to reach service: no port {match['port']} on pod {name}")
        url = f"http://127.0.0.1:{ports[port]}{match['path'] or '/'}"
        try:
            async with aiohttp.ClientSession() as session, session.request(
                    method, url, params=request.params or None, data=request.body or None,
                    timeout=aiohttp.ClientTimeout(total=10)) as response:
                body = await response.read()
                return aiohttp.web.Response(status=response.status, body=body, headers={
                    "Content-Type": response.headers.get("Content-Type", "text/plain")})
        except (aiohttp.ClientError, TimeoutError) as error:
            return aiohttp.web.json_response(status=503, data={
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 503,
                "reason": "ServiceUnavailable", "message": f"error trying to reach service: {error}"})

    def _info(self, request: rendering.Request) -> kmock.ResourceInfo:
        resource = request.resource
        if resource is None or resource.plural is None or resource not in self.resources:
            raise KubernetesResourceNotFoundError()
        return self.resources[resource]

    @staticmethod
    def _key(request: rendering.Request, namespace: str | None, name: str) -> ObjectKey:
        assert request.resource is not None
        return (request.resource.group or "", request.resource.plural or "", namespace or "", name)

    def _stored_key(self, request: rendering.Request, namespace: str | None, name: str) -> ObjectKey:
        """Where a read or a create finds the object: events.k8s.io/v1 Events are the stored v1 Events."""
        key = self._key(request, namespace, name)
        return (*events.CORE, key[2], key[3]) if (key[0], key[1]) == events.EVENTS_V1 else key

    def _group_version(self, request: rendering.Request) -> str:
        assert request.resource is not None
        group, version = request.resource.group, request.resource.version
        return f"{group}/{version}" if group else str(version)

    def _emit(self, kind: str, key: ObjectKey, obj: Json) -> None:
        self._history.append((int(obj["metadata"]["resourceVersion"]), (key[0], key[1]),
                              {"type": kind, "object": copy.deepcopy(obj)}))
        while len(self._history) > self.history_limit:
            rv, _, _ = self._history.popleft()
            self._trimmed_before = rv

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _matcher(self, request: rendering.Request):
        params = request.params or {}
        try:
            labels = selectors.label_selector(params.get("labelSelector"))
            fields = selectors.field_selector(params.get("fieldSelector"))
        except ValueError as error:
            raise KubernetesError(status=400, reason="BadRequest", message=str(error)) from error
        group = request.resource.group or "" if request.resource else ""
        plural = request.resource.plural or "" if request.resource else ""

        def matches(key: ObjectKey, obj: Json) -> bool:
            if (key[0], key[1]) != (group, plural):
                return False
            if request.namespace and key[2] != request.namespace:
                return False
            if request.name and key[3] != request.name:
                return False
            return labels(obj) and fields(obj)

        return matches

    # -- CRDs ------------------------------------------------------------------------------

    def register_crd(self, crd: Json) -> None:
        """Serve a CustomResourceDefinition's resource, as the real server does once a CRD is created."""
        spec = crd["spec"]
        names = spec["names"]
        for version in spec.get("versions") or []:
            if not version.get("served", True):
                continue
            resource = kmock.resource(spec["group"], version["name"], names["plural"])
            self.resources[resource] = kmock.ResourceInfo(
                kind=names["kind"], singular=names.get("singular", names["kind"].lower()),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                shortnames=set(names.get("shortNames") or []), categories=set(names.get("categories") or []),
                subresources=set((version.get("subresources") or {}).keys()),
                verbs={"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"})
            self._crds[(spec["group"], names["plural"])] = version

    @staticmethod
    def _resource_key(request: rendering.Request) -> tuple[str, str]:
        assert request.resource is not None
        return request.resource.group or "", request.resource.plural or ""

    async def _serve_version(self, request: rendering.Request) -> Any:
        """Discovery as the real server lists it: the core group's groupVersion is "v1" (without it,
        kubectl finds no core resources and sends `get pods` to metrics.k8s.io), and subresources have
        no short names or categories of their own (kubectl then warns that `rtp` is ambiguous)."""
        listing = await super()._serve_version(request)
        if str(listing.get("groupVersion", "")).startswith("/"):  # kmock says "/v1" for the core group
            listing["groupVersion"] = listing["groupVersion"][1:]
        for entry in listing.get("resources") or []:
            if "/" in entry.get("name", ""):
                entry.update(shortNames=[], categories=[], singularName="",
                             verbs=["get", "patch", "update"])
        return listing

    def _printer_columns(self, request: rendering.Request) -> list[Json] | None:
        assert request.resource is not None
        version = self._crds.get((request.resource.group or "", request.resource.plural or ""))
        return (version or {}).get("additionalPrinterColumns")

    # -- reads -----------------------------------------------------------------------------

    def _stored(self, request: rendering.Request) -> list[tuple[ObjectKey, Json]]:
        """The objects a request reads: events.k8s.io/v1 Events are the stored v1 Events, converted."""
        if self._resource_key(request) != events.EVENTS_V1:
            return sorted(self._store.items())
        return [((*events.EVENTS_V1, key[2], key[3]), events.to_events_v1(obj))
                for key, obj in sorted(self._store.items()) if (key[0], key[1]) == events.CORE]

    async def _serve_list(self, request: rendering.Request) -> Any:
        info = self._info(request)
        matches = self._matcher(request)
        items = [copy.deepcopy(obj) for key, obj in self._stored(request) if matches(key, obj)]
        if tables.wants_table(request.headers.get("Accept")):
            return tables.table(items, self._printer_columns(request), str(self._rv), self._resource_key(request))
        return {"kind": f"{info.kind}List", "apiVersion": self._group_version(request),
                "metadata": {"resourceVersion": str(self._rv)}, "items": items}

    async def _serve_fetch(self, request: rendering.Request) -> Any:
        self._info(request)
        obj = self._store.get(self._stored_key(request, request.namespace, request.name or ""))
        if obj is not None and self._resource_key(request) == events.EVENTS_V1:
            obj = events.to_events_v1(obj)
        if obj is None:
            raise KubernetesObjectNotFoundError(message=f"{request.resource.plural} {request.name!r} not found")
        if tables.wants_table(request.headers.get("Accept")):
            return tables.table([obj], self._printer_columns(request), str(self._rv), self._resource_key(request))
        return copy.deepcopy(obj)

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[Any]:
        self._info(request)
        yield b""  # send the headers now, even if nothing happens for a while
        params = request.params or {}
        matches = self._matcher(request)
        timeout = float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else None
        deadline = asyncio.get_running_loop().time() + timeout if timeout else None
        since_text = params.get("resourceVersion") or "0"
        since = int(since_text) if since_text.isdigit() else 0
        resource = (request.resource.group or "", request.resource.plural or "")
        converted = resource == events.EVENTS_V1
        stored_as = events.CORE if converted else resource
        if since == 0:
            since = self._rv
            for key, obj in self._stored(request):
                if matches(key, obj):
                    yield {"type": "ADDED", "object": copy.deepcopy(obj)}
        elif since < self._trimmed_before:
            yield {"type": "ERROR", "object": _gone(f"too old resource version: {since} ({self._trimmed_before})")}
            return
        while True:
            for rv, res, event in list(self._history):
                if rv > since and res == stored_as:
                    if converted:
                        event = {"type": event["type"], "object": events.to_events_v1(event["object"])}
                    obj = event["object"]
                    meta = obj["metadata"]
                    if matches((*resource, meta.get("namespace", ""), meta["name"]), obj):
                        yield event
                    since = rv
            since = max(since, self._rv)
            seen = self._rv
            remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
            if remaining is not None and remaining <= 0:
                return
            async with self._cond:
                if self._rv != seen:  # changed while the condition was being acquired
                    continue
                try:
                    await asyncio.wait_for(self._cond.wait(), timeout=remaining)
                except TimeoutError:
                    return

    # -- writes ----------------------------------------------------------------------------

    async def _serve_create(self, request: rendering.Request) -> Any:
        info = self._info(request)
        body = request.data
        if not isinstance(body, dict):
            raise KubernetesError(status=400, reason="BadRequest", message="the body must be a JSON object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if info.namespaced:
            if meta.get("namespace") and request.namespace and meta["namespace"] != request.namespace:
                raise KubernetesError(status=400, reason="BadRequest",
                                      message="the namespace of the provided object does not match the "
                                              "namespace sent on the request")
            namespace = request.namespace or meta.get("namespace")
            if not namespace:
                raise KubernetesError(status=400, reason="BadRequest", message="a namespace is required")
            if request.resource.plural != "namespaces" and ("", "namespaces", "", namespace) not in self._store:
                raise KubernetesError(status=404, reason="NotFound", message=f'namespaces "{namespace}" not found')
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise KubernetesError(status=422, reason="Invalid", message="metadata.name: Required value")
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        as_events_v1 = self._resource_key(request) == events.EVENTS_V1
        if as_events_v1:  # one resource, two APIs: stored as the v1 Event
            obj = events.to_core(obj)
        async with self._lock_:
            key = self._stored_key(request, meta.get("namespace"), meta["name"])
            if key in self._store:
                raise KubernetesError(status=409, reason="AlreadyExists",
                                      message=f'{request.resource.plural} "{meta["name"]}" already exists')
            obj.setdefault("apiVersion", self._group_version(request))
            obj.setdefault("kind", info.kind)
            if "status" in info.subresources:
                obj.pop("status", None)  # status is not settable on create for such resources
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1,
                        resourceVersion=self._next_rv())
            for field in ("deletionTimestamp", "deletionGracePeriodSeconds"):
                meta.pop(field, None)
            self._store[key] = obj
            self._emit("ADDED", key, obj)
            if request.resource.plural == "customresourcedefinitions":
                self.register_crd(obj)
        await self._notify()
        return rendering.Response(status=201, payload=events.to_events_v1(obj) if as_events_v1 else copy.deepcopy(obj))

    async def _serve_update(self, request: rendering.Request) -> Any:
        """PATCH: merge, JSON or strategic merge patch, by content type."""
        info = self._info(request)
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip()
        data = request.data if request.data is not None else json.loads(request.body or b"null")
        async with self._lock_:
            key = self._key(request, request.namespace, request.name or "")
            old = self._store.get(key)
            if old is None:
                raise KubernetesObjectNotFoundError(message=f"{request.resource.plural} {request.name!r} not found")
            try:
                if content_type == patching.JSON:
                    new = patching.json_patch(old, data)
                    precondition = None
                elif content_type == patching.MERGE:
                    new = patching.merge_patch(old, data)
                    precondition = ((data or {}).get("metadata") or {}).get("resourceVersion")
                elif content_type == patching.STRATEGIC:
                    if (request.resource.group or "", request.resource.plural or "") in self._crds:
                        raise KubernetesError(status=415, reason="UnsupportedMediaType",
                                              message="strategic merge patch is not supported for custom resources")
                    new = patching.strategic_merge_patch(old, data)
                    precondition = ((data or {}).get("metadata") or {}).get("resourceVersion")
                else:
                    raise KubernetesError(status=415, reason="UnsupportedMediaType",
                                          message=f"the body of the request was in an unknown format: {content_type}")
            except patching.PatchError as error:
                raise KubernetesError(status=422, reason="Invalid", message=str(error)) from error
            result = self._commit(request, info, key, old, new, precondition)
        await self._notify()
        return result

    async def _serve_put(self, request: rendering.Request) -> Any:
        info = self._info(request)
        if not request.name or not isinstance(request.data, dict):
            raise KubernetesError(status=405, reason="MethodNotAllowed", message="PUT needs a named object")
        async with self._lock_:
            key = self._key(request, request.namespace, request.name)
            old = self._store.get(key)
            if old is None:
                raise KubernetesObjectNotFoundError(message=f"{request.resource.plural} {request.name!r} not found")
            precondition = (request.data.get("metadata") or {}).get("resourceVersion")
            result = self._commit(request, info, key, old, copy.deepcopy(request.data), precondition)
        await self._notify()
        return result

    def _commit(self, request: rendering.Request, info: kmock.ResourceInfo, key: ObjectKey, old: Json,
                new: Json, precondition: str | None) -> Json:
        """Store an update the way the real server does (caller holds the lock)."""
        old_meta = old["metadata"]
        if precondition and str(precondition) != old_meta["resourceVersion"]:
            raise KubernetesError(status=409, reason="Conflict", message=(
                f'Operation cannot be fulfilled on {request.resource.plural} "{old_meta["name"]}": the object has '
                "been modified; please apply your changes to the latest version and try again"))
        if request.subresource == "status":
            result = copy.deepcopy(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
        else:
            result = new
            if "status" in info.subresources:
                if "status" in old:
                    result["status"] = copy.deepcopy(old["status"])
                else:
                    result.pop("status", None)
        meta = result.setdefault("metadata", {})
        for field in ("uid", "creationTimestamp", "namespace", "name", "generation", "deletionTimestamp",
                      "deletionGracePeriodSeconds"):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if result == old:
            return copy.deepcopy(old)  # a no-op update changes nothing, not even the resourceVersion
        spec_changed = {k: v for k, v in result.items() if k not in {"metadata", "status"}} != \
            {k: v for k, v in old.items() if k not in {"metadata", "status"}}
        if spec_changed:
            meta["generation"] = int(old_meta.get("generation") or 0) + 1
        meta["resourceVersion"] = self._next_rv()
        self._store[key] = result
        self._emit("MODIFIED", key, result)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._remove(key, "Background")
        return copy.deepcopy(result)

    async def _serve_delete(self, request: rendering.Request) -> Any:
        self._info(request)
        options = request.data if isinstance(request.data, dict) else {}
        policy = (request.params or {}).get("propagationPolicy") or options.get("propagationPolicy") or "Background"
        async with self._lock_:
            key = self._key(request, request.namespace, request.name or "")
            obj = self._store.get(key)
            if obj is None:
                raise KubernetesObjectNotFoundError(message=f"{request.resource.plural} {request.name!r} not found")
            preconditions = options.get("preconditions") or {}
            meta = obj["metadata"]
            for field in ("uid", "resourceVersion"):
                if preconditions.get(field) and preconditions[field] != meta.get(field):
                    raise KubernetesError(status=409, reason="Conflict",
                                          message=f"Precondition failed: {field} in precondition: "
                                                  f"{preconditions[field]}, {field} in object meta: {meta.get(field)}")
            if meta.get("finalizers"):
                if not meta.get("deletionTimestamp"):
                    meta["deletionTimestamp"] = _now()
                    meta["deletionGracePeriodSeconds"] = 0
                    meta["resourceVersion"] = self._next_rv()
                    self._emit("MODIFIED", key, obj)
                result = copy.deepcopy(obj)
            else:
                result = copy.deepcopy(obj)
                self._remove(key, policy)
        await self._notify()
        return result

    def _remove(self, key: ObjectKey, policy: str) -> None:
        """Delete for real, then collect the dependents, as the garbage collector would."""
        obj = self._store.pop(key)
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._emit("DELETED", key, obj)
        uid = obj["metadata"].get("uid")
        for dependent_key, dependent in list(self._store.items()):
            references = (dependent.get("metadata") or {}).get("ownerReferences") or []
            if not any(ref.get("uid") == uid for ref in references):
                continue
            if policy == "Orphan":
                dependent["metadata"]["ownerReferences"] = [r for r in references if r.get("uid") != uid]
                dependent["metadata"]["resourceVersion"] = self._next_rv()
                self._emit("MODIFIED", dependent_key, dependent)
            elif dependent["metadata"].get("finalizers"):
                if not dependent["metadata"].get("deletionTimestamp"):
                    dependent["metadata"]["deletionTimestamp"] = _now()
                    dependent["metadata"]["resourceVersion"] = self._next_rv()
                    self._emit("MODIFIED", dependent_key, dependent)
            else:
                self._remove(dependent_key, policy)

    # -- for tests -------------------------------------------------------------------------

    def object(self, group: str, plural: str, namespace: str | None, name: str) -> Json | None:
        obj = self._store.get((group, plural, namespace or "", name))
        return copy.deepcopy(obj) if obj is not None else None

    def all_objects(self, group: str, plural: str) -> list[Json]:
        return [copy.deepcopy(obj) for (g, p, _, _), obj in sorted(self._store.items()) if (g, p) == (group, plural)]
