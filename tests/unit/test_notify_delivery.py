"""What a notification carries and how it is delivered, without I/O: the Event as outbox, the bodies, the
retry schedule, and the webhook's Secrets (whose values never appear in a message or a repr)."""

from __future__ import annotations

import base64
import datetime as dt
import json

from retrain_contract.api.spec import NotifierSpec, SecretKeyRef
from retrain_operator.core import event_records
from retrain_operator.core.notifications import outbox, payloads, retry, targets
from retrain_operator.core.notifications.select import Outgoing

NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
POLICY = {"metadata": {"name": "churn", "namespace": "ml", "uid": "uid-1", "resourceVersion": "7"}}
URL = "https://hooks.example.com/services/T000/B000/XXXXSECRETXXXX"


def _record(reason: str = "RunSucceeded", type_: str = "Normal", message: str = "v3 trained (manual); now current"):
    return event_records.event_object(POLICY, "key", type_, reason, message, NOW, "op-0")


def _pending(reason: str = "RunSucceeded", type_: str = "Normal", message: str = "v3 trained (manual); now current",
             title: str = "run succeeded"):
    marked = outbox.mark(_record(reason, type_, message), Outgoing("run", title, ("ops", "chat"), "v3"))
    found = outbox.read(marked)
    assert found is not None
    return found


def _secret(**values: str) -> dict:
    return {"metadata": {"name": "s"}, "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}}


# -- the Event as outbox ---------------------------------------------------------------------------------


def test_an_event_carries_what_it_owes_and_reads_back_the_same():
    record = _record()
    marked = outbox.mark(record, Outgoing("drift", "drift detected", ("ops",), "v2", "d7"))
    assert "labels" not in record["metadata"]  # the record is not modified
    assert marked["metadata"]["labels"] == {"retrain.mlops.dev/notify": "pending"}
    assert marked["metadata"]["name"] == record["metadata"]["name"]  # the name is the decision's, labels aside
    pending = outbox.read(marked)
    assert pending is not None
    assert (pending.id, pending.namespace, pending.policy, pending.uid) == (record["metadata"]["name"], "ml",
                                                                           "churn", "uid-1")
    assert pending.outgoing == Outgoing("drift", "drift detected", ("ops",), "v2", "d7")
    assert pending.time == "2026-11-24T10:00:00Z"


def test_only_a_readable_pending_event_is_owed():
    marked = outbox.mark(_record(), Outgoing("run", "run succeeded", ("ops",)))
    assert outbox.read(_record()) is None
    closed = {**marked, "metadata": {**marked["metadata"], "labels": {outbox.LABEL: outbox.SENT}}}
    assert outbox.read(closed) is None
    broken = {**marked, "metadata": {**marked["metadata"], "annotations": {outbox.ANNOTATION: "{not json"}}}
    assert outbox.read(broken) is None


def test_closing_an_event_is_a_label_and_a_line_per_notifier():
    patch = outbox.done(outbox.FAILED, {"ops": "sent (HTTP 200, attempt 2)", "chat": "failed: HTTP 404"})
    assert patch == {"metadata": {"labels": {outbox.LABEL: "failed"}, "annotations": {
        outbox.RESULT_ANNOTATION: "ops: sent (HTTP 200, attempt 2); chat: failed: HTTP 404"}}}


# -- the bodies ----------------------------------------------------------------------------------------------


def test_the_json_document_names_the_policy_the_outcome_and_a_stable_id():
    pending = _pending()
    document = json.loads(payloads.body("json", pending))
    assert document == {
        "schema": "retrain.mlops.dev/notification/v1", "id": pending.id,
        "policy": {"namespace": "ml", "name": "churn", "uid": "uid-1"}, "category": "run", "type": "Normal",
        "reason": "RunSucceeded", "title": "run succeeded", "message": "v3 trained (manual); now current",
        "version": "v3", "time": "2026-11-24T10:00:00Z"}
    assert json.loads(payloads.body("json", _pending()))["id"] == pending.id  # the same decision, the same id


def test_the_slack_message_has_text_and_blocks_and_escapes_slacks_control_characters():
    message = json.loads(payloads.body("slack", _pending("RunFailed", "Warning", "v3 failed: a < b & c > d",
                                                         "run failed")))
    assert message["text"].startswith(":warning: *ml/churn* v3: run failed\n")
    assert message["text"].endswith("v3 failed: a &lt; b &amp; c &gt; d")
    assert [block["type"] for block in message["blocks"]] == ["section", "context"]
    assert "RunFailed" in message["blocks"][1]["elements"][0]["text"]


# -- retries -------------------------------------------------------------------------------------------------


def test_transient_answers_are_tried_again_and_others_are_not():
    verdicts = {status: retry.verdict(retry.Answer(status), 1) for status in (200, 204, 301, 400, 401, 403, 404,
                                                                              408, 429, 500, 502, 503)}
    assert verdicts == {200: "sent", 204: "sent", 301: "give-up", 400: "give-up", 401: "give-up", 403: "give-up",
                        404: "give-up", 408: "retry", 429: "retry", 500: "retry", 502: "retry", 503: "retry"}
    assert retry.verdict(retry.Answer(None, "cannot connect (Connection refused)"), 1) == "retry"
    assert retry.verdict(retry.Answer(503), retry.MAX_ATTEMPTS) == "give-up"  # bounded


def test_the_backoff_doubles_and_a_retry_after_is_honoured_within_a_cap():
    assert [retry.delay(n, retry.Answer(500), NOW) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert retry.delay(1, retry.Answer(429, retry_after="7"), NOW) == 7
    assert retry.delay(4, retry.Answer(429, retry_after="2"), NOW) == 8  # never sooner than the backoff
    assert retry.delay(1, retry.Answer(429, retry_after="86400"), NOW) == retry.MAX_RETRY_AFTER
    assert retry.delay(1, retry.Answer(503, retry_after="Tue, 24 Nov 2026 10:00:30 GMT"), NOW) == 30
    assert retry.delay(1, retry.Answer(503, retry_after="soon"), NOW) == 1


# -- the webhook's Secrets -----------------------------------------------------------------------------------


def test_the_url_and_headers_come_from_secrets_and_never_show():
    notifier = NotifierSpec("ops", SecretKeyRef("hook", "url"), headers_secret="hook-headers")
    target, problem = targets.resolve(notifier, _secret(url=URL + "\n"), _secret(Authorization="Bearer t0ken\n"),
                                      "ml")
    assert problem is None and target is not None
    assert (target.url, target.headers, target.host) == (URL, {"Authorization": "Bearer t0ken"},
                                                         "hooks.example.com")
    assert "SECRET" not in repr(target) and "t0ken" not in repr(target)


def test_what_keeps_a_notifier_from_its_webhook_is_said_without_the_values():
    notifier = NotifierSpec("ops", SecretKeyRef("hook", "url"), headers_secret="hook-headers")
    cases = {
        "NotifierSecretNotFound": (None, None),
        "NotifierSecretKeyMissing": (_secret(other=URL), None),
        "NotifierURLInvalid": (_secret(url="ftp://SECRET@example.com/x"), None),
    }
    for reason, (url_secret, headers) in cases.items():
        target, problem = targets.resolve(notifier, url_secret, headers, "ml")
        assert target is None and problem is not None and problem[0] == reason, reason
        assert "SECRET" not in problem[1] and "notifier ops" in problem[1]
    assert targets.resolve(notifier, _secret(url="not a url"), None, "ml")[1][0] == "NotifierURLInvalid"
    for headers in (None, _secret(**{"Content-Length": "3"}), _secret(**{"X-Token": "a\nSECRET: b"})):
        target, problem = targets.resolve(notifier, _secret(url=URL), headers, "ml")
        assert problem is not None and problem[0] in ("NotifierSecretNotFound", "NotifierHeadersInvalid")
        assert "SECRET" not in problem[1]
    plain = NotifierSpec("ops", SecretKeyRef("hook", "url"))
    assert targets.resolve(plain, {"stringData": {"url": URL}}, None, "ml")[0] is not None
