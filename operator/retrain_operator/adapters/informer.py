"""An informer: one LIST, then a WATCH from its resourceVersion, kept in memory (client-go's reflector + store).

A reconcile reads what the informer holds instead of asking the API server: with a thousand policies the
per-reconcile reads were most of the operator's idle API traffic. The thread re-LISTs when the watch
expires (410 Gone) and replaces the whole store, so an object deleted while the watch was down does not
linger (kopf's indexes keep such objects). A kind the API server does not serve (a route CRD that is not
installed) or does not let the operator list (403) leaves the informer `available = False`: callers
then read that kind directly, as before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from kubernetes.client.rest import ApiException
from kubernetes.watch.watch import iter_resp_lines

log = logging.getLogger(__name__)

Json = dict[str, Any]
Key = tuple[str, str]  # namespace, name
ListFn = Callable[..., Any]  # a kubernetes client list_* method bound to its arguments but for the query
Keep = Callable[[Json], Json | None]  # what to hold of an object (None: nothing)
OnChange = Callable[[str, Json | None, Json | None], None]  # event type, old, new

WATCH_TIMEOUT = 300  # seconds the API server holds one watch open; the informer renews it
RETRY_MAX = 30.0
PAGE = 500
ABSENT_RETRY = 300.0  # a kind not served (or not listable) is tried again this often


def key_of(obj: Json) -> Key:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


def trim(obj: Json) -> Json:
    """The object without its managedFields (often half its size; never read here)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


def _body(response: Any) -> Json:
    return json.loads(response.data)


class Informer:
    """One kind (in all namespaces, or one), optionally by label selector; `keep` picks what is held."""

    def __init__(self, what: str, list_fn: ListFn, *, label_selector: str | None = None, keep: Keep = trim,
                 on_change: OnChange | None = None):
        self.what = what
        self._list = list_fn
        self._selector = label_selector
        self._keep = keep
        self._on_change = on_change
        self._lock = threading.Lock()
        self._store: dict[Key, Json] = {}
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._response: Any = None
        self._thread: threading.Thread | None = None
        self.available = True
        self.relists = 0  # LISTs after the first: a 410, an error, or a kind that was absent

    # -- reading ------------------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> Json | None:
        with self._lock:
            return self._store.get((namespace, name))

    def put_if_absent(self, obj: Json) -> bool:
        """Hold an object read directly (a GET), unless the watch has already said something newer."""
        kept = self._keep(obj)
        if kept is None:
            return False
        with self._lock:
            return self._store.setdefault(key_of(obj), kept) is kept

    def put(self, obj: Json) -> None:
        """Hold the answer to our own write (the watch event that follows carries the same object)."""
        kept = self._keep(obj)
        if kept is not None:
            with self._lock:
                self._store[key_of(obj)] = kept

    def synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    def __len__(self) -> int:
        with self._lock:
            return len(self._store)

    # -- running ------------------------------------------------------------------------------

    def start(self) -> Informer:
        self._thread = threading.Thread(target=self._run, name=f"informer-{self.what}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            # shutdown(), not close(): close() waits for the buffer lock the blocked reader holds (up to the
            # watch's 300 s); a shut-down socket ends that read at once.
            with contextlib.suppress(Exception):  # already closed by the other thread
                response.shutdown()

    def join(self, timeout: float) -> bool:
        """Wait for the thread after stop(); False if it is still running."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                version = self._relist()
                failures = 0
                self._watch(version)
            except _Gone:
                log.info("%s: watch expired (410); listing again", self.what)
            except ApiException as error:
                if error.status in (403, 404):
                    self._absent(error)
                    self._stop.wait(ABSENT_RETRY)
                    continue
                failures += 1
                self._backoff(failures, f"{error.status} {error.reason}")
            except Exception as error:  # a dropped connection, an API server restarting
                if self._stop.is_set():
                    return
                failures += 1
                self._backoff(failures, repr(error))
            self.relists += 1

    def _backoff(self, failures: int, why: str) -> None:
        delay = min(RETRY_MAX, 0.5 * 2 ** failures)
        log.warning("%s: list/watch failed (%s); again in %.1fs", self.what, why, delay)
        self._stop.wait(delay)

    def _absent(self, error: ApiException) -> None:
        if self.available or not self._synced.is_set():
            log.info("%s: not listable (%s %s); read directly instead, looking again in %ds", self.what,
                     error.status, error.reason, ABSENT_RETRY)
        self.available = False
        self._replace([])
        self._synced.set()

    def _relist(self) -> str:
        items: list[Json] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": PAGE, "_preload_content": False}
            if self._selector:
                kwargs["label_selector"] = self._selector
            if token:
                kwargs["_continue"] = token
            page = _body(self._list(**kwargs))
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                version = str((page.get("metadata") or {}).get("resourceVersion") or "")
                break
        self._replace(items)
        self.available = True
        self._synced.set()
        return version

    def _replace(self, items: Iterable[Json]) -> None:
        fresh = {key_of(obj): kept for obj in items if (kept := self._keep(obj)) is not None}
        with self._lock:
            old, self._store = self._store, fresh
        if self._on_change is None:
            return
        for key, obj in fresh.items():
            if old.get(key) != obj:
                self._notify("ADDED" if key not in old else "MODIFIED", old.get(key), obj)
        for key, obj in old.items():
            if key not in fresh:
                self._notify("DELETED", obj, None)

    def _watch(self, version: str) -> None:
        while not self._stop.is_set():
            kwargs: dict[str, Any] = {"watch": True, "resource_version": version, "allow_watch_bookmarks": True,
                                      "timeout_seconds": WATCH_TIMEOUT, "_preload_content": False,
                                      "_request_timeout": WATCH_TIMEOUT + 30}
            if self._selector:
                kwargs["label_selector"] = self._selector
            self._response = response = self._list(**kwargs)
            if self._stop.is_set():  # stop() came while the watch was opening: it found no response to end
                response.shutdown()
            try:
                for line in iter_resp_lines(response):
                    if not line:
                        continue
                    version = self._apply(json.loads(line), version)
            finally:
                self._response = None
                response.close()
                response.release_conn()

    def _apply(self, event: Json, version: str) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone()
            raise ApiException(status=obj.get("code"), reason=f"{obj.get('reason')}: {obj.get('message')}")
        version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
        if kind == "BOOKMARK":
            return version
        key = key_of(obj)
        kept = None if kind == "DELETED" else self._keep(obj)
        with self._lock:
            old = self._store.pop(key, None) if kept is None else self._store.get(key)
            if kept is not None:
                self._store[key] = kept
        if old is not None or kept is not None:
            self._notify(str(kind), old, kept)
        return version

    def _notify(self, kind: str, old: Json | None, new: Json | None) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(kind, old, new)
        except Exception:
            log.exception("%s: handling a %s event failed", self.what, kind)


class _Gone(Exception):
    """The watch's resourceVersion is too old: list again."""
