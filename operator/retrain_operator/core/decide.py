"""The one decision: given a policy, what was observed and the time, what to do now.

`decide` is pure. It either asks for more facts (`Plan.wants`: read these versions from S3,
count new samples) or returns the complete next status, the Job to create, the Events to
post and when to look again. Everything needed to resume lives in the status it returns,
so a restarted operator picks up exactly where the previous one stopped.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from retrain_contract.api import names
from retrain_contract.api.spec import PolicySpec
from retrain_contract.artifacts.layout import version_prefix

from . import apply_errors, gates, promotion, rollout, serving
from . import conditions as cond
from .jobs import DriftRequest, PolicyRef, RunRequest, drift_job, trainer_job
from .observed import ACTIVE, FAILED, SUCCEEDED, ArtifactOutcome, DriftJobView, JobView, Observed
from .runs import Trigger, check_index, version_index, version_name
from .schedule import due_tick, next_tick
from .timeutil import from_rfc3339, to_rfc3339

MIN_REQUEUE = 1.0
MAX_REQUEUE = 300.0
ACTIVE_RUN_REQUEUE = 15.0
INVALID_REQUEUE = 120.0

PHASE_PENDING = "Pending"
PHASE_TRAINING = "Training"
PHASE_READY = "Ready"
PHASE_DEGRADED = "Degraded"
PHASE_INVALID = "Invalid"
PHASE_BLOCKED = "Blocked"
PHASE_SUSPENDED = "Suspended"
PHASE_ROLLING_OUT = "RollingOut"

# Ready False reasons of a recorded current model: its servers cannot serve it, or S3 no longer holds it.
MODEL_UNAVAILABLE = "ModelUnavailable"
ARTIFACTS_CHANGED = "ArtifactsChanged"
SIGNATURE_INVALID = "SignatureInvalid"  # a run whose manifest.json.sig is missing or does not verify


@dataclass(frozen=True)
class PolicyState:
    name: str
    namespace: str
    uid: str
    generation: int
    created: dt.datetime
    spec: dict[str, Any]
    status: dict[str, Any]
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> PolicyRef:
        return PolicyRef(name=self.name, namespace=self.namespace, uid=self.uid)


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Wants:
    """Facts the decision needs before it can be made."""

    outcomes: tuple[str, ...] = ()  # versions whose artifacts must be read from S3
    new_samples: bool = False  # count incoming rows not yet used by the current model
    drift_outcomes: tuple[str, ...] = ()  # drift checks whose results must be read from S3
    metrics: bool = False  # scrape the model servers (and run the Prometheus queries) of the rollout
    verify_uri: str | None = None  # re-read the current model's manifest and files where status records them

    def __bool__(self) -> bool:
        return (bool(self.outcomes) or self.new_samples or bool(self.drift_outcomes) or self.metrics
                or bool(self.verify_uri))


@dataclass(frozen=True)
class Plan:
    status: dict[str, Any]
    create_job: dict[str, Any] | None = None
    events: tuple[Event, ...] = ()
    requeue_after: float = MAX_REQUEUE
    prune_versions: tuple[str, ...] = ()
    discard_partial: tuple[str, ...] = ()  # failed runs: their unfinished uploads go (error.json stays)
    wants: Wants = field(default_factory=Wants)
    serving: promotion.ServingPlan | None = None


@dataclass(frozen=True)
class Settings:
    default_image: str = "ghcr.io/retrain-operator/trainer:0.1.0"
    # Stable servers of the current version without a Ready pod for this long: Ready is False.
    serving_grace: float = 120.0
    # How often the current version's manifest and files are re-read and checked (seconds; 0: never).
    verify_interval: float = 600.0


MAX_FEATURE_SCORES = 50  # status stays small; the full table is in the drift report


def feature_scores(features: dict[str, Any]) -> dict[str, float]:
    """The highest per-feature drift scores of a check, for status and the per-feature metric."""
    scored = [(name, float(item.get("score") or 0.0)) for name, item in features.items() if isinstance(item, dict)]
    scored.sort(key=lambda pair: (-pair[1], pair[0]))
    return {name: round(score, 4) for name, score in scored[:MAX_FEATURE_SCORES]}


def _run_started(version: str, trigger: Trigger, job: str) -> str:
    return f"{version} started by {trigger.type} ({trigger.reason}) as Job {job}"


def decide(policy: PolicyState, observed: Observed, now: dt.datetime, settings: Settings) -> Plan:
    return _Decision(policy, observed, now, settings).run()


class _Decision:
    """One decision's working state; a class only to keep the steps small and named."""

    def __init__(self, policy: PolicyState, observed: Observed, now: dt.datetime, settings: Settings):
        self.policy = policy
        self.observed = observed
        self.now = now
        self.settings = settings
        self.old = policy.status or {}
        # Refused writes of an older spec are forgotten: a changed spec is tried at once.
        self.status: dict[str, Any] = copy.deepcopy(apply_errors.expire(self.old, policy.generation))
        self.status["observedGeneration"] = policy.generation
        self.events: list[Event] = []
        self.requeue: list[float] = [MAX_REQUEUE]
        self.create_job: dict[str, Any] | None = None
        self.prune: list[str] = []
        self.discard: list[str] = []
        self.idle_reason = ("Idle", "no run in progress")
        self.serving: promotion.ServingPlan | None = None

    # -- helpers -------------------------------------------------------------------------

    def _set(self, type_: str, ok: bool | None, reason: str, message: str) -> None:
        self.status["conditions"] = cond.set_condition(
            self.status.get("conditions"), type_, ok, reason, message, self.policy.generation, self.now)

    def _event(self, type_: str, reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))

    def _plan(self, wants: Wants | None = None) -> Plan:
        if wants:
            return Plan(status=self.old, wants=self._with_verification(wants), requeue_after=MIN_REQUEUE)
        delay = max(MIN_REQUEUE, min(self.requeue))
        return Plan(
            status=self.status,
            create_job=self.create_job,
            events=tuple(self.events),
            requeue_after=delay,
            prune_versions=tuple(self.prune),
            discard_partial=tuple(self.discard),
            serving=self.serving,
        )

    def _uri(self, spec: PolicySpec, version: str) -> str:
        key = version_prefix(spec.storage.prefix, self.policy.namespace, self.policy.name, version, uid=self.policy.uid)
        return f"s3://{spec.storage.bucket}/{key}"

    # -- the steps -----------------------------------------------------------------------

    def run(self) -> Plan:
        spec, problems = self._spec()
        if spec is None:
            return self._invalid(problems)
        self._adopt_unrecorded_jobs()
        wants = self._follow_active_run(spec) or self._follow_drift_check(spec)
        if wants:
            return self._plan(wants)
        wants = self._serve(spec)
        if wants:
            return self._plan(wants)
        if promotion.rollout_active(self.status):
            rolling = self.status["rollout"]
            self.idle_reason = ("RolloutInProgress", f"new runs wait until the rollout of {rolling['version']} ends")
        elif not self.status.get("activeRun") and not self.status.get("activeDriftCheck"):
            wants = self._maybe_start_run(spec)
            if wants:
                return self._plan(wants)
        # No check while a new model is on its way: the current one is about to be replaced anyway.
        if not self.status.get("activeRun") and not self.status.get("activeDriftCheck") and self.create_job is None \
                and not promotion.rollout_active(self.status):
            self._maybe_start_drift_check(spec)
        if self.create_job is None and not self._job_waiting():
            # Nothing wants a Job now and the backoff is over: the old refusal no longer stalls anything.
            self.status = apply_errors.clear(self.status, apply_errors.JOB)
        wants = self._verify_current()
        if wants:
            return self._plan(wants)
        self._summarise(spec)
        return self._plan()

    def _spec(self) -> tuple[PolicySpec | None, list[str]]:
        problems = list(self.observed.spec_problems)
        if problems:
            return None, problems
        try:
            return PolicySpec.from_dict(self.policy.spec), []
        except (KeyError, TypeError, ValueError) as error:
            return None, [f"spec cannot be read: {error!r}"]

    def _invalid(self, problems: list[str]) -> Plan:
        message = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        before = cond.get_condition(self.old.get("conditions"), cond.READY)
        if not before or before.get("reason") != "InvalidSpec" or before.get("message") != message:
            self._event("Warning", "InvalidSpec", message)
        self._set(cond.READY, False, "InvalidSpec", message)
        self.status["phase"] = PHASE_INVALID
        self.status["message"] = message
        self.requeue.append(INVALID_REQUEUE)
        return self._plan()

    def _job_waiting(self) -> dict[str, Any] | None:
        """The refused Job creation whose backoff has not run out yet (then no Job is planned)."""
        entry = apply_errors.waiting(self.status, apply_errors.JOB, self.now, self.policy.generation)
        if entry:
            due = from_rfc3339(entry.get("nextAttemptAt"))
            if due is not None:
                self.requeue.append((due - self.now).total_seconds())
        return entry

    def _recorded_index(self) -> int:
        last = self.status.get("lastRun") or {}
        return version_index(last.get("version")) if last.get("finishedAt") else 0

    def _adopt_unrecorded_jobs(self) -> None:
        """Take over a Job the status does not know (the operator died right after creating it)."""
        recorded = self._recorded_index()
        counter = int(self.status.get("runCounter") or 0)
        active = self.status.get("activeRun")
        for job in sorted(self.observed.jobs, key=lambda j: j.index):
            counter = max(counter, job.index)
            if job.index <= recorded or active:
                continue
            active = {
                "version": job.version,
                "jobName": job.name,
                "trigger": job.trigger.as_dict() if job.trigger else None,
                "parentVersion": job.parent_version,
                "startedAt": job.started_at,
            }
            self.status["activeRun"] = active
            if job.trigger:
                self._consume(job.trigger)
                # The Event the run's start would have posted, word for word: if that post was lost with
                # the crash it is posted now, and if not its name (derived from the same decision) exists.
                self._event("Normal", "RunStarted", _run_started(job.version, job.trigger, job.name))
        self.status["runCounter"] = counter

    def _consume(self, trigger: Trigger) -> None:
        if trigger.type == "schedule":
            previous = from_rfc3339(self.status.get("lastScheduleTime"))
            tick = from_rfc3339(trigger.key)
            if tick and (previous is None or tick > previous):
                self.status["lastScheduleTime"] = to_rfc3339(tick)
        elif trigger.type == "manual":
            self.status["lastManualTrigger"] = trigger.key
        elif trigger.type == "drift":
            self.status["lastDriftTrigger"] = trigger.key
            self.status["pendingDriftTrigger"] = None

    def _job(self, version: str) -> JobView | None:
        for job in self.observed.jobs:
            if job.version == version:
                return job
        return None

    def _follow_active_run(self, spec: PolicySpec) -> Wants | None:
        active = self.status.get("activeRun")
        if not active:
            return None
        version = active["version"]
        job = self._job(version)
        if job is not None and job.state == ACTIVE:
            self.requeue.append(ACTIVE_RUN_REQUEUE)
            return None
        outcome = self.observed.outcomes.get(version)
        if outcome is None:
            return Wants(outcomes=(version,))
        if outcome.storage_error:
            # Cannot read the result now; the run is not lost: look again soon.
            self.idle_reason = ("AwaitingArtifacts", outcome.storage_error)
            self.requeue.append(ACTIVE_RUN_REQUEUE)
            return None
        if outcome.foreign:  # another incarnation's version under this name: never this run's result
            self._record_failure(active, job, "ForeignVersion", outcome.foreign)
            return None
        if outcome.manifest is not None and outcome.signature_problem and (job is None or job.state == SUCCEEDED):
            # Not authentic, whatever its checksums say: never recorded, never served.
            self._record_failure(active, job, SIGNATURE_INVALID, f"{version} at {outcome.uri}: "
                                                                 f"{outcome.signature_problem}; it is not recorded")
            return None
        if job is None:
            # Gone before it was recorded (deleted, or its TTL expired while we were down):
            # S3 still tells whether the run finished.
            if outcome.manifest is not None and not outcome.problems:
                self._record_success(spec, active, None, outcome)
            else:
                self._record_failure(active, None, "JobNotFound",
                                     f"Job {active.get('jobName')} disappeared before its run was recorded")
                self._discard_unfinished(version, outcome)
            return None
        if job.state == SUCCEEDED:
            if outcome.manifest is None:
                self._record_failure(active, job, "ArtifactMissing",
                                     f"the Job succeeded but {outcome.uri}manifest.json is missing")
                self._discard_unfinished(version, outcome)
            elif outcome.problems:
                self._record_failure(active, job, "ChecksumMismatch", "; ".join(outcome.problems))
            else:
                self._record_success(spec, active, job, outcome)
        elif job.state == FAILED:
            error = outcome.error or {}
            reason = str(error.get("reason") or job.reason or "TrainingFailed")
            message = str(error.get("message") or job.message or "the trainer failed")
            self._record_failure(active, job, reason, message)
            self._discard_unfinished(version, outcome)
        return None

    def _discard_unfinished(self, version: str, outcome: ArtifactOutcome) -> None:
        """A failed run's partial uploads would stay in S3 forever: no manifest, so no version to prune later.

        A finished version (a manifest there, even a broken one) is evidence and stays."""
        if outcome.manifest is None and not outcome.foreign:
            self.discard.append(version)

    def _finish(self, active: dict[str, Any], job: JobView | None, phase: str, reason: str,
                message: str) -> dict[str, Any]:
        last = {
            "version": active["version"],
            "phase": phase,
            "trigger": (active.get("trigger") or {}).get("type"),
            "triggerReason": (active.get("trigger") or {}).get("reason"),
            "jobName": active.get("jobName"),
            "startedAt": active.get("startedAt"),
            "finishedAt": (job.finished_at if job and job.finished_at else to_rfc3339(self.now)),
            "reason": reason,
            "message": message,
        }
        self.status["lastRun"] = last
        self.status["activeRun"] = None
        return last

    def _record_success(self, spec: PolicySpec, active: dict[str, Any], job: JobView | None,
                        outcome: ArtifactOutcome) -> None:
        manifest = outcome.manifest or {}
        version = active["version"]
        uri = outcome.uri or self._uri(spec, version)
        previous = (self.status.get("currentModel") or {}).get("version")
        verdict = gates.judge(spec.gates, manifest.get("evaluation") or {}, previous)
        if verdict.passed:
            last = self._finish(active, job, "Succeeded", "TrainingSucceeded", f"{version} trained and verified")
        else:
            last = self._finish(active, job, "Rejected", verdict.reason,
                                f"{version} not promoted: {verdict.summary()}")
        last["gates"] = verdict.as_status()
        metrics = manifest.get("metrics") or {}
        model = {
            "version": version,
            "uri": uri,
            "trainedAt": manifest.get("createdAt") or last["finishedAt"],
            "trigger": last["trigger"],
            "parentVersion": manifest.get("parentVersion"),
            "metrics": metrics,
            # Pinned: the servers refuse any other manifest, and the scheduled check compares with it.
            "manifestSha256": outcome.manifest_sha256,
            "verifiedAt": to_rfc3339(self.now),  # the checksums were just verified
        }
        rolling_out = verdict.passed and previous is not None and promotion.uses_canary(spec, self.status)
        if rolling_out:
            state = rollout.start(version, uri, previous, self.now, promotion.commands(self.policy.annotations),
                                  manifest_sha256=outcome.manifest_sha256)
            self.status["rollout"] = state
            last["message"] = f"{version} passed the gates; canary rollout started ({previous} keeps serving)"
            model["rollout"] = rollout.PROGRESSING
        elif verdict.passed:
            self.status["currentModel"] = model
        else:
            model["rejected"] = verdict.reason
        history = [model, *(h for h in self.status.get("history") or [] if h.get("version") != version)]
        current = (self.status.get("currentModel") or {}).get("version")
        # The serving model is never pruned, however many rejected challengers came after it.
        kept = history[: spec.history_limit]
        if current and all(h.get("version") != current for h in kept):
            kept = [*history[: spec.history_limit - 1], *(h for h in history if h.get("version") == current)]
        self.status["history"] = kept
        kept_versions = {h.get("version") for h in kept}
        self.prune = [h["version"] for h in history if h.get("version") and h["version"] not in kept_versions]
        summary = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, int | float))
        if rolling_out:
            self._event("Normal", "RunSucceeded", f"{version} trained ({last['trigger']})"
                        f"{': ' + summary if summary else ''}; it passed the gates")
            self._event("Normal", "RolloutStarted", f"{version}: canary rollout started; {previous} keeps serving")
        elif verdict.passed:
            self._event("Normal", "RunSucceeded",
                        f"{version} trained ({last['trigger']}){': ' + summary if summary else ''}; "
                        f"now current{' (was ' + previous + ')' if previous else ''}")
        else:
            self._event("Warning", verdict.reason,
                        f"{version} not promoted: {verdict.summary()}; {previous or 'no model'} keeps serving")

    def _record_failure(self, active: dict[str, Any], job: JobView | None, reason: str, message: str) -> None:
        self._finish(active, job, "Failed", reason, message)
        current = (self.status.get("currentModel") or {}).get("version")
        keeps = f"{current} keeps serving" if current else "no model yet"
        self._event("Warning", "RunFailed", f"{active['version']} failed: {reason}: {message}; {keeps}")

    # -- serving and rollouts -------------------------------------------------------------

    def _serve(self, spec: PolicySpec) -> Wants | None:
        result = promotion.step(spec, self.policy.ref, self.status, self.policy.annotations, self.observed,
                                self.now, self.settings.default_image)
        if result.wants_metrics:
            return Wants(metrics=True)
        self.serving = result.plan
        for kind, reason, message in result.events:
            self._event(kind, reason, message)
        if result.requeue is not None:
            self.requeue.append(result.requeue)
        if result.finished:
            self._rollout_finished(result.finished)
        return None

    def _rollout_finished(self, phase: str) -> None:
        state = self.status.get("rollout") or {}
        version = state.get("version")
        recorded = next((h for h in self.status.get("history") or [] if h.get("version") == version), None)
        model = dict(recorded or {"version": version, "uri": state.get("uri"),
                                  "manifestSha256": state.get("manifestSha256")})
        model.pop("rollout", None)
        previous = (self.status.get("currentModel") or {}).get("version")
        if phase == rollout.SUCCEEDED:
            model["rolledOutAt"] = to_rfc3339(self.now)
            self.status["currentModel"] = model
            self._event("Normal", "ModelPromoted", f"{version} serves all traffic; now current"
                                                   f"{' (was ' + previous + ')' if previous else ''}")
        else:
            model["rejected"] = state.get("reason") or phase
        history = [model if h.get("version") == version else h for h in self.status.get("history") or []]
        self.status["history"] = history

    # -- starting runs -------------------------------------------------------------------

    def _pending_trigger(self, spec: PolicySpec) -> Trigger | None:
        value = (self.policy.annotations or {}).get(names.ANNOTATION_TRIGGER)
        if value and value != self.status.get("lastManualTrigger"):
            return Trigger("manual", f"annotation {names.ANNOTATION_TRIGGER}={value}",
                           to_rfc3339(self.now), value)
        pending = self.status.get("pendingDriftTrigger")
        if pending:
            return Trigger("drift", str(pending.get("reason", "drift detected")), str(pending.get("at", "")),
                           str(pending.get("checkId", "")))
        schedule = spec.triggers.schedule
        if schedule:
            tick = due_tick(schedule, from_rfc3339(self.status.get("lastScheduleTime")),
                            self.policy.created, self.now)
            if tick:
                at = to_rfc3339(tick)
                return Trigger("schedule", f"cron '{schedule.cron}' ({schedule.time_zone}) at {at}", at, at)
        return None

    def _maybe_start_run(self, spec: PolicySpec) -> Wants | None:
        if spec.suspend:
            self.idle_reason = ("Suspended", "spec.suspend is true: no new runs")
            return None
        if self.observed.dependency_problem:
            return None
        trigger = self._pending_trigger(spec)
        if trigger is None:
            return None
        refused = self._job_waiting()
        if refused:  # the trigger stays pending: the run starts once the API server takes the Job
            self.idle_reason = (str(refused.get("reason")),
                                f"{trigger.type} run waits: {apply_errors.describe(refused)}")
            return None
        cooldown_until = self._cooldown_until(spec)
        bypass = trigger.type == "manual" and spec.triggers.manual_bypasses_cooldown
        if cooldown_until and cooldown_until > self.now and not bypass:
            self.idle_reason = ("CooldownActive",
                                f"{trigger.type} run waits for the cooldown until {to_rfc3339(cooldown_until)}")
            self.requeue.append((cooldown_until - self.now).total_seconds())
            return None
        current = self.status.get("currentModel")
        minimum = spec.triggers.min_new_samples
        if minimum > 0 and current:
            if self.observed.new_samples is None:
                return Wants(new_samples=True)
            if self.observed.new_samples < minimum:
                self._consume(trigger)
                message = (f"{trigger.type} run skipped: {self.observed.new_samples} new samples since "
                           f"{current.get('version')}, minNewSamples is {minimum}")
                self.idle_reason = ("NotEnoughNewSamples", message)
                self._event("Normal", "RunSkipped", message)
                return None
        self._start(spec, trigger)
        return None

    def _cooldown_until(self, spec: PolicySpec) -> dt.datetime | None:
        if not spec.triggers.cooldown:
            return None
        finished = from_rfc3339((self.status.get("lastRun") or {}).get("finishedAt"))
        return finished + spec.triggers.cooldown if finished else None

    def _start(self, spec: PolicySpec, trigger: Trigger) -> None:
        index = int(self.status.get("runCounter") or 0) + 1
        version = version_name(index)
        parent = (self.status.get("currentModel") or {}).get("version")
        parent_uri = (self.status.get("currentModel") or {}).get("uri")
        job = trainer_job(self.policy.ref, spec, RunRequest(version, parent, trigger, parent_uri),
                          self.settings.default_image)
        self.create_job = job
        self.status["runCounter"] = index
        self.status["activeRun"] = {
            "version": version,
            "jobName": job["metadata"]["name"],
            "trigger": trigger.as_dict(),
            "parentVersion": parent,
            "startedAt": to_rfc3339(self.now),
        }
        self._consume(trigger)
        # Whatever started it, the new model answers any drift seen so far.
        self.status["pendingDriftTrigger"] = None
        self.requeue.append(ACTIVE_RUN_REQUEUE)
        self._event("Normal", "RunStarted", _run_started(version, trigger, job["metadata"]["name"]))

    # -- drift checks --------------------------------------------------------------------

    def _drift_job(self, check_id: str) -> DriftJobView | None:
        for job in self.observed.drift_jobs:
            if job.check_id == check_id:
                return job
        return None

    def _follow_drift_check(self, spec: PolicySpec) -> Wants | None:
        """Adopt an unknown drift Job, follow the active one, and record its result once."""
        active = self.status.get("activeDriftCheck")
        last_id = (self.status.get("drift") or {}).get("checkId")
        counter = max(int(self.status.get("driftCounter") or 0), check_index(last_id))
        for job in self.observed.drift_jobs:
            index = check_index(job.check_id)
            counter = max(counter, index)
            recorded = index <= check_index(last_id)
            if not active and not recorded:
                active = {"checkId": job.check_id, "jobName": job.name, "startedAt": None,
                          "modelVersion": (self.status.get("currentModel") or {}).get("version")}
                self.status["activeDriftCheck"] = active
        self.status["driftCounter"] = counter
        if not active:
            return None
        check_id = active["checkId"]
        job = self._drift_job(check_id)
        if job is not None and job.state == ACTIVE:
            self.requeue.append(ACTIVE_RUN_REQUEUE)
            return None
        outcome = self.observed.drift_outcomes.get(check_id)
        if outcome is None:
            return Wants(drift_outcomes=(check_id,))
        if outcome.storage_error:
            self.requeue.append(ACTIVE_RUN_REQUEUE)
            return None
        self.status["activeDriftCheck"] = None
        record: dict[str, Any] = {"checkId": check_id, "checkedAt": to_rfc3339(self.now),
                                  "modelVersion": active.get("modelVersion"), "resultUri": outcome.uri}
        result = outcome.result
        if result is None:
            error = outcome.error or {}
            reason = str(error.get("reason") or (job.reason if job else "") or "DriftCheckFailed")
            message = str(error.get("message") or (job.message if job else "") or
                          f"drift check {check_id} left no result at {outcome.uri}")
            record.update(error={"reason": reason, "message": message}, drift=None)
            self.status["drift"] = record
            self._event("Warning", "DriftCheckFailed", f"{check_id}: {reason}: {message}; no retraining")
            return None
        performance = result.get("performance") or {}
        record.update(
            drift=bool(result.get("drift")),
            datasetDrift=bool(result.get("datasetDrift")),
            score=round(float(result.get("driftedShare") or 0.0), 4),
            driftedFeatures=list(result.get("driftedFeatures") or [])[:20],
            topFeatures=list(result.get("topFeatures") or [])[:5],
            featureScores=feature_scores(result.get("features") or {}),
            rows=result.get("rows"),
            performance={k: performance.get(k) for k in ("metric", "value", "heldOut", "drifted")} or None,
            reportUri=outcome.uri + "report.html",
        )
        self.status["drift"] = record
        if record["drift"]:
            features = ", ".join(record["driftedFeatures"][:5]) or "-"
            why = [f"{len(record['driftedFeatures'])} feature(s) drifted ({features})"] if result.get(
                "datasetDrift") else []
            if performance.get("drifted"):
                why.append("; ".join(performance.get("reasons") or ["performance dropped"]))
            reason = f"drift check {check_id}: " + "; ".join(why)
            newer = self._newer_model(active.get("modelVersion"))
            if newer:  # that model was trained on the drifted data too: it answers this drift
                self._event("Warning", "DriftDetected", f"{reason}; {newer} (trained since) already answers it")
            else:
                self.status["pendingDriftTrigger"] = {"checkId": check_id, "reason": reason,
                                                      "at": to_rfc3339(self.now)}
                self._event("Warning", "DriftDetected", reason)
        else:
            self._event("Normal", "NoDrift", f"drift check {check_id}: score {record['score']}, no drift")
        return None

    def _newer_model(self, checked: str | None) -> str | None:
        """A model newer than the one a drift check judged: in training, in a rollout, or current."""
        active = (self.status.get("activeRun") or {}).get("version")
        if active:
            return str(active)
        if promotion.rollout_active(self.status):
            return str(self.status["rollout"].get("version"))
        current = (self.status.get("currentModel") or {}).get("version")
        return str(current) if current and current != checked else None

    def _maybe_start_drift_check(self, spec: PolicySpec) -> None:
        drift = spec.triggers.drift
        current = self.status.get("currentModel")
        if not drift or not current or spec.suspend or self.observed.dependency_problem:
            return
        last = from_rfc3339((self.status.get("drift") or {}).get("checkedAt"))
        due = last + drift.interval if last else self.now
        if due > self.now:
            self.requeue.append((due - self.now).total_seconds())
            return
        if self._job_waiting():
            return
        index = int(self.status.get("driftCounter") or 0) + 1
        check_id = f"d{index}"
        job = drift_job(self.policy.ref, spec, DriftRequest(check_id, current["version"], to_rfc3339(self.now),
                                                            current.get("uri")),
                        self.settings.default_image)
        self.create_job = job
        self.status["driftCounter"] = index
        self.status["activeDriftCheck"] = {"checkId": check_id, "jobName": job["metadata"]["name"],
                                           "startedAt": to_rfc3339(self.now), "modelVersion": current["version"]}
        self.requeue.append(ACTIVE_RUN_REQUEUE)

    # -- is the current model still what was recorded, and is it served? -------------------

    def _verification_due(self) -> str | None:
        """The current model's URI when its scheduled re-verification is due (and S3 is usable)."""
        current = self.status.get("currentModel") or {}
        interval = self.settings.verify_interval
        if not current.get("uri") or interval <= 0 or self.observed.dependency_problem:
            return None
        last = from_rfc3339(current.get("verifiedAt"))
        due = last + dt.timedelta(seconds=interval) if last else self.now
        if due > self.now:
            self.requeue.append((due - self.now).total_seconds())
            return None
        return str(current["uri"])

    def _with_verification(self, wants: Wants) -> Wants:
        """Ask for a due re-verification together with other facts, so it never costs a round of its own."""
        uri = self._verification_due()
        seen = self.observed.current_artifacts
        if uri and not wants.verify_uri and (seen is None or seen.uri != uri):
            return dataclasses.replace(wants, verify_uri=uri)
        return wants

    def _verify_current(self) -> Wants | None:
        """Compare the current version in S3 with what was recorded: the pinned manifest digest and the
        manifest's checksums. A difference is reported (Ready False, a Warning Event); the serving
        model is never replaced because of it: the servers that run keep the bytes they verified."""
        uri = self._verification_due()
        if uri is None:
            return None
        seen = self.observed.current_artifacts
        if seen is None or seen.uri != uri:
            return Wants(verify_uri=uri)
        if seen.storage_error:  # unreadable is not changed: look again at the next reconcile
            self.requeue.append(ACTIVE_RUN_REQUEUE)
            return None
        current = dict(self.status["currentModel"])
        version = current.get("version")
        pinned = current.get("manifestSha256")
        problems = list(seen.problems)
        if seen.manifest is None and not problems:
            problems.append("manifest.json is missing")
        if seen.manifest is not None and pinned and seen.manifest_sha256 != pinned:
            problems.insert(0, f"manifest.json has sha256 {seen.manifest_sha256}, not the pinned {pinned}")
        if seen.manifest is not None and seen.signature_problem:
            problems.append(seen.signature_problem)
        current["verifiedAt"] = to_rfc3339(self.now)
        if problems:
            message = f"{version} at {uri} changed since it was recorded: {'; '.join(problems[:3])}"
            if current.get("artifactProblem") != message:
                self._event("Warning", "ArtifactsChanged", f"{message}; the running servers keep the model they "
                                                           "verified, restarted ones refuse to load it")
            current["artifactProblem"] = message
        else:
            if not pinned and seen.manifest_sha256:  # recorded before digests were pinned: pinned now
                current["manifestSha256"] = seen.manifest_sha256
            if current.get("artifactProblem"):
                self._event("Normal", "ArtifactsVerified", f"{version} at {uri} matches what was recorded again")
            current["artifactProblem"] = None
        self.status["currentModel"] = current
        self._verification_due()  # schedules the next look
        return None

    def _serving_unavailable(self, spec: PolicySpec) -> str | None:
        """Why the current version is not served, once its stable servers have had no Ready pod for
        longer than the grace period (e.g. every restarted server refuses the artifacts)."""
        current = self.status.get("currentModel") or {}
        if spec.serving is None or not current.get("version"):
            return None
        found = serving.unavailable_since(self.observed.serving.stable, str(current["version"]))
        if found is None:
            return None
        since, detail = found
        grace = dt.timedelta(seconds=self.settings.serving_grace)
        if self.now - since < grace:
            self.requeue.append((since + grace - self.now).total_seconds())
            return None
        return (f"no stable model server of {current['version']} has been Ready since {to_rfc3339(since)}"
                f"{': ' + detail if detail else ''}")

    # -- the summary kubectl shows -------------------------------------------------------

    def _summarise(self, spec: PolicySpec) -> None:
        status = self.status
        active = status.get("activeRun")
        current = status.get("currentModel")
        last = status.get("lastRun") or {}
        dependency = self.observed.dependency_problem
        unavailable = self._serving_unavailable(spec)
        changed = (current or {}).get("artifactProblem")

        schedule = spec.triggers.schedule
        if schedule and not spec.suspend:
            floor = max(filter(None, [from_rfc3339(status.get("lastScheduleTime")), self.policy.created]))
            upcoming = next_tick(schedule, max(floor, self.now))
            status["nextRunAt"] = to_rfc3339(upcoming)
            self.requeue.append((upcoming - self.now).total_seconds())
        else:
            status["nextRunAt"] = None

        if active:
            trigger = active.get("trigger") or {}
            self._set(cond.TRAINING, True, "Running",
                      f"{active['version']} ({trigger.get('type')}) running as Job {active.get('jobName')}")
        else:
            self._set(cond.TRAINING, False, *self.idle_reason)

        drift_record = status.get("drift") or {}
        if spec.triggers.drift and drift_record:
            if drift_record.get("error"):  # Unknown: a failed check says nothing about drift
                error = drift_record["error"]
                self._set(cond.DRIFT_DETECTED, None, "CheckFailed",
                          f"{drift_record['checkId']}: {error.get('reason')}: {error['message']}")
            elif drift_record.get("drift"):
                pending = status.get("pendingDriftTrigger")
                self._set(cond.DRIFT_DETECTED, True, "DriftDetected",
                          (pending or {}).get("reason") or f"{drift_record['checkId']} found drift")
            else:
                self._set(cond.DRIFT_DETECTED, False, "NoDrift",
                          f"{drift_record['checkId']}: score {drift_record.get('score')}")

        if last.get("phase") == "Succeeded":
            self._set(cond.TRAINED, True, last.get("reason") or "TrainingSucceeded", last.get("message") or "")
        elif last.get("phase") in ("Failed", "Rejected"):
            self._set(cond.TRAINED, False, last.get("reason") or "TrainingFailed", last.get("message") or "")

        if dependency:
            reason, message = dependency
            before = cond.get_condition(self.old.get("conditions"), cond.READY)
            if not before or before.get("reason") != reason or before.get("message") != message:
                self._event("Warning", reason, message)
            self._set(cond.READY, False, reason, message)
        elif current and (unavailable or changed):
            reason = MODEL_UNAVAILABLE if unavailable else ARTIFACTS_CHANGED
            before = cond.get_condition(self.old.get("conditions"), cond.READY)
            if unavailable and (not before or before.get("reason") != MODEL_UNAVAILABLE):
                self._event("Warning", MODEL_UNAVAILABLE, unavailable)
            self._set(cond.READY, False, reason, "; ".join(filter(None, [unavailable, changed])))
        elif current:
            before = cond.get_condition(self.old.get("conditions"), cond.READY)
            if before and before.get("reason") == MODEL_UNAVAILABLE:
                self._event("Normal", "ModelServed", f"stable model servers of {current['version']} are Ready again")
            self._set(cond.READY, True, "ModelAvailable", f"{current['version']} is current ({current['uri']})")
        else:
            self._set(cond.READY, False, "NoModelYet", "no version has been trained yet")

        rolling = status.get("rollout") or {}
        if rolling and spec.serving is not None:
            if promotion.rollout_active(status):
                self._set(cond.PROGRESSING, True, rolling.get("reason") or "CanaryProgressing",
                          f"{rolling['version']}: {rolling.get('message', '')}")
                status["canary"] = f"{rolling['version']} {rolling.get('weight', 0)}%"
            else:
                self._set(cond.PROGRESSING, False, rolling.get("reason") or rolling.get("phase", ""),
                          f"{rolling.get('version')}: {rolling.get('message', '')}")
                status["canary"] = None

        if dependency:
            phase, message = PHASE_BLOCKED, dependency[1]
        elif current and (unavailable or changed):
            phase, message = PHASE_DEGRADED, "; ".join(filter(None, [unavailable, changed]))
        elif promotion.rollout_active(status):
            phase = PHASE_ROLLING_OUT
            message = f"canary {rolling['version']} {rolling.get('phase')}: {rolling.get('message', '')}"
        elif active:
            phase, message = PHASE_TRAINING, f"training {active['version']}"
        elif spec.suspend:
            phase, message = PHASE_SUSPENDED, "suspended"
        elif last.get("phase") == "Failed":
            keeps = f"; {current['version']} keeps serving" if current else ""
            phase, message = PHASE_DEGRADED, f"{last['version']} failed: {last.get('reason')}{keeps}"
        elif current:
            phase, message = PHASE_READY, f"{current['version']} is current"
            if last.get("phase") == "Rejected":
                message += f"; {last['version']} was not promoted ({last.get('reason')})"
        elif last.get("phase") == "Rejected":
            phase, message = PHASE_PENDING, f"{last['version']} was not promoted: {last.get('reason')}"
        else:
            phase, message = PHASE_PENDING, "waiting for the first run"
        status["phase"] = phase
        status["message"] = message
