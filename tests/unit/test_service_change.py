"""What to do about an existing Service: only the fields the operator manages count, and never adopt."""

from __future__ import annotations

import copy

import json_merge_patch

from retrain_contract.api import names
from retrain_contract.api.spec import PolicySpec
from retrain_operator.core import serving
from retrain_operator.core.jobs import PolicyRef

REF = PolicyRef("churn", "ml", "uid-1")
SPEC = PolicySpec.from_dict({
    "model": {"estimator": "SGDClassifier", "target": "y"}, "data": {"history": "s3://data/x/"},
    "storage": {"bucket": "models", "credentialsSecret": {"name": "s3"}},
    "serving": {"replicas": 2, "port": 9000},
})


def wanted() -> dict:
    return serving.services(REF, SPEC)[1]  # churn-model-stable


def as_stored(manifest: dict) -> dict:
    """The Service as the API server returns it: defaults filled in, fields of its own added."""
    stored = copy.deepcopy(manifest)
    stored["metadata"].update(uid="svc-uid", resourceVersion="17", creationTimestamp="2026-11-24T10:00:00Z")
    stored["spec"].update(clusterIP="10.0.0.7", clusterIPs=["10.0.0.7"], sessionAffinity="None",
                          ipFamilies=["IPv4"], ipFamilyPolicy="SingleStack", internalTrafficPolicy="Cluster")
    for port in stored["spec"]["ports"]:
        port["protocol"] = "TCP"
    stored["status"] = {"loadBalancer": {}}
    return stored


def test_an_absent_service_is_created():
    assert serving.service_change(None, wanted()).action == serving.CREATE


def test_our_service_as_the_server_stores_it_is_left_alone():
    change = serving.service_change(as_stored(wanted()), wanted())
    assert change.action == serving.KEEP and change.patch is None


def test_a_users_annotations_and_labels_stay_and_do_not_cause_a_patch():
    existing = as_stored(wanted())
    existing["metadata"]["annotations"] = {"team.example.com/owner": "ml-platform"}
    existing["metadata"]["labels"]["team.example.com/cost-center"] = "42"
    assert serving.service_change(existing, wanted()).action == serving.KEEP


def test_a_changed_selector_is_set_back_exactly_and_nothing_else_is_touched():
    existing = as_stored(wanted())
    existing["metadata"]["annotations"] = {"keep": "me"}
    existing["spec"]["selector"] = {**existing["spec"]["selector"], names.LABEL_ROLE: "canary", "extra": "x"}
    change = serving.service_change(existing, wanted())
    assert change.action == serving.PATCH
    assert change.patch == {"spec": {"selector": {**wanted()["spec"]["selector"], "extra": None}}}
    patched = json_merge_patch.merge(copy.deepcopy(existing), change.patch)
    assert patched["spec"]["selector"] == wanted()["spec"]["selector"]
    assert patched["spec"]["clusterIP"] == "10.0.0.7" and patched["metadata"]["annotations"] == {"keep": "me"}
    assert serving.service_change(patched, wanted()).action == serving.KEEP


def test_ports_and_type_are_managed():
    existing = as_stored(wanted())
    existing["spec"]["ports"][0]["port"] = 80
    change = serving.service_change(existing, wanted())
    assert change.patch == {"spec": {"ports": wanted()["spec"]["ports"]}}

    existing = as_stored(wanted())
    existing["spec"]["type"] = "NodePort"
    existing["spec"]["ports"][0]["nodePort"] = 30080
    change = serving.service_change(existing, wanted())
    assert change.patch == {"spec": {"type": "ClusterIP", "ports": wanted()["spec"]["ports"]}}

    existing = as_stored(wanted())
    existing["spec"]["ports"].append({"name": "debug", "port": 5000, "protocol": "TCP"})
    assert serving.service_change(existing, wanted()).patch == {"spec": {"ports": wanted()["spec"]["ports"]}}


def test_a_missing_label_of_ours_is_added_without_removing_others():
    existing = as_stored(wanted())
    del existing["metadata"]["labels"][names.LABEL_MANAGED_BY]
    existing["metadata"]["labels"]["theirs"] = "1"
    change = serving.service_change(existing, wanted())
    assert change.patch == {"metadata": {"labels": {names.LABEL_MANAGED_BY: names.MANAGED_BY}}}


def test_a_service_of_someone_else_or_of_no_one_is_never_adopted():
    foreign = as_stored(wanted())
    foreign["metadata"]["ownerReferences"] = [{"apiVersion": names.API_VERSION, "kind": names.KIND,
                                               "name": "churn", "uid": "uid-of-a-deleted-policy"}]
    change = serving.service_change(foreign, wanted())
    assert change.action == serving.NOT_OWNED and change.patch is None
    assert "churn-model-stable" in change.message and "uid-of-a-deleted-policy" in change.message

    unowned = as_stored(wanted())
    del unowned["metadata"]["ownerReferences"]
    change = serving.service_change(unowned, wanted())
    assert change.action == serving.NOT_OWNED and "no owner" in change.message
