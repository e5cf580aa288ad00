"""spec.notify end to end: a real operator posts a run's outcomes to a webhook receiver on 127.0.0.1, in the
operator's JSON and in Slack's format, retries a 500, says what a missing Secret keeps from being sent,
never shows a URL or a header in its log, and delivers after a restart what the previous process still owed."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from retrain_contract.api import names
from retrain_operator.core.conditions import get_condition
from retrain_operator.core.notifications import outbox
from retrain_sandbox.cluster import LocalCluster
from retrain_sandbox.seaweed import SeaweedS3

from ..webhook_receiver import Received, WebhookReceiver
from .conftest import Scenario, running_cluster
from .operator_metrics import sample, scrape, serve_args

pytestmark = pytest.mark.integration
OPS_TOKEN, CHAT_TOKEN, PAGER_TOKEN = "0ps-path-t0ken", "xoxb-chat-t0ken", "pager-path-t0ken"
AUTHORIZATION = "Bearer h3ader-s3cret"
SECRETS = (OPS_TOKEN, CHAT_TOKEN, PAGER_TOKEN, "h3ader-s3cret")
NOTIFY = [
    {"name": "ops", "urlSecret": {"name": "ops-hook"}, "headersSecret": {"name": "ops-headers"},
     "categories": ["run", "gate"]},
    {"name": "chat", "type": "slack", "urlSecret": {"name": "chat-hook", "key": "webhook"}, "categories": ["run"]},
    {"name": "pager", "urlSecret": {"name": "pager-hook"}, "categories": ["run"]},  # its Secret comes later
]


@pytest.fixture(scope="module")
def cluster(seaweed: SeaweedS3, tmp_path_factory: pytest.TempPathFactory, metrics_port: int,
            devcluster: Any) -> Iterator[LocalCluster]:
    yield from running_cluster(seaweed, tmp_path_factory, devcluster, operator_args=serve_args(metrics_port))


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    started = WebhookReceiver().start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def notified(cluster: LocalCluster, seaweed: SeaweedS3) -> Iterator[Scenario]:
    """One policy with three notifiers, shared by the tests in order (the second continues the first)."""
    scenario = Scenario(cluster, seaweed.client())
    yield scenario
    cluster.delete_namespace(scenario.namespace)


def secret(scenario: Scenario, name: str, data: dict[str, str]) -> None:
    scenario.cluster.core.create_namespaced_secret(scenario.namespace, {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}})


def documents(receiver: WebhookReceiver, path: str, reason: str, version: str, status: int = 200) -> list[Received]:
    return [r for r in receiver.requests(path) if r.status == status and r.json().get("reason") == reason
            and r.json().get("version") == version]


def event(scenario: Scenario, name: str) -> dict[str, Any]:
    return next(e for e in scenario.cluster.events(scenario.namespace, "churn") if e["metadata"]["name"] == name)


def test_a_run_reaches_a_json_and_a_slack_webhook_with_a_retry_and_no_secret_in_the_log(
        notified: Scenario, receiver: WebhookReceiver, metrics_port: int):
    scenario, ns = notified, notified.namespace
    receiver.answer((500, {}, 0.0))  # the very first POST fails: it is tried again
    secret(scenario, "ops-hook", {"url": receiver.url(f"/ops/{OPS_TOKEN}")})
    secret(scenario, "ops-headers", {"Authorization": AUTHORIZATION})
    secret(scenario, "chat-hook", {"webhook": receiver.url(f"/chat/{CHAT_TOKEN}")})
    scenario.load_history()
    scenario.cluster.apply_policy(ns, "churn", scenario.policy_spec(notify=NOTIFY),
                                  annotations={names.ANNOTATION_TRIGGER: "first"})
    status = scenario.wait_recorded("churn", "v1")
    assert status["lastRun"]["phase"] == "Succeeded"  # a notifier without its Secret holds nothing up
    ready = get_condition(status["conditions"], "NotifiersReady")
    assert (ready["status"], ready["reason"]) == ("False", "NotifierSecretNotFound")
    assert ready["message"] == f"notifier pager: Secret 'pager-hook' (urlSecret) does not exist in namespace '{ns}'"

    ops, chat = f"/ops/{OPS_TOKEN}", f"/chat/{CHAT_TOKEN}"
    scenario.cluster.wait(lambda: documents(receiver, ops, "RunSucceeded", "v1") and len(receiver.requests(chat)) == 2,
                          60, "the run's outcome at both webhooks")
    first, retried, succeeded = receiver.requests(ops)
    assert (first.status, retried.status, succeeded.status) == (500, 200, 200)
    started = retried.json()
    assert first.json() == started  # the same document again, with the same id
    uid = scenario.cluster.policy(ns, "churn")["metadata"]["uid"]
    assert {k: started[k] for k in ("schema", "policy", "category", "type", "reason", "title", "version")} == {
        "schema": "retrain.mlops.dev/notification/v1", "policy": {"namespace": ns, "name": "churn", "uid": uid},
        "category": "run", "type": "Normal", "reason": "RunStarted", "title": "run started", "version": "v1"}
    assert started["message"].startswith("v1 started by manual")
    assert succeeded.json()["message"].startswith("v1 trained (manual): accuracy=")
    assert all(r.headers["Authorization"] == AUTHORIZATION for r in receiver.requests(ops))
    assert started["id"] == retried.headers["X-Retrain-Notification-Id"]

    slack = [r.json() for r in receiver.requests(chat)]
    assert [m["text"].split("\n")[0] for m in slack] == [f":white_check_mark: *{ns}/churn* v1: run started",
                                                         f":white_check_mark: *{ns}/churn* v1: run succeeded"]
    assert all("Authorization" not in r.headers for r in receiver.requests(chat))

    # The Event is the outbox: closed once every notifier was tried (pager's Secret is missing: failed).
    record = event(scenario, started["id"])
    assert record["reason"] == "RunStarted"
    scenario.cluster.wait(lambda: event(scenario, started["id"])["metadata"]["labels"][outbox.LABEL] == "failed",
                          30, "the RunStarted Event to be closed")
    result = event(scenario, started["id"])["metadata"]["annotations"][outbox.RESULT_ANNOTATION]
    assert result.startswith("ops: sent (HTTP 200, attempt 2); chat: sent (HTTP 200, attempt 1); pager: not sent: "
                             "notifier pager: Secret 'pager-hook' (urlSecret) does not exist"), result
    reasons = scenario.cluster.wait(lambda: (lambda found: found if found.count("NotificationFailed") == 2 else None)(
        [e["reason"] for e in scenario.cluster.events(ns, "churn")]), 30, "pager's two NotificationFailed Events")
    assert "NotifierSecretNotFound" in reasons

    text = scrape(metrics_port)
    counts = {(notifier, result): sample(text, "retrain_notifications_total", namespace=ns, policy="churn",
                                         notifier=notifier, result=result)
              for notifier in ("ops", "chat", "pager") for result in ("sent", "retried", "failed")}
    assert counts == {("ops", "sent"): 2, ("ops", "retried"): 1, ("ops", "failed"): 0,
                      ("chat", "sent"): 2, ("chat", "retried"): 0, ("chat", "failed"): 0,
                      ("pager", "sent"): 0, ("pager", "retried"): 0, ("pager", "failed"): 2}

    log = scenario.cluster.operator_log.read_text()
    assert "not delivered to notifier pager" in log and "sent to notifier ops (127.0.0.1) at attempt 2" in log
    leaked = [token for token in SECRETS if token in log or token in json.dumps(scenario.cluster.events(ns))
              or token in json.dumps(scenario.status("churn"))]
    assert leaked == []

    # The missing Secret appears: the policy is woken and says so.
    secret(scenario, "pager-hook", {"url": receiver.url(f"/pager/{PAGER_TOKEN}")})
    scenario.wait_status("churn", lambda s: get_condition(s["conditions"], "NotifiersReady")["status"] == "True",
                         "NotifiersReady to turn True", timeout=30)
    print(f"JSON ({ops.split('/')[1]}):", json.dumps(succeeded.json(), indent=2))
    print("Slack (chat):", json.dumps(slack[1], indent=2, ensure_ascii=False))
    print("Event:", json.dumps({k: record[k] for k in ("metadata", "reason", "message")}, indent=2))


def test_a_notification_the_operator_owed_when_it_died_is_sent_by_the_next_one(
        notified: Scenario, receiver: WebhookReceiver):
    scenario, ns = notified, notified.namespace
    ops = f"/ops/{OPS_TOKEN}"
    receiver.answer(default=503)  # down: the RunStarted of v2 is being retried when the operator dies
    scenario.cluster.trigger(ns, "churn", "second")
    scenario.cluster.wait(lambda: documents(receiver, ops, "RunStarted", "v2", status=503), 60,
                          "a first attempt at the RunStarted of v2")
    scenario.cluster.restart_operator()
    receiver.answer(default=200)
    [delivered] = scenario.cluster.wait(lambda: documents(receiver, ops, "RunStarted", "v2"), 90,
                                        "the restarted operator to deliver what was owed")
    notification = delivered.json()["id"]
    scenario.cluster.wait(lambda: event(scenario, notification)["metadata"]["labels"][outbox.LABEL] == "sent", 30,
                          "the Event to be closed as sent")
    assert len(documents(receiver, f"/pager/{PAGER_TOKEN}", "RunStarted", "v2")) == 1
    scenario.wait_recorded("churn", "v2")
