"""Which of a decision's Events are notified, to which notifiers, about which version (core/notifications/select.py),
and the NotifiersReady condition (core/decision/notifiers.py): decisions as the shell makes them, no I/O."""

from __future__ import annotations

import dataclasses

from retrain_contract.api import names
from retrain_contract.api.spec import NotifierSpec, SecretKeyRef
from retrain_operator.core.conditions import get_condition
from retrain_operator.core.decide import Event
from retrain_operator.core.notifications import select
from retrain_operator.core.observed import ACTIVE, Observed
from retrain_operator.core.references import SECRET, Ref, references

from .decisions import MANUAL, evaluation, finished_ok, job, started, step, then
from .policies import policy, spec

OPS = NotifierSpec("ops", SecretKeyRef("hook", "url"))
PAGER = NotifierSpec("pager", SecretKeyRef("pager-hook", "url"), type="slack", min_severity="Warning")
RUNS_ONLY = NotifierSpec("runs", SecretKeyRef("hook", "url"), categories=("run",))
NOTIFY = [{"name": "ops", "urlSecret": {"name": "hook"}},
          {"name": "pager", "type": "slack", "urlSecret": {"name": "pager-hook", "key": "webhook"},
           "headersSecret": {"name": "pager-headers"}, "minSeverity": "Warning"}]


def sent(plan, notifiers=(OPS, PAGER, RUNS_ONLY)) -> list[tuple[str, str, tuple[str, ...], str | None]]:
    found = []
    for event in plan.events:
        if (out := select.outgoing(event, notifiers, plan.status)) is not None:
            found.append((event.reason, out.category, out.notifiers, out.version))
    return found


def test_a_run_that_starts_and_succeeds_is_sent_with_its_version_to_those_that_want_it():
    state, plan = started()
    assert sent(plan) == [("RunStarted", "run", ("ops", "runs"), "v1")]
    assert sent(finished_ok(state)) == [("RunSucceeded", "run", ("ops", "runs"), "v1")]


def test_a_failed_run_and_a_gate_rejection_reach_the_warning_only_notifier_too():
    state, _ = started()
    state = then(state, finished_ok(state))
    state = dataclasses.replace(state, annotations={names.ANNOTATION_TRIGGER: "again"})
    state = then(state, step(state))
    rejected = finished_ok(state, "v2", {"version": "v2", "evaluation": evaluation(0.70)})
    assert sent(rejected) == [("GateFailed", "gate", ("ops", "pager"), "v2")]


def test_categories_of_the_reasons_the_operator_posts():
    assert select.category("Normal", "RolloutStarted") == ("rollout", "canary rollout started")
    assert select.category("Warning", "AnalysisFailed")[0] == "rollout"
    assert select.category("Warning", "DriftDetected")[0] == "drift"
    assert select.category("Normal", "UndoApplied")[0] == "undo"
    assert select.category("Warning", "ModelUnavailable")[0] == "serving"
    # Any other Warning (a Secret or bucket missing, a refused write) is a problem; other Normals are progress.
    assert select.category("Warning", "BucketNotFound") == ("problem", "BucketNotFound")
    assert select.category("Warning", "JobRejected") == ("problem", "JobRejected")
    assert select.category("Normal", "SomethingElse") is None


def test_progress_and_the_notifiers_own_events_are_never_sent():
    for reason in ("CanaryWeight", "StepsCompleted", "RolloutSucceeded", "NoDrift"):
        assert select.category("Normal", reason) is None, reason
    for reason in ("NotificationFailed", "NotifierSecretNotFound", "NotifierURLInvalid"):
        assert select.category("Warning", reason) is None, reason
        assert select.outgoing(Event("Warning", reason, "x"), [OPS], {}) is None


def test_on_and_min_severity_filter():
    assert select.wants(OPS, "Normal", "drift") and select.wants(OPS, "Warning", "problem")
    assert not select.wants(RUNS_ONLY, "Warning", "gate")
    assert not select.wants(PAGER, "Normal", "run") and select.wants(PAGER, "Warning", "run")
    assert select.outgoing(Event("Normal", "RunSkipped", "x"), [PAGER], {}) is None


def test_the_subject_comes_from_the_status_the_decision_wrote():
    status = {"activeRun": {"version": "v4"}, "lastRun": {"version": "v3"}, "rollout": {"version": "v3"},
              "lastUndo": {"version": "v1"}, "drift": {"checkId": "d7", "modelVersion": "v2"},
              "currentModel": {"version": "v2"}}
    cases = {"RunStarted": ("v4", None), "RunFailed": ("v3", None), "RunSkipped": (None, None),
             "GateInconclusive": ("v3", None), "ModelPromoted": ("v3", None), "UndoRefused": ("v1", None),
             "DriftDetected": ("v2", "d7"), "ArtifactsChanged": ("v2", None), "SecretNotFound": (None, None)}
    for reason, (version, check) in cases.items():
        out = select.outgoing(Event("Warning", reason, "m"), [OPS], status)
        assert out is not None and (out.version, out.check_id) == (version, check), reason


def test_a_spec_with_notifiers_reads_and_names_their_secrets():
    parsed = spec(notify=NOTIFY)
    assert references("ml", parsed) >= {Ref(SECRET, "ml", "hook"), Ref(SECRET, "ml", "pager-hook"),
                                        Ref(SECRET, "ml", "pager-headers")}
    assert references("ml", spec(notify=[{"name": "x", "urlSecret": 3}, "nonsense"])) == references("ml", spec())
    from retrain_contract.api.spec import PolicySpec

    ops, pager = PolicySpec.from_dict(parsed).notify
    assert ops == NotifierSpec("ops", SecretKeyRef("hook", "url"))  # json, every category, every severity
    assert (pager.type, pager.url.key, pager.headers_secret, pager.min_severity) == (
        "slack", "webhook", "pager-headers", "Warning")


def test_notifiers_ready_says_what_is_missing_once_and_goes_with_the_notifiers():
    state = policy(spec(notify=NOTIFY), annotations=MANUAL)
    problem = ("NotifierSecretNotFound", "notifier pager: Secret 'pager-hook' (urlSecret) does not exist in "
                                         "namespace 'ml'")
    plan = step(state, Observed(notify_problems=(problem,)))
    condition = get_condition(plan.status["conditions"], "NotifiersReady")
    assert (condition["status"], condition["reason"]) == ("False", "NotifierSecretNotFound")
    assert [e.reason for e in plan.events if e.type == "Warning"] == ["NotifierSecretNotFound"]
    assert plan.status["phase"] == "Training" and plan.create_job is not None  # nothing else waits for it
    running = (job("v1", ACTIVE),)
    again = step(then(state, plan), Observed(jobs=running, notify_problems=(problem,)))
    assert again.events == ()  # said once
    fixed = step(then(state, plan), Observed(jobs=running))
    condition = get_condition(fixed.status["conditions"], "NotifiersReady")
    assert (condition["status"], condition["reason"]) == ("True", "WebhooksFound")
    gone = step(dataclasses.replace(then(state, fixed), spec=spec()), Observed(jobs=running))
    assert get_condition(gone.status["conditions"], "NotifiersReady") is None


def test_a_write_refused_again_is_sent_once_not_at_each_attempt():
    refused = {"applyErrors": {"job": {"reason": "JobRejected", "attempts": 1}}}
    event = Event("Warning", "JobRejected", "Job churn-v1 refused (403 Forbidden): quota; attempt 1")
    assert select.outgoing(event, [OPS], refused).category == "problem"
    again = {"applyErrors": {"job": {"reason": "JobRejected", "attempts": 2}}}
    assert select.outgoing(event, [OPS], again) is None
