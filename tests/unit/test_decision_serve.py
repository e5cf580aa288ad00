"""The decision with serving: first model straight to stable, later ones through a canary rollout."""

from __future__ import annotations

import dataclasses
import datetime as dt

from retrain_contract.api import names
from retrain_operator.core.conditions import get_condition
from retrain_operator.core.decide import PolicyState
from retrain_operator.core.decision.outcomes import RolloutEnded
from retrain_operator.core.observed import (
    SUCCEEDED,
    ArtifactOutcome,
    DriftJobView,
    DriftOutcome,
    MetricsView,
    Observed,
    ServingView,
)

from .decisions import MANIFEST, job, step, then
from .policies import policy, spec

NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
SERVING = {"serving": {"replicas": 2, "router": {"type": "gatewayAPI", "httpRoute": "churn"}},
           "promotion": {"canary": {"steps": [{"setWeight": 25}, {"pause": {}}, {"setWeight": 100}],
                                    "analysis": {"interval": "1m", "minRequests": 10}}}}
EVALUATION = {"comparison": {"rows": 200, "challenger": {"f1Macro": 0.9}, "champion": {"f1Macro": 0.88}}}


def deployment(name: str, version: str, replicas: int = 2, ready: bool = True) -> dict:
    ready_count = replicas if ready else 0
    return {"metadata": {"name": name, "generation": 1},
            "spec": {"replicas": replicas,
                     "template": {"metadata": {"labels": {names.LABEL_MODEL_VERSION: version}}}},
            "status": {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                       "readyReplicas": ready_count}}


def finish(state: PolicyState, version: str, observed: Observed | None = None) -> PolicyState:
    observed = observed or Observed()
    seen = dataclasses.replace(observed, jobs=(job(version, SUCCEEDED),), outcomes={version: ArtifactOutcome(
        manifest={**MANIFEST, "version": version, "evaluation": EVALUATION},
        uri=f"s3://models/retrain/ml/churn/{version}/")})
    return then(state, step(state, seen, NOW))


def active(version: str, parent: str | None) -> dict:
    return {"version": version, "jobName": f"churn-{version}", "trigger": {"type": "manual"},
            "parentVersion": parent, "startedAt": "2026-11-24T09:30:00Z"}


def serving_v1() -> PolicyState:
    state = policy(spec(**SERVING), status={"runCounter": 1, "activeRun": active("v1", None)})
    return finish(state, "v1")


def test_the_first_model_goes_straight_to_the_stable_deployment():
    state = serving_v1()
    plan = step(state, Observed(), NOW)
    assert plan.status["currentModel"]["version"] == "v1" and not plan.status.get("rollout")
    deployments = {d["metadata"]["name"]: d for d in plan.serving.deployments}
    assert set(deployments) == {"churn-model-stable"}
    assert deployments["churn-model-stable"]["spec"]["replicas"] == 2
    assert plan.serving.weight == 0 and plan.serving.route_name == "churn"
    assert {s["metadata"]["name"] for s in plan.serving.services} == {
        "churn-model", "churn-model-stable", "churn-model-canary"}


def rolling() -> PolicyState:
    state = serving_v1()
    state = dataclasses.replace(state, status={**state.status, "runCounter": 2, "activeRun": active("v2", "v1")})
    serving = Observed(serving=ServingView(stable=deployment("churn-model-stable", "v1")))
    return finish(state, "v2", serving)


def test_a_model_that_passes_its_gates_starts_a_canary_and_does_not_become_current_yet():
    state = rolling()
    status = state.status
    assert status["currentModel"]["version"] == "v1"
    assert status["rollout"]["version"] == "v2" and status["rollout"]["phase"] == "Progressing"
    assert status["phase"] == "RollingOut" and status["canary"] == "v2 0%"
    assert get_condition(status["conditions"], "Progressing")["status"] == "True"


def test_weights_move_only_when_the_canary_is_ready_and_promotion_finishes_after_stable_rolled_out():
    state = rolling()
    stable_v1 = deployment("churn-model-stable", "v1")
    not_ready = step(state, Observed(serving=ServingView(stable=stable_v1,
                                                         canary=deployment("churn-model-canary", "v2", 1, False))),
                     NOW)
    canary = {d["metadata"]["name"]: d for d in not_ready.serving.deployments}["churn-model-canary"]
    assert not_ready.serving.weight == 0 and canary["spec"]["replicas"] == 1
    ready = ServingView(stable=stable_v1, canary=deployment("churn-model-canary", "v2", 1))
    plan = step(state, Observed(serving=ready), NOW)
    assert plan.serving.weight == 25 and plan.status["rollout"]["phase"] == "Paused"
    state = then(state, plan)

    later = NOW + dt.timedelta(minutes=2)
    assert step(state, Observed(serving=ready), later).wants.metrics == ("v1", "v2")  # analysis due: scrape first
    metrics = MetricsView(stable={"requests": {}, "buckets": {}, "classes": {}},
                          canary={"requests": {}, "buckets": {}, "classes": {}})
    promoted = dataclasses.replace(state, annotations={names.ANNOTATION_PROMOTE: "yes"})
    plan = step(promoted, Observed(serving=ready, metrics=metrics), later)
    assert plan.status["rollout"]["phase"] == "Promoting"
    stable = {d["metadata"]["name"]: d for d in plan.serving.deployments}["churn-model-stable"]
    assert stable["spec"]["template"]["metadata"]["labels"][names.LABEL_MODEL_VERSION] == "v2"
    assert plan.status["currentModel"]["version"] == "v1"  # not until every stable pod serves v2
    state = then(promoted, plan)

    done_view = ServingView(stable=deployment("churn-model-stable", "v2"),
                            canary=deployment("churn-model-canary", "v2", 1))
    plan = step(state, Observed(serving=done_view), later + dt.timedelta(seconds=10))
    assert plan.status["currentModel"]["version"] == "v2" and plan.status["rollout"]["phase"] == "Succeeded"
    assert plan.serving.weight == 0
    canary = {d["metadata"]["name"]: d for d in plan.serving.deployments}["churn-model-canary"]
    assert canary["spec"]["replicas"] == 0
    assert "ModelPromoted" in [e.reason for e in plan.events]
    assert plan.status["phase"] == "Ready"
    assert get_condition(plan.status["conditions"], "Progressing")["reason"] == "RolloutSucceeded"
    assert plan.outcomes == (RolloutEnded("Succeeded"),)  # what the metrics count, once
    assert step(then(state, plan), Observed(serving=done_view), later + dt.timedelta(seconds=20)).outcomes == ()


def test_no_training_run_starts_while_a_rollout_is_under_way():
    state = rolling()
    triggered = dataclasses.replace(state, annotations={names.ANNOTATION_TRIGGER: "again"})
    plan = step(triggered, Observed(serving=ServingView(stable=deployment("churn-model-stable", "v1"))), NOW)
    assert plan.create_job is None
    assert get_condition(plan.status["conditions"], "Training")["reason"] == "RolloutInProgress"


def test_an_aborted_rollout_keeps_the_champion_and_marks_the_challenger():
    state = rolling()
    aborted = dataclasses.replace(state, annotations={names.ANNOTATION_ABORT: "stop"})
    plan = step(aborted, Observed(serving=ServingView(stable=deployment("churn-model-stable", "v1"))), NOW)
    assert plan.status["rollout"]["phase"] == "Aborted" and plan.status["currentModel"]["version"] == "v1"
    assert plan.status["history"][0]["version"] == "v2" and plan.status["history"][0]["rejected"] == "RolloutAborted"
    assert plan.serving.weight == 0
    assert plan.status["phase"] == "Ready"
    assert plan.outcomes == (RolloutEnded("Aborted"),)


def test_a_challenger_that_fails_its_gates_never_reaches_a_rollout():
    state = serving_v1()
    state = dataclasses.replace(state, status={**state.status, "runCounter": 2, "activeRun": active("v2", "v1")})
    worse = {"comparison": {"rows": 200, "challenger": {"f1Macro": 0.7}, "champion": {"f1Macro": 0.88}}}
    seen = Observed(serving=ServingView(stable=deployment("churn-model-stable", "v1")), jobs=(job("v2", SUCCEEDED),),
                    outcomes={"v2": ArtifactOutcome(manifest={**MANIFEST, "version": "v2", "evaluation": worse},
                                                    uri="s3://models/retrain/ml/churn/v2/")})
    plan = step(state, seen, NOW)
    assert plan.status["lastRun"]["phase"] == "Rejected" and not plan.status.get("rollout")
    assert [d["metadata"]["name"] for d in plan.serving.deployments] == ["churn-model-stable"]
    assert plan.serving.weight == 0


def test_removing_serving_mid_rollout_ends_the_rollout_and_training_can_start_again():
    state = rolling()
    without = {key: value for key, value in state.spec.items() if key not in ("serving", "promotion")}
    state = dataclasses.replace(state, spec=without, annotations={names.ANNOTATION_TRIGGER: "again"})
    plan = step(state, Observed(), NOW)
    assert plan.status["rollout"]["phase"] == "Aborted" and plan.status["rollout"]["reason"] == "ServingRemoved"
    assert plan.status["currentModel"]["version"] == "v1" and plan.serving is None
    assert plan.create_job is not None  # the next run is no longer held back


def rolling_with_drift_checks() -> PolicyState:
    state = rolling()
    triggers = {**(state.spec.get("triggers") or {}),
                "drift": {"data": "s3://data/churn/recent/", "window": "24h", "interval": "1h"}}
    return dataclasses.replace(state, spec={**state.spec, "triggers": triggers})


def test_no_drift_check_starts_while_a_rollout_is_under_way():
    plan = step(rolling_with_drift_checks(), Observed(serving=ServingView(stable=deployment("churn-model-stable",
                                                                                           "v1"))), NOW)
    assert plan.create_job is None and not plan.status.get("activeDriftCheck")


def test_drift_found_in_the_model_being_replaced_triggers_no_second_run():
    """The check judged v1 before v2's rollout began; v2 learned from the same drifted data."""
    state = rolling_with_drift_checks()
    check = {"checkId": "d1", "jobName": "churn-d1", "startedAt": "2026-11-24T09:50:00Z", "modelVersion": "v1"}
    state = dataclasses.replace(state, status={**state.status, "activeDriftCheck": check, "driftCounter": 1})
    drifted = {"drift": True, "datasetDrift": True, "driftedShare": 0.5, "driftedFeatures": ["spend"]}
    observed = Observed(serving=ServingView(stable=deployment("churn-model-stable", "v1")),
                        drift_jobs=(DriftJobView(name="churn-d1", check_id="d1", state=SUCCEEDED),),
                        drift_outcomes={"d1": DriftOutcome(result=drifted, uri="s3://models/retrain/ml/churn/drift/d1/")})
    plan = step(state, observed, NOW)
    assert plan.status["drift"]["drift"] is True and not plan.status.get("pendingDriftTrigger")
    detected = [e.message for e in plan.events if e.reason == "DriftDetected"]
    assert detected and "v2 (trained since) already answers it" in detected[0]


def test_a_route_that_does_not_exist_holds_the_canary_at_zero_and_is_said_once():
    """Decided in the core: no weight is asked of a route the API server does not have, the rollout waits
    at 0% instead of analysing a canary that gets no traffic, and the user is told once, then again when
    the route exists."""
    state = rolling()
    stable_v1 = deployment("churn-model-stable", "v1")
    no_route = ServingView(stable=stable_v1, canary=deployment("churn-model-canary", "v2", 1), route_missing=True)
    plan = step(state, Observed(serving=no_route), NOW)
    assert plan.serving.weight == 0 and plan.serving.route_name is None  # the shell patches nothing
    assert plan.status["rollout"]["stepIndex"] == 0 and "waiting for the route" in plan.status["rollout"]["message"]
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "RouteNotFound")]
    assert "HTTPRoute churn does not exist" in plan.status["message"]
    state = then(state, plan)
    again = step(state, Observed(serving=no_route), NOW + dt.timedelta(seconds=30))
    assert again.events == () and again.serving.weight == 0  # said once
    state = then(state, again)
    route = {"spec": {"rules": [{"backendRefs": [{"name": "churn-model-stable", "port": 8080}]}]}}
    found = dataclasses.replace(no_route, route=route, route_missing=False)
    plan = step(state, Observed(serving=found), NOW + dt.timedelta(minutes=1))
    assert plan.serving.weight == 25 and plan.serving.route_name == "churn"
    assert ("Normal", "RouteFound") in [(e.type, e.reason) for e in plan.events]
    assert "does not exist" not in plan.status["message"]


def test_a_rollout_that_starts_with_a_shadow_step_asks_for_its_own_versions_metrics_at_once():
    """The rollout starts in the decision that records v2, and its mirrored window is due at once: the
    scrape it asks for names v1 and v2, which the status as read does not know yet."""
    shadow = {**SERVING, "promotion": {"canary": {**SERVING["promotion"]["canary"], "mirror": True,
                                                  "steps": [{"pause": {"duration": "3s"}}, {"setWeight": 100}]}}}
    state = policy(spec(**shadow), status={"runCounter": 1, "activeRun": active("v1", None)})
    state = finish(state, "v1")
    state = dataclasses.replace(state, status={**state.status, "runCounter": 2, "activeRun": active("v2", "v1")})
    ready = ServingView(stable=deployment("churn-model-stable", "v1"), canary=deployment("churn-model-canary", "v2", 1))
    seen = Observed(serving=ready, jobs=(job("v2", SUCCEEDED),), outcomes={"v2": ArtifactOutcome(
        manifest={**MANIFEST, "version": "v2", "evaluation": EVALUATION}, uri="s3://models/retrain/ml/churn/v2/")})
    plan = step(state, seen, NOW)
    assert "rollout" not in state.status and plan.wants.metrics == ("v1", "v2")
