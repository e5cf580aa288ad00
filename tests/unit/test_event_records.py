"""Event names derived from the decision: the same decision posts the same names, another one new names."""

from __future__ import annotations

import datetime as dt

from retrain_operator.api import kubenames
from retrain_operator.core import event_records

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
POLICY = {"metadata": {"name": "churn", "namespace": "ml", "uid": "u-1", "resourceVersion": "7"}}


def test_the_same_decision_names_its_events_the_same():
    key = event_records.decision_key("u-1", {"runCounter": 1, "phase": "Ready"})
    again = event_records.decision_key("u-1", {"phase": "Ready", "runCounter": 1})  # key order does not matter
    assert key == again
    assert event_records.event_name("churn", key, "Normal", "RunStarted", "v2 started") == \
        event_records.event_name("churn", again, "Normal", "RunStarted", "v2 started")


def test_another_status_another_incarnation_or_other_words_give_another_name():
    key = event_records.decision_key("u-1", {"runCounter": 1})
    names = {
        event_records.event_name("churn", key, "Normal", "RunStarted", "v2 started"),
        event_records.event_name("churn", event_records.decision_key("u-1", {"runCounter": 2}), "Normal",
                                 "RunStarted", "v2 started"),
        event_records.event_name("churn", event_records.decision_key("u-2", {"runCounter": 1}), "Normal",
                                 "RunStarted", "v2 started"),
        event_records.event_name("churn", key, "Normal", "RunStarted", "v3 started"),
        event_records.event_name("churn", key, "Warning", "RunStarted", "v2 started"),
    }
    assert len(names) == 5


def test_names_are_subdomains_of_at_most_253_characters_for_any_policy_name():
    key = event_records.decision_key("u", {})
    for policy in ("churn", "a" * 253, "x." * 126 + "y", "ab-" * 84 + "c"):
        name = event_records.event_name(policy, key, "Normal", "RunStarted", "m")
        assert kubenames.EVENT_NAME.valid(name), name
        assert name.startswith(policy[:200].rstrip("-.")[:20])


def test_the_event_object_points_at_the_policy_and_cuts_long_messages():
    key = event_records.decision_key("u-1", {})
    event = event_records.event_object(POLICY, key, "Warning", "DriftDetected", "x" * 5000, NOW, "pod-1")
    assert event["involvedObject"] == {"apiVersion": "retrain.mlops.dev/v1alpha1", "kind": "RetrainPolicy",
                                       "name": "churn", "namespace": "ml", "uid": "u-1", "resourceVersion": "7"}
    assert len(event["message"]) == event_records.MAX_MESSAGE and event["message"].endswith("...")
    assert event["metadata"]["namespace"] == "ml" and event["metadata"]["name"].startswith("churn.")
    assert (event["type"], event["reason"], event["count"]) == ("Warning", "DriftDetected", 1)
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2026-12-02T12:00:00Z"
    assert event["reportingComponent"] == "retrain-operator" and event["reportingInstance"] == "pod-1"
