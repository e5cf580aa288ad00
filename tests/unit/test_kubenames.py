"""Names and label values derived from a policy's name fit Kubernetes for every policy name the CRD accepts."""

from __future__ import annotations

import hashlib
import re

import pytest

from retrain_contract.api import names
from retrain_contract.api.spec import PolicySpec
from retrain_operator.api import kubenames
from retrain_operator.core import routes, serving
from retrain_operator.core.jobs import DriftRequest, PolicyRef, RunRequest, drift_job, trainer_job
from retrain_operator.core.runs import Trigger, job_name

# What the API server checks (k8s.io/apimachinery/pkg/util/validation).
DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
DNS1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def service_ok(name: str) -> bool:
    return len(name) <= 63 and DNS1035.fullmatch(name) is not None


def label_ok(name: str) -> bool:  # Deployment names, and anything used as a host name
    return len(name) <= 63 and DNS1123.fullmatch(name) is not None


def job_ok(name: str) -> bool:  # an object name whose pods carry it in the job-name label
    return len(name) <= 63 and SUBDOMAIN.fullmatch(name) is not None and LABEL_VALUE.fullmatch(name) is not None


def value_ok(value: str) -> bool:
    return len(value) <= 63 and LABEL_VALUE.fullmatch(value) is not None


def long_name(length: int, start: str = "churn-prediction-") -> str:
    """A valid policy name (DNS-1123 subdomain) of exactly `length` characters."""
    text = (start + "for-the-eu-region-with-a-very-descriptive-name-" * 10)[:length]
    return text[:-1] + "x" if not text[-1].isalnum() else text


SPEC = PolicySpec.from_dict({
    "model": {"estimator": "SGDClassifier", "target": "y"}, "data": {"history": "s3://data/x/"},
    "storage": {"bucket": "models", "credentialsSecret": {"name": "s3"}},
    "triggers": {"drift": {"data": "s3://data/recent/"}},
    "serving": {"replicas": 2, "router": {"type": "gatewayAPI", "httpRoute": "route"}},
})
TRIGGER = Trigger("manual", "test", "2026-11-24T10:00:00Z", "1")


def every_object(policy: str) -> dict[str, dict]:
    """Each kind of object the operator creates for a policy, by a short key."""
    ref = PolicyRef(policy, "ml", "uid-1")
    served = serving.Served("v12", "s3://models/ml/x/v12/", 2)
    objects = {
        "train": trainer_job(ref, SPEC, RunRequest("v12345", "v12344", TRIGGER), "trainer:1"),
        "drift": drift_job(ref, SPEC, DriftRequest("d678", "v12", "2026-11-24T10:00:00Z"), "trainer:1"),
        "stable": serving.model_deployment(ref, SPEC, serving.STABLE, served, "trainer:1"),
        "canary": serving.model_deployment(ref, SPEC, serving.CANARY, served, "trainer:1"),
    }
    for service in serving.services(ref, SPEC):
        objects[service["metadata"]["name"]] = service
    return objects


def labels_of(obj: dict) -> list[dict[str, str]]:
    found = [obj["metadata"].get("labels") or {}]
    spec = obj.get("spec") or {}
    if "template" in spec:
        found.append(spec["template"]["metadata"].get("labels") or {})
    if "selector" in spec:
        found.append(spec["selector"].get("matchLabels", spec["selector"]))
    return found


@pytest.mark.parametrize("length", [1, 50, 51, 63, 64, 100, 253])
def test_every_derived_name_and_label_value_is_valid_for_any_policy_name_length(length):
    policy = long_name(length)
    objects = every_object(policy)
    for key in ("train", "drift"):
        assert job_ok(objects[key]["metadata"]["name"]), objects[key]["metadata"]["name"]
    for key in ("stable", "canary"):
        assert label_ok(objects[key]["metadata"]["name"]), objects[key]["metadata"]["name"]
    services = [obj for obj in objects.values() if obj["kind"] == "Service"]
    assert len(services) == 3
    for service in services:
        assert service_ok(service["metadata"]["name"]), service["metadata"]["name"]
    for obj in objects.values():
        for labels in labels_of(obj):
            assert labels[names.LABEL_POLICY] == kubenames.policy_label(policy)
            for key, value in labels.items():
                assert value_ok(value), (key, value)
    for role in (None, serving.STABLE, serving.CANARY):
        assert service_ok(serving.service_name(policy, role))
        assert all(value_ok(value) for value in serving.selector(policy, role).values())
    for role in (serving.STABLE, serving.CANARY):
        assert label_ok(serving.deployment_name(policy, role))


@pytest.mark.parametrize("length", [64, 253])
def test_a_hashed_policy_label_comes_with_the_full_name_in_an_annotation(length):
    policy = long_name(length)
    assert kubenames.policy_label(policy) != policy
    for obj in every_object(policy).values():
        assert obj["metadata"]["annotations"][names.ANNOTATION_POLICY] == policy
        if "template" in obj["spec"]:
            assert obj["spec"]["template"]["metadata"]["annotations"][names.ANNOTATION_POLICY] == policy
        assert kubenames.policy_of(obj["metadata"]) == policy  # the watch handlers find the policy again
        meta_without_owner = {**obj["metadata"], "ownerReferences": []}
        assert kubenames.policy_of(meta_without_owner) == policy


def test_names_are_deterministic():
    policy = long_name(253)
    assert every_object(policy) == every_object(policy)
    assert kubenames.policy_label(policy) == kubenames.policy_label(policy)


def test_two_long_policies_sharing_a_100_character_prefix_never_share_a_name_or_label():
    prefix = long_name(100)
    first, second = prefix + "-alpha", prefix + "-bravo"
    derived = [
        lambda p: kubenames.policy_label(p),
        lambda p: serving.service_name(p),
        lambda p: serving.service_name(p, serving.STABLE),
        lambda p: serving.service_name(p, serving.CANARY),
        lambda p: serving.deployment_name(p, serving.STABLE),
        lambda p: serving.deployment_name(p, serving.CANARY),
        lambda p: job_name(p, "v1"),
        lambda p: job_name(p, "d1"),
    ]
    for derive in derived:
        assert derive(first) != derive(second)
    # ...and the selectors of one never select the other's pods
    assert serving.selector(first, serving.STABLE) != serving.selector(second, serving.STABLE)


def test_short_policies_keep_exactly_the_names_they_always_had():
    assert kubenames.policy_label("churn") == "churn"
    assert serving.service_name("churn") == "churn-model"
    assert serving.service_name("churn", serving.STABLE) == "churn-model-stable"
    assert serving.service_name("churn", serving.CANARY) == "churn-model-canary"
    assert serving.deployment_name("churn", serving.STABLE) == "churn-model-stable"
    assert job_name("churn", "v3") == "churn-v3"
    assert job_name("churn", "d7") == "churn-d7"
    assert serving.selector("churn", serving.STABLE)[names.LABEL_POLICY] == "churn"
    fifty = long_name(50)  # the longest name whose Services always fitted
    assert serving.service_name(fifty, serving.CANARY) == f"{fifty}-model-canary"
    sixty_three = long_name(63)
    assert kubenames.policy_label(sixty_three) == sixty_three
    assert kubenames.policy_annotations(sixty_three) == {}
    objects = every_object("churn")
    assert all(names.ANNOTATION_POLICY not in (obj["metadata"].get("annotations") or {}) for obj in objects.values())


def _old_job_name(policy: str, version: str) -> str:
    """core/runs.job_name before the shared helper: long Job names must not change either."""
    name = f"{policy}-{version}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    keep = 63 - len(version) - len(digest) - 2
    return f"{policy[:keep].rstrip('-')}-{digest}-{version}"


@pytest.mark.parametrize("policy", ["churn", "a.b", long_name(58), long_name(63), long_name(120), long_name(253),
                                    "team.churn." + long_name(90)])
def test_job_names_are_the_ones_the_operator_always_gave(policy):
    for suffix in ("v1", "v12345", "d3"):
        assert job_name(policy, suffix) == _old_job_name(policy, suffix)
        assert job_ok(job_name(policy, suffix))


@pytest.mark.parametrize("policy", ["a.b", "team.churn", "1st-model", "9", "x" * 253, "a" + ".b" * 126])
def test_names_that_never_fitted_a_service_become_valid(policy):
    for role in (None, serving.STABLE, serving.CANARY):
        assert service_ok(serving.service_name(policy, role)), serving.service_name(policy, role)
    for role in (serving.STABLE, serving.CANARY):
        assert label_ok(serving.deployment_name(policy, role))
    assert value_ok(kubenames.policy_label(policy))
    assert job_ok(job_name(policy, "v1"))
    # a dot replaced by a dash never makes two policies meet
    assert serving.service_name("a.b") != serving.service_name("a-b")


def test_bounded_keeps_the_tail_readable_and_refuses_a_tail_the_syntax_forbids():
    name = kubenames.bounded(long_name(100), "-model-stable", kubenames.DNS1035_LABEL)
    assert name.endswith("-model-stable") and len(name) == 63
    assert re.fullmatch(r".*-[0-9a-f]{8}-model-stable", name)
    with pytest.raises(ValueError):
        kubenames.bounded("x" * 100, "_Bad", kubenames.DNS1123_LABEL)
    with pytest.raises(ValueError):
        kubenames.bounded("x", "-" + "y" * 62, kubenames.DNS1123_LABEL)


def test_the_policy_of_an_object_is_its_owner_then_the_annotation_then_the_label():
    owner = {"apiVersion": names.API_VERSION, "kind": names.KIND, "name": "by-owner", "uid": "u"}
    assert kubenames.policy_of({"ownerReferences": [owner], "labels": {names.LABEL_POLICY: "x"}}) == "by-owner"
    assert kubenames.policy_of({"annotations": {names.ANNOTATION_POLICY: "by-annotation"},
                                "labels": {names.LABEL_POLICY: "x"}}) == "by-annotation"
    assert kubenames.policy_of({"labels": {names.LABEL_POLICY: "by-label"}}) == "by-label"
    other = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d", "uid": "u"}
    assert kubenames.policy_of({"ownerReferences": [other]}) is None
    assert kubenames.policy_of(None) is None


def test_route_backends_are_the_bounded_service_names():
    from retrain_operator.core import promotion
    from retrain_operator.core.observed import Observed
    from retrain_operator.core.status import PolicyStatus

    policy = long_name(253)
    ref = PolicyRef(policy, "ml", "uid-1")
    status = PolicyStatus.parse({"currentModel": {"version": "v1", "uri": "s3://models/ml/p/v1/"}})
    import datetime as dt

    result = promotion.step(SPEC, ref, status, {}, Observed(), dt.datetime(2026, 11, 24, tzinfo=dt.UTC), "t:1")
    assert result.plan is not None
    assert result.plan.stable_service == serving.service_name(policy, serving.STABLE)
    assert result.plan.canary_service == serving.service_name(policy, serving.CANARY)
    assert {s["metadata"]["name"] for s in result.plan.services} == {
        serving.service_name(policy, role) for role in (None, serving.STABLE, serving.CANARY)}
    route = {"spec": {"rules": [{"backendRefs": [{"name": result.plan.stable_service, "port": 8080}]}]}}
    operations = routes.httproute_patch(route, result.plan.stable_service, result.plan.canary_service, 10, 8080)
    backends = operations[-1]["value"]
    assert [b["name"] for b in backends] == [result.plan.stable_service, result.plan.canary_service]
