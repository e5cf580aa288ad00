"""A Job's pod that does not start: found in the pods' statuses, said once, cleared when it starts."""

from __future__ import annotations

import dataclasses
import datetime as dt

from retrain_operator.core.conditions import get_condition
from retrain_operator.core.observed import ACTIVE, Observed, waits_for_pods
from retrain_operator.core.pod_problems import pod_problem

from .decisions import NOW, job, started, step, then

MISSING_SECRET = 'secret "hf-token" not found'


def pod(name: str, waiting: dict | None = None, scheduled: dict | None = None) -> dict:
    status: dict = {"conditions": [{"type": "PodScheduled", "status": "True"}]}
    if scheduled is not None:
        status["conditions"] = [{"type": "PodScheduled", "status": "False", **scheduled}]
    if waiting is not None:
        status["containerStatuses"] = [{"name": "trainer", "state": {"waiting": waiting}}]
    return {"metadata": {"name": name}, "status": status}


def test_what_a_person_must_fix_is_a_problem_and_ordinary_waiting_is_not():
    assert pod_problem([pod("a", {"reason": "ContainerCreating"})]) is None
    assert pod_problem([pod("a")]) is None and pod_problem([]) is None
    reason, message = pod_problem([pod("b", {"reason": "ContainerCreating"}),
                                   pod("a", {"reason": "CreateContainerConfigError", "message": MISSING_SECRET})])
    assert reason == "CreateContainerConfigError" and message == f"pod a, container trainer: {MISSING_SECRET}"
    assert pod_problem([pod("a", {"reason": "ImagePullBackOff"})])[0] == "ImagePullBackOff"
    unschedulable = pod_problem([pod("a", scheduled={"reason": "Unschedulable",
                                                     "message": "0/3 nodes have nvidia.com/gpu"})])
    assert unschedulable == ("Unschedulable", "pod a: 0/3 nodes have nvidia.com/gpu")
    long = pod_problem([pod("a", {"reason": "CreateContainerError", "message": "x" * 1000})])
    assert len(long[1]) == 300


def test_only_active_jobs_without_a_ready_pod_are_looked_at():
    assert waits_for_pods({"status": {"active": 1}})
    assert not waits_for_pods({"status": {"active": 1, "ready": 1}})
    assert not waits_for_pods({"status": {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}})


def test_a_run_whose_pod_waits_says_so_once_and_forgets_it_when_the_pod_starts():
    state, plan = started()
    state = then(state, plan)
    stuck = dataclasses.replace(job("v1", ACTIVE), pod_problem=("CreateContainerConfigError", MISSING_SECRET))
    first = step(state, Observed(jobs=(stuck,)))
    assert [(e.type, e.reason) for e in first.events] == [("Warning", "PodNotStarting")]
    assert MISSING_SECRET in first.events[0].message and "v1 (Job churn-v1)" in first.events[0].message
    problem = first.status["activeRun"]["podProblem"]
    assert problem == {"reason": "CreateContainerConfigError", "message": MISSING_SECRET,
                       "since": "2026-11-24T10:00:00Z"}
    training = get_condition(first.status["conditions"], "Training")
    assert training["status"] == "True" and training["reason"] == "PodNotStarting"
    assert MISSING_SECRET in training["message"]

    later = step(then(state, first), Observed(jobs=(stuck,)), now=NOW + dt.timedelta(minutes=1))
    assert later.events == () and later.status["activeRun"]["podProblem"]["since"] == "2026-11-24T10:00:00Z"

    started_now = step(then(state, later), Observed(jobs=(job("v1", ACTIVE),)), now=NOW + dt.timedelta(minutes=2))
    assert "podProblem" not in started_now.status["activeRun"]
    assert get_condition(started_now.status["conditions"], "Training")["reason"] == "Running"
