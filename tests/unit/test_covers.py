"""The Deployment comparison sees through what a real API server does to a manifest."""

from __future__ import annotations

from retrain_operator.adapters.kube import _covers


def test_quantities_compare_by_value_as_the_server_normalises_them():
    wanted = {"template": {"spec": {"containers": [{"name": "s", "resources": {
        "limits": {"cpu": 0.5, "memory": "1024Mi", "nvidia.com/gpu": 1}, "requests": {"cpu": 1}}}]}}}
    stored = {"template": {"spec": {"containers": [{"name": "s", "terminationMessagePath": "/dev/termination-log",
                                                    "resources": {"limits": {"cpu": "500m", "memory": "1Gi",
                                                                             "nvidia.com/gpu": "1"},
                                                                  "requests": {"cpu": "1"}}}]}}}
    assert _covers(stored, wanted)


def test_a_changed_quantity_or_field_is_seen():
    wanted = {"resources": {"limits": {"cpu": 2}}, "replicas": 2}
    assert not _covers({"resources": {"limits": {"cpu": "1"}}, "replicas": 2}, wanted)
    assert not _covers({"resources": {"limits": {"cpu": "2"}}, "replicas": 1}, wanted)
    assert not _covers({"resources": {"limits": {}}, "replicas": 2}, wanted)


def test_outside_resources_values_compare_exactly():
    assert not _covers({"args": ["1"]}, {"args": [1]})
    assert not _covers({"name": "1Gi"}, {"name": "1024Mi"})
