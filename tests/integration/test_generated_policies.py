"""Generated policies: whatever a user writes is refused by the real API server or reconciled to a clear
condition, never a crash, and a cluster full of them costs a bounded request rate.

1,000+ specs per run (Hypothesis, derandomized: the seed comes from the test's code, so the same code
generates the same specs on every run), mostly near-valid with
every section varied, plus mutations that break them (tests/integration/policy_strategies.py). Each
is created with dryRun=All on the real server; each one it accepts, exactly as the server returned
it (defaults applied, unknown fields pruned), goes through the operator's pure core as the first
reconcile would: `_state`, the spec problems, `PolicySpec.from_dict` (which `_observe` calls when
there are none), `decide`. Then a deterministic sample is created for real, with the real operator
running, and must settle to a clear Ready condition without an error in the operator's log.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from hypothesis import HealthCheck, Phase, example, given, note, settings
from kubernetes.client.rest import ApiException

from retrain_contract.api import names
from retrain_contract.api.spec import PolicySpec
from retrain_operator.api.validation import problems as spec_problems
from retrain_operator.api.validation import semantic_problems
from retrain_operator.core import conditions as cond
from retrain_operator.core.decide import MAX_REQUEUE, Plan, Settings, decide
from retrain_operator.core.observed import ArtifactOutcome, DriftOutcome, Observed
from retrain_operator.core.schedule import next_tick
from retrain_operator.reconcile import _state
from retrain_sandbox.cluster import LocalCluster
from retrain_sandbox.seaweed import SeaweedS3

from .conftest import Scenario, running_cluster, scratch_namespace
from .policy_strategies import REGRESSIONS, policy_specs

pytestmark = pytest.mark.integration
Json = dict[str, Any]

# Specs sent to the server per run; RETRAIN_GENERATED_EXAMPLES overrides it (e.g. more for a soak).
EXAMPLES = int(os.environ.get("RETRAIN_GENERATED_EXAMPLES", "1000"))
SAMPLE = 40  # specs created for real
UNREACHABLE_EVERY = 8  # every 8th real one keeps its generated endpoint (unreachable): Blocked, not a crash
IDLE_WINDOW = 30.0


def with_regressions(test: Any) -> Any:
    """The known hard cases first (explicit examples), then the generated ones."""
    for spec in reversed(REGRESSIONS):
        test = example(spec)(test)
    return test


def hypothesis_settings(examples: int) -> settings:
    """Deterministic (derandomize: the seed comes from the test), no example database, no time limits."""
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None, print_blob=False,
                    phases=(Phase.explicit, Phase.generate, Phase.shrink),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example, HealthCheck.filter_too_much])


# -- the fixtures: a namespace for dry runs, the operator at its production requeue ---------------------


@pytest.fixture(scope="module")
def cluster(seaweed: SeaweedS3, tmp_path_factory: pytest.TempPathFactory, clock_file: Path,
            devcluster: Any) -> Iterator[LocalCluster]:
    """The operator as deployed: the production --max-requeue (300 s), not the tests' 1 s, so the idle
    request rate below is the one a real cluster sees."""
    yield from running_cluster(seaweed, tmp_path_factory, devcluster, max_requeue=MAX_REQUEUE, clock_file=clock_file)


@pytest.fixture(scope="module")
def dry_run_namespace(devcluster: Any) -> Iterator[str]:
    yield from scratch_namespace(devcluster, f"gen-{int(time.time())}")


# -- the server's verdict and the operator's first reconcile ------------------------------------------


def dry_run(custom: kubernetes.client.CustomObjectsApi, namespace: str, spec: Json,
            name: str = "generated") -> tuple[Json | None, Json | None]:
    """(the object the server would store, None) or (None, the Status it refused with)."""
    body = {"apiVersion": names.API_VERSION, "kind": names.KIND, "metadata": {"name": name}, "spec": spec}
    try:
        return custom.create_namespaced_custom_object(names.GROUP, names.VERSION, namespace, names.PLURAL, body,
                                                      dry_run="All"), None
    except ApiException as error:
        # 422 Invalid (schema, CEL), 400 BadRequest (a body it cannot decode, e.g. an int beyond int64).
        assert error.status in (400, 422), f"the server failed on a spec ({error.status}): {error.body}"
        return None, json.loads(error.body)


def refusal_key(status: Json) -> str:
    """A short what-was-refused for the summary: the first cause's field and reason (indices dropped)."""
    causes = (status.get("details") or {}).get("causes") or []
    if not causes:
        return f"{status.get('reason')}: {str(status.get('message'))[:60]}"
    field = re.sub(r"\[[^\]]*\]", "[]", str(causes[0].get("field", "")))
    return f"{field} {causes[0].get('reason', '')}"


def answered(plan: Plan, observed: Observed) -> Observed:
    """Answer what the decision asks for as reconcile's `_gather` does when there is no storage."""
    wants = plan.wants
    return Observed(
        spec_problems=observed.spec_problems, dependency_problem=observed.dependency_problem, jobs=observed.jobs,
        outcomes={**observed.outcomes, **{v: ArtifactOutcome(manifest=None, storage_error="storage is not accessible")
                                          for v in wants.outcomes}},
        new_samples=0 if wants.new_samples else observed.new_samples,
        drift_outcomes={**observed.drift_outcomes, **{c: DriftOutcome(result=None, storage_error="no storage")
                                                      for c in wants.drift_outcomes}},
        serving=observed.serving, metrics=observed.metrics,
        current_artifacts=(ArtifactOutcome(manifest=None, uri=wants.verify_uri, storage_error="no storage")
                           if wants.verify_uri else observed.current_artifacts))


def first_reconcile(body: Json, now: dt.datetime, found: list[str],
                    annotations: dict[str, str] | None = None) -> Plan:
    """The pure part of reconcile.py's first reconcile of `body`, whose spec problems are `found`
    (`problems(spec)`, computed once by the caller: it is the slow part)."""
    if annotations:
        body = {**body, "metadata": {**body["metadata"], "annotations": annotations}}
    policy = _state(body)
    if found:
        observed = Observed(spec_problems=tuple(found))
    else:
        PolicySpec.from_dict(policy.spec)  # _observe reads the spec before anything else
        observed = Observed()
    plan = decide(policy, observed, now, Settings())
    for _ in range(3):
        if not plan.wants:
            break
        observed = answered(plan, observed)
        plan = decide(policy, observed, now, Settings())
    assert not plan.wants, f"the decision still wants {plan.wants}"
    return plan


def assert_clear(plan: Plan, found: list[str]) -> Json:
    """A status a human can act on: phase, and a Ready condition with a reason and a message. Returns Ready."""
    status = plan.status
    json.dumps(status)  # written whole through the API: must be JSON
    if plan.create_job is not None:
        json.dumps(plan.create_job)
    ready = cond.get_condition(status.get("conditions"), cond.READY)
    assert ready is not None, f"no Ready condition in {status}"
    assert ready["reason"] and ready["message"] and ready["status"] in ("True", "False", "Unknown"), ready
    assert status.get("phase") and status.get("message"), status
    if found:  # every problem found is said, the first ones in the message
        assert ready["reason"] == "InvalidSpec" and status["phase"] == "Invalid", status
        assert found[0] in ready["message"], (found, ready)
    else:
        assert ready["reason"] != "InvalidSpec", ready
    return ready


# -- 1. a thousand specs through the real server and the pure core ---------------------------------------


@pytest.mark.timeout(900)  # ~1 min on an idle machine; several on a loaded one
def test_generated_specs_are_refused_by_the_server_or_reconciled_to_a_clear_condition(devcluster: Any,
                                                                                       dry_run_namespace: str):
    custom = kubernetes.client.CustomObjectsApi(devcluster.client)
    refused: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    disagreements: list[tuple[Json, list[str]]] = []
    counts = collections.Counter[str]()
    timings = collections.Counter[str]()

    @with_regressions
    @hypothesis_settings(EXAMPLES)
    @given(policy_specs())
    def check(spec: Json) -> None:
        started = time.perf_counter()
        created, refusal = dry_run(custom, dry_run_namespace, spec)
        timings["server"] += time.perf_counter() - started
        counts["examples"] += 1
        if created is None:
            counts["refused"] += 1
            refused[refusal_key(refusal)] += 1
            return
        counts["accepted"] += 1
        note(f"as the server stores it: {json.dumps(created['spec'])[:4000]}")
        started = time.perf_counter()
        now = dt.datetime.now(dt.UTC)
        found = spec_problems(created["spec"])
        plan = first_reconcile(created, now, found)
        ready = assert_clear(plan, found)
        reasons[f"{ready['reason']} ({plan.status['phase']})"] += 1
        # And the reconcile after a user asks for a run: the trainer Job of this spec is planned
        # (or the refusal to plan one is said), which exercises the whole training section.
        plan = first_reconcile(created, now, found, {names.ANNOTATION_TRIGGER: "1"})
        assert_clear(plan, found)
        if not found and not created["spec"].get("suspend"):
            assert plan.create_job is not None, plan.status
            counts["jobs planned"] += 1
        timings["core"] += time.perf_counter() - started
        # What the server accepted, the operator's own copy of the schema must accept too: it is
        # what clusters without validation (or an old CRD) rely on.
        semantic = semantic_problems(created["spec"])
        schema = [problem for problem in found if problem not in semantic]
        if schema:
            disagreements.append((created["spec"], schema))

    started = time.monotonic()
    check()
    wall = time.monotonic() - started
    print(f"\n{counts['examples']} generated specs in {wall:.1f} s (server {timings['server']:.1f} s, "
          f"core {timings['core']:.1f} s): {counts['accepted']} accepted, {counts['refused']} refused, "
          f"{counts['jobs planned']} trainer Jobs planned")
    print("refused, by the first cause:", *(f"  {n:4d} {key}" for key, n in refused.most_common()), sep="\n")
    print("accepted, by Ready reason:", *(f"  {n:4d} {key}" for key, n in reasons.most_common()), sep="\n")
    assert counts["examples"] >= EXAMPLES
    # Both verdicts must be well represented, or the strategies stopped exploring one side.
    assert counts["accepted"] >= EXAMPLES // 4 and counts["refused"] >= EXAMPLES // 4, counts
    # One known way through the server: kube-openapi compares an integer with int(minimum), so
    # testFraction: 0 passes `minimum: 0.05`. The operator's own check catches it (InvalidSpec, above).
    truncated_bound = re.compile(r"^spec\.[\w.]+: -?\d+ is (less|greater) than the (minimum|maximum) of -?\d*\.\d+$")
    unexpected = sorted({p for _, found in disagreements for p in found if not truncated_bound.match(p)})
    print(f"accepted by the server, refused by the operator's schema check: {len(disagreements)}",
          *sorted({p for _, found in disagreements for p in found}), sep="\n  ")
    assert not unexpected, f"specs the server accepted fail the operator's schema check: {unexpected}"


# -- 2. a sample for real, with the operator running -------------------------------------------------------


def reconcilable(spec: Json, scenario: Scenario, index: int) -> Json:
    """The spec pointed at the scenario's storage (most of them), with a schedule that does not fire
    during the test (no training: the sample is about reconciling, not about running Jobs)."""
    spec = json.loads(json.dumps(spec))
    storage = spec.get("storage")
    if isinstance(storage, dict) and index % UNREACHABLE_EVERY:
        assert scenario.cluster.seaweed is not None
        storage["bucket"] = scenario.model_bucket
        storage["endpoint"] = scenario.cluster.seaweed.endpoint
        if isinstance(storage.get("credentialsSecret"), dict):
            storage["credentialsSecret"]["name"] = "s3-credentials"
    try:
        schedule = PolicySpec.from_dict(spec).triggers.schedule
        soon = schedule is not None and next_tick(schedule, dt.datetime.now(dt.UTC)) < \
            dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
    except Exception:  # a spec the operator finds invalid: it never schedules anything
        soon = False
    if soon:
        spec["triggers"]["schedule"]["cron"] = "0 0 1 1 *"
    return spec


def ready_reason(status: Json) -> str | None:
    ready = cond.get_condition(status.get("conditions"), cond.READY)
    return ready["reason"] if ready and ready.get("reason") and ready.get("message") else None


def operator_request_count(cluster: LocalCluster) -> int:
    return sum(1 for _ in cluster.operator_requests())


@pytest.mark.timeout(600)
def test_a_sample_reconciles_for_real_without_errors_at_a_bounded_request_rate(scenario: Scenario):
    cluster, namespace = scenario.cluster, scenario.namespace
    sample: list[Json] = []

    @with_regressions
    @hypothesis_settings(4 * SAMPLE)
    @given(policy_specs())
    def collect(spec: Json) -> None:
        created, _ = dry_run(cluster.custom, namespace, spec)
        if created is not None and len(sample) < SAMPLE:
            sample.append(spec)

    collect()
    assert len(sample) == SAMPLE, f"only {len(sample)} of {4 * SAMPLE} generated specs were accepted"
    requests_before = operator_request_count(cluster)
    policies = {}
    for index, spec in enumerate(sample):
        name = f"gen-{index:02d}"
        policies[name] = reconcilable(spec, scenario, index)
        cluster.apply_policy(namespace, name, policies[name])

    def settled() -> dict[str, Json] | None:
        listed = cluster.custom.list_namespaced_custom_object(names.GROUP, names.VERSION, namespace, names.PLURAL)
        statuses = {item["metadata"]["name"]: item.get("status") or {} for item in listed["items"]}
        return statuses if len(statuses) == SAMPLE and all(map(ready_reason, statuses.values())) else None

    started = time.monotonic()
    statuses = cluster.wait(settled, 180, "every generated policy to have a Ready condition", interval=1.0)
    took = time.monotonic() - started
    reasons = collections.Counter(f"{ready_reason(s)} ({s.get('phase')})" for s in statuses.values())
    print(f"\n{SAMPLE} policies settled in {took:.1f} s:", *(f"  {n:3d} {r}" for r, n in reasons.most_common()),
          sep="\n")
    for name, status in statuses.items():  # the reason the pure core predicts for an invalid spec
        stored = cluster.policy(namespace, name)["spec"]
        if spec_problems(stored):
            assert ready_reason(status) == "InvalidSpec", (name, status)
        else:
            assert ready_reason(status) != "InvalidSpec", (name, status)

    # Idle: nothing changes, so the operator should barely talk to the API server.
    time.sleep(5)  # the last status writes' own watch events are reconciled
    settled_at = operator_request_count(cluster)
    time.sleep(IDLE_WINDOW)
    idle = operator_request_count(cluster) - settled_at
    print(f"operator requests: {settled_at - requests_before} while settling, {idle} in {IDLE_WINDOW:.0f} s idle "
          f"({idle / SAMPLE:.2f} per policy)")

    assert cluster.operator is not None and cluster.operator.poll() is None, "the operator exited"
    log = cluster.operator_log.read_text(errors="replace")
    crashed = re.compile(r"reconcile of \S+ failed|Traceback|failed with an exception")
    failures = [line for line in log.splitlines() if crashed.search(line)]
    assert not failures, "\n".join(failures[:20]) + "\n" + cluster.log_tail(80)
    # Each policy's loop sleeps until its plan's requeue (120 s for an invalid spec, 300 s otherwise, the
    # next cron tick, or a change: its own status write wakes it once more, and an unchanged status is not
    # written again). Measured: 0 requests in the 30 s after settling (~490 while the 40 settled).
    # The bound, one request per policy per window, is headroom for a stray requeue; a policy stuck in a
    # loop (a status that changes on every reconcile, a 1 s requeue) makes 3-5 requests per second.
    assert idle <= SAMPLE, f"{idle} operator requests in {IDLE_WINDOW:.0f} s of idle for {SAMPLE} policies"
