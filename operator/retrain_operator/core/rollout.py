"""The canary rollout as a state machine over `status.rollout`.

Pure: the rollout's state, the canary spec, what the shell observed (canary pods Ready, the
stable Deployment's rolled-out version, a new metrics snapshot, the promote/abort/pause
annotations) and the time go in; the next state, the traffic weight, the replica counts and
Events come out. Every timer is a timestamp in the state, so an operator restarted mid-pause
resumes the same step with the same time left.

Phases: Progressing -> (Paused <->) Progressing -> Promoting -> Succeeded, or RolledBack /
Aborted from any non-final phase. Promoting: stable now runs the new version; traffic stays
as it was until every stable pod serves it, then the canary is removed. `pausedAt`: since when a
Paused rollout waits (for a person, mostly).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from retrain_contract.api.spec import CanarySpec

from . import analysis
from .timeutil import from_rfc3339, to_rfc3339

PROGRESSING, PAUSED, PROMOTING = "Progressing", "Paused", "Promoting"
SUCCEEDED, ROLLED_BACK, ABORTED = "Succeeded", "RolledBack", "Aborted"
FINAL = frozenset({SUCCEEDED, ROLLED_BACK, ABORTED})
READY_POLL = 5.0  # seconds between looks while waiting for pods

Rollout = dict[str, Any]


@dataclass(frozen=True)
class Commands:
    """The rollout annotations: promote and abort act once per new value; pause holds while 'true'."""

    promote: str | None = None
    abort: str | None = None
    pause: bool = False


@dataclass(frozen=True)
class Observation:
    canary_ready: bool = False  # the canary Deployment has all its desired pods Ready
    stable_version: str | None = None  # the version every stable pod serves, once rolled out
    # A new scrape this reconcile, if one was due. The window is its difference from the scrape
    # before, which the rollout record keeps (`baseline`): an operator restarted between two
    # scrapes judges the same window.
    stable_metrics: analysis.Snapshot | None = None
    canary_metrics: analysis.Snapshot | None = None
    queries: dict[str, float | None] = field(default_factory=dict)  # Prometheus query name -> value
    commands: Commands = field(default_factory=Commands)
    route_ready: bool = True  # the route whose weights move traffic exists (always, without a mesh)


@dataclass
class Step:
    state: Rollout
    weight: int
    canary_replicas: int
    stable_replicas: int
    stable_version: str  # the version the stable Deployment should run
    mirror: bool = False  # copy live requests to the canary (responses discarded): the shadow step
    finished: str | None = None  # SUCCEEDED | ROLLED_BACK | ABORTED when it ended now
    requeue: float | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)


def is_active(state: Rollout | None) -> bool:
    """A rollout record that has not reached a final phase."""
    return bool(state) and (state or {}).get("phase") not in FINAL


def start(version: str, uri: str, stable_version: str, now: dt.datetime, commands: Commands,
          manifest_sha256: str | None = None) -> Rollout:
    """A new rollout; annotation values present now are taken as already consumed. The canary's
    manifest digest travels with its URI: its servers refuse any other manifest."""
    at = to_rfc3339(now)
    return {"version": version, "uri": uri, "manifestSha256": manifest_sha256, "stableVersion": stable_version,
            "phase": PROGRESSING, "stepIndex": 0, "stepStartedAt": at, "startedAt": at, "weight": 0, "failures": 0,
            "inconclusive": 0, "passedInStep": False, "queryFailures": {}, "lastAnalysisAt": None,
            "lastAnalysis": None, "message": f"starting the canary for {version}",
            "consumed": {"promote": commands.promote, "abort": commands.abort}}


def split(total: int, weight: int, scale_down_stable: bool) -> tuple[int, int]:
    """(canary, stable) replicas for a weight: the canary gets its share (at least one pod while a
    rollout runs, so it can become Ready before it takes traffic); stable shrinks only if asked."""
    canary = max(1, math.ceil(total * weight / 100))
    stable = max(1, total - canary) if scale_down_stable and weight < 100 else total
    return canary, stable


def mirroring(spec: CanarySpec, state: Rollout) -> bool:
    """The shadow step: with `mirror`, the canary sees copies of live requests until it gets a weight."""
    return bool(spec.mirror and state.get("phase") in (PROGRESSING, PAUSED) and not state.get("weight")
                and not state.get("wentLive"))


def _judged(spec: CanarySpec, state: Rollout) -> bool:
    """Does the canary receive requests (live or mirrored), so that a window can be judged?"""
    return bool(state.get("weight")) or mirroring(spec, state)


def due_for_analysis(spec: CanarySpec, state: Rollout, now: dt.datetime) -> bool:
    """Should the shell scrape metrics (and run queries) before deciding?"""
    if state.get("phase") not in (PROGRESSING, PAUSED) or not _judged(spec, state):
        return False
    last = from_rfc3339(state.get("lastAnalysisAt"))
    return last is None or now >= last + spec.analysis.interval


class _Machine:
    def __init__(self, spec: CanarySpec, state: Rollout, now: dt.datetime, seen: Observation):
        self.spec, self.now, self.seen = spec, now, seen
        self.state: Rollout = {**state, "consumed": dict(state.get("consumed") or {}),
                               "queryFailures": dict(state.get("queryFailures") or {})}
        self.events: list[tuple[str, str, str]] = []
        self.requeue: list[float] = []
        self.finished: str | None = None

    def event(self, kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason, message))

    def end(self, phase: str, reason: str, message: str, kind: str = "Warning") -> None:
        self.state.update(phase=phase, reason=reason, message=message, finishedAt=to_rfc3339(self.now))
        if phase != PROMOTING:
            self.finished = phase
        self.event(kind, reason, f"{self.state['version']}: {message}")

    # -- inputs ------------------------------------------------------------------------------

    def commands(self) -> bool:
        """Apply promote/abort; True when the rollout ended (or moved to Promoting)."""
        commands, consumed = self.seen.commands, self.state["consumed"]
        if commands.abort and commands.abort != consumed.get("abort"):
            consumed["abort"] = commands.abort
            self.end(ABORTED, "RolloutAborted", f"aborted by hand at step {self.state['stepIndex']}; "
                                                f"{self.state['stableVersion']} keeps serving")
            return True
        if commands.promote and commands.promote != consumed.get("promote"):
            consumed["promote"] = commands.promote
            self.end(PROMOTING, "PromotedByHand", f"promoted by hand at step {self.state['stepIndex']}",
                     kind="Normal")
            return True
        return False

    def analyse(self) -> bool:
        """Fold in a new measurement; True when it rolled the canary back."""
        seen, spec = self.seen, self.spec.analysis
        if seen.stable_metrics is None or seen.canary_metrics is None:
            return False
        baseline = self.state.get("baseline") or {}
        outcome = analysis.judge_window(spec, seen.stable_metrics, seen.canary_metrics,
                                        baseline.get("stable"), baseline.get("canary"))
        # The start of the next window. Counters only: a few numbers per status code, latency bucket and class.
        self.state["baseline"] = {"stable": seen.stable_metrics, "canary": seen.canary_metrics}
        measurements = list(outcome.measurements)
        for query in spec.prometheus:
            value = seen.queries.get(query.name)
            ok = analysis.query_succeeds(query.success_condition, value)
            result = analysis.INCONCLUSIVE if ok is None else analysis.PASSED if ok else analysis.FAILED
            if result == analysis.FAILED:
                self.state["queryFailures"][query.name] = self.state["queryFailures"].get(query.name, 0) + 1
                if self.state["queryFailures"][query.name] <= query.failure_limit:
                    result = analysis.PASSED  # tolerated, and counted
            shown = "no data" if value is None else f"{value:.4g}"
            measurements.append(analysis.Measurement(
                f"query {query.name}", result, f"{query.name}: {shown} ({query.success_condition})"))
        outcome = analysis.combine(measurements)
        self.state.update(lastAnalysisAt=to_rfc3339(self.now), lastAnalysis=outcome.as_status())
        if outcome.result == analysis.FAILED:
            self.state["failures"] += 1
            self.state["inconclusive"] = 0
            if self.state["failures"] > spec.failure_limit:
                self.end(ROLLED_BACK, "AnalysisFailed", f"rolled back at {self.state['weight']}%: "
                                                        f"{outcome.summary()}; {self.state['stableVersion']} "
                                                        "keeps serving")
                return True
        elif outcome.result == analysis.INCONCLUSIVE:
            self.state["inconclusive"] += 1
            if self.state["inconclusive"] >= spec.inconclusive_limit and self.state["phase"] == PROGRESSING:
                self.state.update(phase=PAUSED, reason="AnalysisInconclusive",
                                  message=f"paused: {self.state['inconclusive']} inconclusive windows in a row "
                                          f"({outcome.summary()}); promote or abort")
                self.event("Warning", "AnalysisInconclusive", f"{self.state['version']}: {self.state['message']}")
        else:
            self.state["inconclusive"] = 0
            self.state["passedInStep"] = True
        return False

    def readiness(self) -> bool:
        """Track how long the canary has been without Ready pods; roll back past readyTimeout."""
        if self.seen.canary_ready:
            self.state["notReadySince"] = None
            return False
        since = from_rfc3339(self.state.get("notReadySince"))
        if since is None:
            self.state["notReadySince"] = to_rfc3339(self.now)
            return False
        if self.now - since > self.spec.ready_timeout:
            self.end(ROLLED_BACK, "CanaryNotReady", f"canary pods not Ready for {self.spec.ready_timeout}; "
                                                    f"{self.state['stableVersion']} keeps serving")
            return True
        return False

    # -- the steps -----------------------------------------------------------------------------

    def progress(self) -> None:
        steps = self.spec.steps
        while self.state["stepIndex"] < len(steps):
            step = steps[self.state["stepIndex"]]
            if not step.is_pause:
                target = int(step.set_weight or 0)
                if target > 0 and not self.seen.canary_ready:
                    self.state["message"] = f"waiting for canary pods to be Ready before {target}%"
                    self.requeue.append(READY_POLL)
                    return
                if target > 0 and not self.seen.route_ready:
                    self.state["message"] = f"waiting for the route to exist before {target}%"
                    self.requeue.append(READY_POLL)
                    return
                self.state["weight"] = target
                if target > 0:
                    self.state["wentLive"] = True
                self.event("Normal", "CanaryWeight", f"{self.state['version']}: canary at {target}%")
                self._next_step()
                continue
            if step.pause is None:  # a human decides; analysis goes on meanwhile
                self.state.update(phase=PAUSED, reason="AwaitingPromotion",
                                  message=f"at {self.state['weight']}%: paused until promoted")
                return
            if _judged(self.spec, self.state) and not self.state["passedInStep"]:
                shadow = " (mirrored traffic)" if mirroring(self.spec, self.state) else ""
                self.state["message"] = (f"at {self.state['weight']}%{shadow}: waiting for an analysis window "
                                         "to pass")
                self.requeue.append(self.spec.analysis.interval.total_seconds())
                return
            ends = (from_rfc3339(self.state["stepStartedAt"]) or self.now) + step.pause
            if self.now < ends:
                self.state["message"] = f"at {self.state['weight']}%: pause until {to_rfc3339(ends)}"
                self.requeue.append((ends - self.now).total_seconds())
                return
            self._next_step()
        self.end(PROMOTING, "StepsCompleted", "every step passed; stable takes the new version", kind="Normal")

    def _next_step(self) -> None:
        self.state.update(stepIndex=self.state["stepIndex"] + 1, stepStartedAt=to_rfc3339(self.now),
                          passedInStep=False)

    def promoting(self) -> None:
        if self.seen.stable_version == self.state["version"]:
            self.state["weight"] = 0
            self.end(SUCCEEDED, "RolloutSucceeded", f"every stable pod serves {self.state['version']}; canary "
                                                    "removed", kind="Normal")
        else:
            self.state["message"] = f"stable is rolling out {self.state['version']}; traffic unchanged until it is done"
            self.requeue.append(READY_POLL)

    def run(self) -> None:
        phase = self.state.get("phase")
        if phase in FINAL:
            return
        if phase == PROMOTING:
            self.promoting()
            return
        if self.commands():
            if self.state["phase"] == PROMOTING:
                self.promoting()
            return
        if self.analyse() or self.readiness():
            return
        if self.seen.commands.pause:
            if self.state["phase"] != PAUSED or self.state.get("reason") != "PausedByHand":
                self.state.update(phase=PAUSED, reason="PausedByHand", message=f"paused by hand at "
                                                                              f"{self.state['weight']}%")
                self.event("Normal", "RolloutPaused", f"{self.state['version']}: {self.state['message']}")
        elif self.state["phase"] == PAUSED and self.state.get("reason") == "PausedByHand":
            self.state.update(phase=PROGRESSING, reason="Resumed", message="resumed")
            self.event("Normal", "RolloutResumed", f"{self.state['version']}: resumed")
        if self.state["phase"] == PROGRESSING:
            self.progress()
            if self.state["phase"] == PROMOTING:
                self.promoting()
        if self.state["phase"] in (PROGRESSING, PAUSED) and _judged(self.spec, self.state):
            self.requeue.append(self.spec.analysis.interval.total_seconds())


def advance(spec: CanarySpec, state: Rollout, total_replicas: int, now: dt.datetime, seen: Observation) -> Step:
    """One step of the machine: the next state and what the cluster should look like."""
    was_paused = state.get("phase") == PAUSED
    machine = _Machine(spec, state, now, seen)
    machine.run()
    state = machine.state
    if state["phase"] != PAUSED:
        state.pop("pausedAt", None)
    elif not was_paused or not state.get("pausedAt"):  # (a record from before pausedAt: from now on)
        state["pausedAt"] = to_rfc3339(now)  # since when a person has been awaited (the stuck-rollout alert)
    phase, weight = state["phase"], int(state["weight"])
    if phase in (ROLLED_BACK, ABORTED):
        state["weight"] = weight = 0
        canary, stable = 0, total_replicas
    elif phase == SUCCEEDED:
        canary, stable = 0, total_replicas
    else:
        canary, stable = split(total_replicas, weight, spec.scale_down_stable)
        if phase == PROMOTING:
            stable = total_replicas  # the new stable needs all its pods before the canary goes
        if not seen.canary_ready or not seen.route_ready:
            weight = 0  # never send traffic to a canary without Ready pods; the state keeps the step's weight
    stable_version = state["version"] if phase in (PROMOTING, SUCCEEDED) else state["stableVersion"]
    mirror = mirroring(spec, state) and seen.canary_ready
    return Step(state=state, weight=weight, canary_replicas=canary, stable_replicas=stable,
                stable_version=stable_version, mirror=mirror, finished=machine.finished,
                requeue=min(machine.requeue) if machine.requeue else None, events=machine.events)
