"""The faithful API server in a thread, with plain HTTP and kubernetes-client access for its own tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import requests

from faithful_kube import ApiServerThread

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com", "scope": "Namespaced",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "shortNames": ["wd"]},
        "versions": [{
            "name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            "additionalPrinterColumns": [
                {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            ],
        }],
    },
}
WIDGETS = "/apis/example.com/v1/namespaces/ns/widgets"


class Http:
    """Raw HTTP against the server, to state the API's behaviour without a client library in between."""

    def __init__(self, url: str):
        self.url = url
        self.session = requests.Session()

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                **kwargs: Any) -> requests.Response:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type, **kwargs.pop("headers", {})}
        return self.session.request(method, self.url + path, data=data, headers=headers, timeout=10, **kwargs)

    def create(self, path: str, body: Any) -> dict[str, Any]:
        response = self.request("POST", path, body)
        assert response.status_code == 201, response.text
        return response.json()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def patch(self, path: str, body: Any, content_type: str = "application/merge-patch+json") -> requests.Response:
        return self.request("PATCH", path, body, content_type)


@pytest.fixture(scope="module")
def api() -> Iterator[ApiServerThread]:
    server = ApiServerThread()
    server.start()
    server.register_crd(CRD)
    Http(server.url).request("POST", "/api/v1/namespaces", {"metadata": {"name": "ns"}})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def http(api: ApiServerThread) -> Http:
    return Http(api.url)


@pytest.fixture()
def widget(http: Http, request: pytest.FixtureRequest) -> dict[str, Any]:
    name = request.node.name.replace("_", "-")[:50].lower()
    return http.create(WIDGETS, {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name},
                                 "spec": {"size": 1}})


@pytest.fixture(scope="module")
def kubeconfig(api: ApiServerThread, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return api.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config", namespace="ns")


@pytest.fixture(scope="module")
def api_client(kubeconfig: Path) -> kubernetes.client.ApiClient:
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return kubernetes.client.ApiClient(configuration)
