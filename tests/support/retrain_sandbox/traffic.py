"""Client traffic for the sandbox and the tests: the part a gateway or kube-proxy would play.

Requests go to the model server pods the way the configured router would send them: by the
HTTPRoute's or VirtualService's backend weights to the stable or canary Service's Ready pods,
or (router `replicas`) to any Ready pod behind the shared Service. Each answer is counted by the
model version that gave it, so a test can see the split it asked for. With a `target`, rows carry
their true label (withheld from the request), and each version's recent live accuracy is kept: the
labeled feedback a real team joins to its predictions later.
"""

from __future__ import annotations

import collections
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from retrain_operator.adapters.kube import ROUTES, pod_ready
from retrain_operator.core import routes, serving

log = logging.getLogger(__name__)
Json = dict[str, Any]


class Traffic:
    def __init__(self, cluster: Any, namespace: str, policy: str, rows: list[Json], rate: float = 40.0,
                 router: str = "replicas", route: str | None = None, seed: int = 0, target: str | None = None):
        self.cluster, self.namespace, self.policy = cluster, namespace, policy
        self.rows, self.rate, self.router, self.route, self.target = rows, rate, router, route, target
        self._scored: collections.deque[tuple[float, str, bool]] = collections.deque(maxlen=20000)
        self._since_change: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])  # version: right, all
        self._lock = threading.Lock()
        self.random = random.Random(seed)
        self.answers: collections.Counter[tuple[str, int]] = collections.Counter()  # (version, status)
        self.mirrored: collections.Counter[str] = collections.Counter()  # copies sent by a RequestMirror
        self._mirror_to: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._view: tuple[float, dict[str, int], dict[str, list[tuple[str, str]]]] | None = None

    def _targets(self) -> tuple[dict[str, int], dict[str, list[tuple[str, str]]]]:
        """(weights per backend Service, Ready pods per Service as (version, "ip:port")), refreshed twice a second."""
        if self._view and time.monotonic() - self._view[0] < 0.5:
            return self._view[1], self._view[2]
        stable, canary = serving.service_name(self.policy, serving.STABLE), serving.service_name(self.policy,
                                                                                                 serving.CANARY)
        if self.router == "replicas":
            weights = {serving.service_name(self.policy): 100}
            selectors = {serving.service_name(self.policy): serving.selector(self.policy)}
        else:
            weights = self._route_weights(stable, canary)
            selectors = {stable: serving.selector(self.policy, serving.STABLE),
                         canary: serving.selector(self.policy, serving.CANARY)}
        pods: dict[str, list[tuple[str, str]]] = {}
        for service, labels in selectors.items():
            ready = []
            for pod in self.cluster.pods(self.namespace, labels):
                if not pod_ready(pod):
                    continue
                version = pod["metadata"]["labels"].get("retrain.mlops.dev/model-version", "?")
                address = _endpoint(pod)
                if address:
                    ready.append((version, address))
            pods[service] = ready
        self._view = (time.monotonic(), weights, pods)
        return weights, pods

    def _route_weights(self, stable: str, canary: str) -> dict[str, int]:
        kind = "gatewayAPI" if self.router == "gatewayAPI" else "istio"
        group, version, plural = ROUTES[kind]
        route = self.cluster.custom.get_namespaced_custom_object(group, version, self.namespace, plural, self.route)
        if kind == "gatewayAPI":
            found = routes.httproute_weights(route, stable, canary)
            self._mirror_to = None
            for rule in (route.get("spec") or {}).get("rules") or []:
                if any(b.get("name") == stable for b in rule.get("backendRefs") or []):
                    for item in rule.get("filters") or []:
                        if item.get("type") == "RequestMirror":
                            self._mirror_to = ((item.get("requestMirror") or {}).get("backendRef") or {}).get("name")
                    break
            return {stable: found[0][0], canary: found[0][1]} if found else {stable: 100}
        weights = {stable: 100}
        for http in (route.get("spec") or {}).get("http") or []:
            for entry in http.get("route") or []:
                host = str((entry.get("destination") or {}).get("host", "")).split(".")[0]
                if host in (stable, canary):
                    weights[host] = int(entry.get("weight", 100))
        return weights

    def send_one(self) -> None:
        weights, pods = self._targets()
        choices = [(service, weight) for service, weight in weights.items() if weight > 0 and pods.get(service)]
        if not choices:
            self.answers[("none", 503)] += 1  # what a gateway answers with no healthy backend
            return
        service = self.random.choices([c[0] for c in choices], [c[1] for c in choices])[0]
        version, address = self.random.choice(pods[service])
        row = dict(self.random.choice(self.rows))
        label = row.pop(self.target, None) if self.target else None
        body = json.dumps({"rows": [row]}).encode()
        status, answer = self._post(address, body)
        self.answers[(version, status)] += 1
        if self.target and status == 200:
            predicted = (answer.get("predictions") or [None])[0]
            correct = str(predicted) == str(label)
            with self._lock:
                self._scored.append((time.monotonic(), version, correct))
                self._since_change[version][0] += int(correct)
                self._since_change[version][1] += 1
        shadow = pods.get(self._mirror_to or "") if self._mirror_to and self._mirror_to != service else None
        if shadow:  # a gateway's RequestMirror: the copy's answer is discarded
            mirror_version, mirror_address = self.random.choice(shadow)
            self._post(mirror_address, body)
            self.mirrored[mirror_version] += 1

    @staticmethod
    def _post(address: str, body: bytes) -> tuple[int, Json]:
        request = urllib.request.Request(f"http://{address}/predict", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, {}
        except (OSError, ValueError):
            return 502, {}

    def _run(self) -> None:
        interval = 1.0 / self.rate
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.send_one()
            except Exception as error:  # the API server or a pod went away between looks
                log.debug("traffic: %s", error)
                self._view = None
            self._stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def start(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def by_version(self) -> dict[str, int]:
        result: dict[str, int] = collections.defaultdict(int)
        for (version, _), count in self.answers.items():
            result[version] += count
        return dict(result)

    def set_rows(self, rows: list[Json]) -> None:
        """The world changed: requests (and their true labels) come from these rows from now on."""
        with self._lock:
            self.rows = rows
            self._since_change.clear()

    def accuracy_since_change(self) -> dict[str, tuple[float, int]]:
        """Per version: (share of correct answers, answers) since the rows were last set."""
        with self._lock:
            return {version: (right / total, total) for version, (right, total) in self._since_change.items()
                    if total}

    def accuracy(self, window: float = 15.0) -> dict[str, tuple[float, int]]:
        """Per version: (share of correct answers, answers) over the last `window` seconds."""
        since = time.monotonic() - window
        counts: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
        with self._lock:
            scored = list(self._scored)
        for at, version, correct in scored:
            if at >= since:
                counts[version][0] += int(correct)
                counts[version][1] += 1
        return {version: (right / total, total) for version, (right, total) in counts.items()}


def _endpoint(pod: Json) -> str | None:
    """The pod's address and serving port, as an EndpointSlice lists it (kube-proxy dials this)."""
    ip = (pod.get("status") or {}).get("podIP")
    ports = [p for c in (pod.get("spec") or {}).get("containers") or [] for p in c.get("ports") or []]
    return f"{ip}:{ports[0]['containerPort']}" if ip and ports else None
