"""Each test states one behaviour of the real Kubernetes API server and checks the emulator has it."""

from __future__ import annotations

import json
import threading
import time

import requests

from .conftest import WIDGETS, Http

JOBS = "/apis/batch/v1/namespaces/ns/jobs"
JOB = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
       "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
           {"name": "main", "image": "busybox", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]}}}}


def job(name: str, **metadata) -> dict:
    body = json.loads(json.dumps(JOB))
    body["metadata"] = {"name": name, **metadata}
    return body


def test_the_namespace_comes_from_the_url(http: Http):
    """Real: an object created through /namespaces/NS/... is stored with metadata.namespace=NS."""
    created = http.create(WIDGETS, {"metadata": {"name": "from-url"}, "spec": {}})
    assert created["metadata"]["namespace"] == "ns"


def test_a_namespace_in_the_body_must_match_the_url(http: Http):
    """Real: 400 BadRequest when the body's namespace differs from the URL's."""
    response = http.request("POST", WIDGETS, {"metadata": {"name": "x", "namespace": "other"}})
    assert response.status_code == 400


def test_creating_in_a_missing_namespace_is_not_found(http: Http):
    """Real: 404 NotFound 'namespaces "nowhere" not found'."""
    response = http.request("POST", "/apis/example.com/v1/namespaces/nowhere/widgets", {"metadata": {"name": "x"}})
    assert response.status_code == 404 and "nowhere" in response.json()["message"]


def test_create_returns_201_with_server_set_metadata(http: Http):
    """Real: 201 Created; uid, resourceVersion, creationTimestamp (RFC 3339, Z) and generation 1 are set."""
    response = http.request("POST", WIDGETS, {"metadata": {"name": "meta"}, "spec": {"size": 1}})
    assert response.status_code == 201
    meta = response.json()["metadata"]
    assert len(meta["uid"]) == 36 and meta["resourceVersion"].isdigit()
    assert meta["creationTimestamp"].endswith("Z") and meta["generation"] == 1


def test_generate_name_gets_a_random_suffix(http: Http):
    """Real: metadata.generateName + 5 random characters becomes the name."""
    created = http.create(WIDGETS, {"metadata": {"generateName": "gen-"}})
    assert created["metadata"]["name"].startswith("gen-") and len(created["metadata"]["name"]) == 9


def test_creating_an_existing_name_conflicts(http: Http, widget):
    """Real: 409 AlreadyExists."""
    response = http.request("POST", WIDGETS, {"metadata": {"name": widget["metadata"]["name"]}})
    assert response.status_code == 409 and response.json()["reason"] == "AlreadyExists"


def test_resource_versions_are_one_increasing_cluster_wide_counter(http: Http, widget):
    """Real: resourceVersion comes from etcd's revision, shared by all resources, and grows."""
    first = int(widget["metadata"]["resourceVersion"])
    other = http.create(JOBS, job(f"rv-{first}"))
    assert int(other["metadata"]["resourceVersion"]) > first


def test_generation_moves_with_spec_only(http: Http, widget):
    """Real: metadata.generation increments on spec changes, never on status or metadata changes."""
    path = f"{WIDGETS}/{widget['metadata']['name']}"
    assert http.patch(path, {"metadata": {"labels": {"a": "b"}}}).json()["metadata"]["generation"] == 1
    assert http.patch(path + "/status", {"status": {"phase": "Ok"}}).json()["metadata"]["generation"] == 1
    assert http.patch(path, {"spec": {"size": 2}}).json()["metadata"]["generation"] == 2


def test_a_stale_resource_version_conflicts(http: Http, widget):
    """Real: an update carrying an outdated metadata.resourceVersion fails with 409 Conflict."""
    path = f"{WIDGETS}/{widget['metadata']['name']}"
    stale = widget["metadata"]["resourceVersion"]
    http.patch(path, {"spec": {"size": 5}})
    response = http.patch(path, {"metadata": {"resourceVersion": stale}, "spec": {"size": 6}})
    assert response.status_code == 409 and response.json()["reason"] == "Conflict"


def test_put_replaces_the_object_and_checks_the_resource_version(http: Http, widget):
    """Real: PUT replaces spec/metadata (status kept when it is a subresource); a stale version gives 409."""
    path = f"{WIDGETS}/{widget['metadata']['name']}"
    current = http.get(path).json()
    current["spec"] = {"color": "red"}
    current["status"] = {"phase": "ignored"}
    response = http.request("PUT", path, current)
    assert response.status_code == 200
    assert response.json()["spec"] == {"color": "red"} and "status" not in response.json()
    assert http.request("PUT", path, current).status_code == 409  # current's version is now stale


def test_a_noop_update_keeps_the_resource_version(http: Http, widget):
    """Real: an update that changes nothing does not write to etcd: same resourceVersion, no watch event."""
    path = f"{WIDGETS}/{widget['metadata']['name']}"
    assert http.patch(path, {"spec": {"size": 1}}).json()["metadata"]["resourceVersion"] == \
        widget["metadata"]["resourceVersion"]


def test_the_status_subresource_is_isolated(http: Http, widget):
    """Real: with a status subresource, the main resource ignores status, and /status ignores all but status."""
    path = f"{WIDGETS}/{widget['metadata']['name']}"
    main = http.patch(path, {"spec": {"size": 3}, "status": {"phase": "Sneaky"}}).json()
    assert main["spec"]["size"] == 3 and "status" not in main
    status = http.patch(path + "/status", {"spec": {"size": 99}, "status": {"phase": "Ready"}}).json()
    assert status["spec"]["size"] == 3 and status["status"] == {"phase": "Ready"}


def test_status_on_create_is_dropped_when_it_is_a_subresource(http: Http):
    """Real: for resources with a status subresource, status in a create request is ignored."""
    created = http.create(WIDGETS, {"metadata": {"name": "born-with-status"}, "status": {"phase": "x"}})
    assert "status" not in created


def test_merge_patch_deletes_with_null_and_replaces_lists(http: Http, widget):
    """Real (RFC 7386): null removes a key; lists are replaced whole."""
    path = f"{WIDGETS}/{widget['metadata']['name']}"
    http.patch(path, {"spec": {"tags": ["a", "b"], "gone": 1}})
    patched = http.patch(path, {"spec": {"tags": ["c"], "gone": None}}).json()
    assert patched["spec"]["tags"] == ["c"] and "gone" not in patched["spec"]


def test_a_failing_json_patch_test_is_unprocessable(http: Http, widget):
    """Real: a JSON patch whose `test` op fails answers 422 (kopf's finalizer patches rely on it)."""
    path = f"{WIDGETS}/{widget['metadata']['name']}"
    operations = [{"op": "test", "path": "/spec/size", "value": 42}, {"op": "replace", "path": "/spec/size",
                                                                        "value": 43}]
    response = http.patch(path, operations, "application/json-patch+json")
    assert response.status_code == 422
    ok = [{"op": "test", "path": "/spec/size", "value": 1}, {"op": "replace", "path": "/spec/size", "value": 43}]
    assert http.patch(path, ok, "application/json-patch+json").json()["spec"]["size"] == 43


def test_strategic_merge_patch_merges_lists_by_key_on_builtins(http: Http):
    """Real: containers merge by name and env by name; other fields as in a merge patch."""
    http.create(JOBS, job("smp"))
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "env": [{"name": "B", "value": "3"}]}]}}}}
    response = http.patch(f"{JOBS}/smp", patch, "application/strategic-merge-patch+json")
    [container] = response.json()["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "busybox"
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]


def test_strategic_merge_patch_is_unsupported_for_custom_resources(http: Http, widget):
    """Real: 415 UnsupportedMediaType for strategic merge patches of custom resources."""
    response = http.patch(f"{WIDGETS}/{widget['metadata']['name']}", {"spec": {}},
                          "application/strategic-merge-patch+json")
    assert response.status_code == 415


def test_label_selectors_filter_lists(http: Http):
    """Real: =, ==, !=, in, notin, exists and !exists."""
    for name, labels in {"l1": {"tier": "a", "x": "1"}, "l2": {"tier": "b"}, "l3": {}}.items():
        http.create(JOBS, job(name, labels={**labels, "suite": "labels"}))

    def names(selector: str) -> set[str]:
        items = http.get(JOBS, params={"labelSelector": f"suite=labels,{selector}"}).json()["items"]
        return {item["metadata"]["name"] for item in items}

    assert names("tier=a") == {"l1"} and names("tier==a") == {"l1"}
    assert names("tier!=a") == {"l2", "l3"}
    assert names("tier in (a,b)") == {"l1", "l2"} and names("tier notin (a)") == {"l2", "l3"}
    assert names("x") == {"l1"} and names("!x") == {"l2", "l3"}


def test_field_selectors_filter_by_name_and_namespace(http: Http):
    """Real: metadata.name and metadata.namespace field selectors, = and !=."""
    http.create(JOBS, job("field-one"))
    items = http.get("/apis/batch/v1/jobs", params={"fieldSelector": "metadata.name=field-one"}).json()["items"]
    assert [item["metadata"]["name"] for item in items] == ["field-one"]


def test_lists_carry_kind_api_version_and_the_current_resource_version(http: Http, widget):
    """Real: a list is a <Kind>List with apiVersion and metadata.resourceVersion (clients watch from it)."""
    listing = http.get(WIDGETS).json()
    assert listing["kind"] == "WidgetList" and listing["apiVersion"] == "example.com/v1"
    assert int(listing["metadata"]["resourceVersion"]) >= int(widget["metadata"]["resourceVersion"])


def _watch(http: Http, path: str, params: dict, seconds: float) -> list[dict]:
    response = http.session.get(http.url + path, params={"watch": "true", "timeoutSeconds": str(seconds), **params},
                                stream=True, timeout=seconds + 10)
    return [json.loads(line) for line in response.iter_lines() if line]


def test_watch_resumes_from_a_resource_version(http: Http):
    """Real: watch?resourceVersion=N replays every change after N, then streams live ones."""
    created = http.create(WIDGETS, {"metadata": {"name": "watched"}, "spec": {"size": 1}})
    since = created["metadata"]["resourceVersion"]
    http.patch(f"{WIDGETS}/watched", {"spec": {"size": 2}})
    events = _watch(http, WIDGETS, {"resourceVersion": since, "fieldSelector": "metadata.name=watched"}, 1)
    assert [(e["type"], e["object"]["spec"]["size"]) for e in events] == [("MODIFIED", 2)]


def test_watch_without_a_version_starts_with_the_current_state(http: Http):
    """Real: a watch with no resourceVersion first sends ADDED for every existing object."""
    http.create(WIDGETS, {"metadata": {"name": "existing"}, "spec": {}})
    events = _watch(http, WIDGETS, {"fieldSelector": "metadata.name=existing"}, 0.5)
    assert [e["type"] for e in events] == ["ADDED"]


def test_watch_streams_live_events_and_ends_at_its_timeout(http: Http):
    """Real: changes arrive while the watch is open; timeoutSeconds ends the stream."""
    seen: list[dict] = []
    reader = threading.Thread(target=lambda: seen.extend(_watch(http, WIDGETS, {
        "resourceVersion": http.get(WIDGETS).json()["metadata"]["resourceVersion"],
        "fieldSelector": "metadata.name=live"}, 2)))
    started = time.monotonic()
    reader.start()
    time.sleep(0.3)
    http.create(WIDGETS, {"metadata": {"name": "live"}})
    reader.join(10)
    assert [e["type"] for e in seen] == ["ADDED"]
    assert 1.5 < time.monotonic() - started < 8


def test_watch_from_a_compacted_version_is_gone(api, http: Http):
    """Real: a resourceVersion older than etcd's history gives one ERROR event with a 410 Gone Status."""
    server = api.server
    limit = server.history_limit
    server.history_limit = 5
    try:
        first = http.create(WIDGETS, {"metadata": {"name": "compact-0"}})
        for number in range(1, 8):
            http.create(WIDGETS, {"metadata": {"name": f"compact-{number}"}})
        events = _watch(http, WIDGETS, {"resourceVersion": first["metadata"]["resourceVersion"]}, 1)
    finally:
        server.history_limit = limit
    assert [(e["type"], e["object"]["code"]) for e in events] == [("ERROR", 410)]


def test_finalizers_hold_deletion_until_removed(http: Http):
    """Real: DELETE of an object with finalizers only sets deletionTimestamp; removing them deletes it."""
    path = f"{WIDGETS}/held"
    http.create(WIDGETS, {"metadata": {"name": "held", "finalizers": ["example.com/keep"]}})
    deleted = http.request("DELETE", path)
    assert deleted.status_code == 200 and deleted.json()["metadata"]["deletionTimestamp"]
    assert http.get(path).status_code == 200
    http.patch(path, {"metadata": {"finalizers": None}})
    assert http.get(path).status_code == 404


def test_deleting_an_owner_collects_its_dependents(http: Http):
    """Real: the garbage collector deletes objects whose ownerReferences name a deleted owner's uid."""
    owner = http.create(WIDGETS, {"metadata": {"name": "owner"}})
    reference = {"apiVersion": "example.com/v1", "kind": "Widget", "name": "owner", "uid": owner["metadata"]["uid"]}
    http.create(JOBS, job("dependent", ownerReferences=[reference]))
    http.request("DELETE", f"{WIDGETS}/owner")
    assert http.get(f"{JOBS}/dependent").status_code == 404


def test_orphan_propagation_keeps_dependents(http: Http):
    """Real: propagationPolicy=Orphan deletes the owner and strips the ownerReference from dependents."""
    owner = http.create(WIDGETS, {"metadata": {"name": "orphaner"}})
    reference = {"apiVersion": "example.com/v1", "kind": "Widget", "name": "orphaner",
                 "uid": owner["metadata"]["uid"]}
    http.create(JOBS, job("orphan", ownerReferences=[reference]))
    http.request("DELETE", f"{WIDGETS}/orphaner", params={"propagationPolicy": "Orphan"})
    orphan = http.get(f"{JOBS}/orphan").json()
    assert orphan["metadata"].get("ownerReferences") == []


def test_a_delete_precondition_on_uid_conflicts(http: Http, widget):
    """Real: DeleteOptions.preconditions.uid that does not match gives 409."""
    response = http.request("DELETE", f"{WIDGETS}/{widget['metadata']['name']}",
                            {"preconditions": {"uid": "not-the-uid"}})
    assert response.status_code == 409


def test_discovery_serves_registered_custom_resources_and_status(http: Http):
    """Real: /apis/GROUP/VERSION lists the CRD's resource and its status subresource with their verbs."""
    resources = {r["name"]: r for r in http.get("/apis/example.com/v1").json()["resources"]}
    assert resources["widgets"]["kind"] == "Widget" and resources["widgets"]["namespaced"] is True
    assert "widgets/status" in resources and "update" in resources["widgets"]["verbs"]


def test_creating_a_crd_object_registers_its_resource(http: Http):
    """Real: POSTing a CustomResourceDefinition makes its resource servable."""
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "gadgets.example.org"},
           "spec": {"group": "example.org", "scope": "Namespaced",
                    "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
    http.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert http.create("/apis/example.org/v1/namespaces/ns/gadgets", {"metadata": {"name": "g"}})["kind"] == "Gadget"


def test_server_side_tables_use_the_printer_columns(http: Http, widget):
    """Real: with Accept ...;as=Table, the server answers a meta.k8s.io/v1 Table: Name + printer columns."""
    accept = "application/json;as=Table;g=meta.k8s.io;v=v1"
    table = http.get(WIDGETS, headers={"Accept": accept}).json()
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Size", "Phase"]
    row = next(r for r in table["rows"] if r["cells"][0] == widget["metadata"]["name"])
    assert row["cells"][1] == 1


def test_date_columns_are_ages_and_builtin_kinds_have_their_printers_columns(http: Http):
    """Real: the CRD table convertor renders `date` cells with duration.HumanDuration ("5s", "2d3h");
    Deployments print Ready, Up-to-date, Available; Pods Ready, Status, Restarts (then Age)."""
    from faithful_kube.tables import human_duration

    assert [human_duration(s) for s in (5, 119, 150, 600, 3 * 3600 + 60, 30 * 3600, 3 * 86400 + 7200)] == \
        ["5s", "119s", "2m30s", "10m", "3h1m", "30h", "3d2h"]
    accept = "application/json;as=Table;g=meta.k8s.io;v=v1"
    http.create("/apis/apps/v1/namespaces/ns/deployments", {"metadata": {"name": "web"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    table = http.get("/apis/apps/v1/namespaces/ns/deployments", headers={"Accept": accept}).json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    row = table["rows"][0]["cells"]
    assert row[:4] == ["web", "0/2", 0, 0] and row[4].endswith("s")


def test_discovery_lists_subresources_without_short_names(http: Http):
    """Real: /apis/G/V lists `widgets/status` with no shortNames (kubectl warns of ambiguity otherwise)."""
    listing = http.get("/apis/example.com/v1").json()
    status = next(r for r in listing["resources"] if r["name"] == "widgets/status")
    main = next(r for r in listing["resources"] if r["name"] == "widgets")
    assert status["shortNames"] == [] and main["shortNames"] == ["wd"]


def test_the_request_log_stays_bounded(api, http: Http):
    """kmock matches each request against all earlier ones; the log is trimmed so latency stays flat."""
    session = requests.Session()

    def timed(count: int) -> float:
        started = time.perf_counter()
        for _ in range(count):
            session.get(api.url + WIDGETS, timeout=10)
        return (time.perf_counter() - started) / count

    early = timed(100)
    timed(1000)
    late = timed(100)
    assert len(api.server._requests) <= api.server.request_log_limit
    assert late < early * 3
    assert len(api.audit) > 1200  # the compact audit (for RBAC checks) keeps everything


def test_the_pod_proxy_reaches_the_pods_port_and_says_503_when_nothing_listens(http: Http):
    """Real: GET /api/v1/namespaces/NS/pods/NAME:PORT/proxy/PATH answers with the pod's own response
    (status, body, content type); a port nobody listens on is 503 ServiceUnavailable; an unknown pod 404."""
    import http.server as stdlib_http
    import socket

    from faithful_kube.server import PORT_MAP

    class Handler(stdlib_http.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"seen {self.path}".encode()
            self.send_response(200 if self.path.startswith("/metrics") else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = stdlib_http.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    try:
        for name, port in (("served", server.server_address[1]), ("silent", closed_port)):
            http.create("/api/v1/namespaces/ns/pods", {
                "metadata": {"name": name, "annotations": {PORT_MAP: json.dumps({"8080": port})}},
                "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"name": "http",
                                                                              "containerPort": 8080}]}]}})
        answer = http.get("/api/v1/namespaces/ns/pods/served:8080/proxy/metrics")
        assert answer.status_code == 200 and answer.text == "seen /metrics"
        assert answer.headers["Content-Type"].startswith("text/plain")
        assert http.get("/api/v1/namespaces/ns/pods/served:http/proxy/metrics").text == "seen /metrics"
        assert http.get("/api/v1/namespaces/ns/pods/served:8080/proxy/other").status_code == 404
        assert http.get("/api/v1/namespaces/ns/pods/silent:8080/proxy/metrics").status_code == 503
        assert http.get("/api/v1/namespaces/ns/pods/nobody:8080/proxy/metrics").status_code == 404
    finally:
        server.shutdown()


CORE_EVENTS = "/api/v1/namespaces/ns/events"
V1_EVENTS = "/apis/events.k8s.io/v1/namespaces/ns/events"


def core_event(name: str, reason: str, about: str = "churn") -> dict:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
            "involvedObject": {"kind": "RetrainPolicy", "name": about, "namespace": "ns"},
            "reason": reason, "message": f"{reason} happened", "type": "Normal", "count": 1,
            "firstTimestamp": "2026-11-25T20:00:00Z", "lastTimestamp": "2026-11-25T20:00:00Z",
            "source": {"component": "retrain-operator"}}


def test_events_are_one_resource_readable_through_both_apis(http: Http):
    """Real: a v1 Event is also an events.k8s.io/v1 Event (regarding, note, deprecated* fields)."""
    http.create(CORE_EVENTS, core_event("ev-a", "RunStarted"))
    http.create(CORE_EVENTS, core_event("ev-b", "RunStarted", about="other"))
    listed = http.get(V1_EVENTS, params={"fieldSelector": "regarding.name=churn"}).json()
    [item] = [i for i in listed["items"] if i["metadata"]["name"] == "ev-a"]
    assert item["apiVersion"] == "events.k8s.io/v1" and item["note"] == "RunStarted happened"
    assert item["regarding"]["kind"] == "RetrainPolicy" and item["deprecatedSource"]["component"] == "retrain-operator"
    assert item["deprecatedCount"] == 1 and "message" not in item and "involvedObject" not in item
    assert all(i["regarding"]["name"] == "churn" for i in listed["items"])
    assert http.get(f"{V1_EVENTS}/ev-a").json()["reason"] == "RunStarted"


def test_an_event_created_through_events_k8s_io_is_stored_once_and_read_through_v1(http: Http):
    """Real: creating through the new API gives the same object through the old one."""
    created = http.create(V1_EVENTS, {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "ev-c"},
                                      "regarding": {"kind": "Pod", "name": "p", "namespace": "ns"},
                                      "note": "pulled", "reason": "Pulled", "type": "Normal",
                                      "eventTime": "2026-11-25T20:00:00.000000Z", "reportingController": "kubelet",
                                      "reportingInstance": "node-1", "action": "Pull"})
    assert created["note"] == "pulled"
    old = http.get(f"{CORE_EVENTS}/ev-c").json()
    assert (old["message"], old["involvedObject"]["name"], old["reportingComponent"]) == ("pulled", "p", "kubelet")


def test_events_print_with_the_built_in_event_columns(http: Http):
    http.create(CORE_EVENTS, core_event("ev-d", "ModelPromoted"))
    table = http.get(V1_EVENTS, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
    names = [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0]
    assert names == ["Last Seen", "Type", "Reason", "Object", "Message"]
    [row] = [r for r in table["rows"] if r["object"]["metadata"]["name"] == "ev-d"]
    assert row["cells"][1:4] == ["Normal", "ModelPromoted", "retrainpolicy/churn"]
    assert row["cells"][6] == "ModelPromoted happened" and row["cells"][5] == "retrain-operator"


def test_core_discovery_names_its_group_version_v1(http: Http):
    """Real: /api/v1 says groupVersion "v1"; clients key core resources by it (kubectl get pods)."""
    assert http.get("/api/v1").json()["groupVersion"] == "v1"
    assert http.get("/apis/batch/v1").json()["groupVersion"] == "batch/v1"
