"""One reconcile of one policy: gather what is, ask the core what to do, do it, write status once.

Blocking client calls (kubernetes, boto3) run in worker threads so one slow S3 endpoint does
not stall every other policy's loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes.client.rest import ApiException

from retrain_contract.api.spec import PolicySpec
from retrain_contract.artifacts.errors import STORAGE_UNREACHABLE, DataError, StorageError

from .adapters import bulkhead, event_posting, metrics, prometheus
from .adapters.kube import NotOwned
from .adapters.storage import PolicyStorage, storage_endpoint
from .context import Context
from .core import analysis, apply_errors, routes, serving
from .core.apply_errors import ApplyFailure
from .core.decide import MIN_REQUEUE, Event, Plan, PolicyState, decide
from .core.observed import ArtifactOutcome, DriftOutcome, MetricsView, Observed
from .core.promotion import ServingPlan
from .core.timeutil import from_rfc3339
from .observe import observe

log = logging.getLogger(__name__)
T = TypeVar("T")


def _state(body: dict[str, Any]) -> PolicyState:
    meta = body.get("metadata") or {}
    return PolicyState(
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation") or 0),
        created=from_rfc3339(meta.get("creationTimestamp")) or from_rfc3339("1970-01-01T00:00:00Z"),
        spec=body.get("spec") or {},
        status=body.get("status") or {},
        annotations=dict(meta.get("annotations") or {}),
    )


def _scrape(ctx: Context, policy: PolicyState, spec: PolicySpec, versions: tuple[str, str]) -> MetricsView:
    """The rollout's window: every Ready stable and canary pod's /metrics, and the Prometheus queries."""
    assert spec.serving is not None and spec.canary is not None
    stable_version, canary_version = versions
    snapshots = {}
    try:
        for role, version in ((serving.STABLE, stable_version), (serving.CANARY, canary_version)):
            pods = ctx.kube.ready_pods(policy.namespace, serving.selector(policy.name, role))
            pages = [ctx.kube.pod_metrics(policy.namespace, pod["metadata"]["name"], spec.serving.port) for pod in pods]
            snapshots[role] = analysis.snapshot_from_metrics(pages, str(version))
    except Exception as error:  # a scrape that fails is an inconclusive window, not a crash
        log.warning("scraping the model servers of %s/%s failed: %s", policy.namespace, policy.name, error)
        empty = {"requests": {}, "buckets": {}, "classes": {}}
        return MetricsView(stable=empty, canary=empty, error=str(error))
    queries: dict[str, float | None] = {}
    if spec.canary.analysis.prometheus_url:
        for item in spec.canary.analysis.prometheus:
            promql = analysis.render_query(item.query, stable=stable_version, canary=canary_version,
                                           namespace=policy.namespace)
            queries[item.name] = prometheus.query(spec.canary.analysis.prometheus_url, promql)
    return MetricsView(stable=snapshots[serving.STABLE], canary=snapshots[serving.CANARY], queries=queries)


async def _storage_read(storage: PolicyStorage, fn: Callable[..., T], *args: Any) -> T:
    """A read of the policy's storage in its endpoint's bulkhead; DeadlineExceeded after READ_DEADLINE."""
    endpoint = storage_endpoint(storage.spec)
    return await bulkhead.STORAGE.run(endpoint, fn, *args, deadline=bulkhead.READ_DEADLINE, what=str(endpoint))


async def _read_outcome(storage: PolicyStorage, fn: Callable[[str], ArtifactOutcome], arg: str) -> ArtifactOutcome:
    """An artifact read; past its deadline it is a storage error like any other: decided again later."""
    try:
        return await _storage_read(storage, fn, arg)
    except bulkhead.DeadlineExceeded as error:
        return ArtifactOutcome(manifest=None, storage_error=f"{STORAGE_UNREACHABLE}: {error}")


async def _gather(ctx: Context, plan: Plan, observed: Observed, storage: PolicyStorage | None,
                  policy: PolicyState) -> Observed:
    outcomes = dict(observed.outcomes)
    for version in plan.wants.outcomes:
        if storage is None:
            outcomes[version] = ArtifactOutcome(manifest=None, storage_error="storage is not accessible")
        else:
            outcomes[version] = await _read_outcome(storage, storage.outcome, version)
    drift_outcomes = dict(observed.drift_outcomes)
    for check_id in plan.wants.drift_outcomes:
        if storage is None:
            drift_outcomes[check_id] = DriftOutcome(result=None, storage_error="storage is not accessible")
        else:
            try:
                drift_outcomes[check_id] = await _storage_read(storage, storage.drift_outcome, check_id)
            except bulkhead.DeadlineExceeded as error:
                drift_outcomes[check_id] = DriftOutcome(result=None, storage_error=f"{STORAGE_UNREACHABLE}: {error}")
    new_samples = observed.new_samples
    dependency_problem = observed.dependency_problem
    if plan.wants.new_samples:
        current = policy.typed_status.current_version
        try:
            new_samples = await _storage_read(storage, storage.new_samples, current) if storage else 0
        except bulkhead.DeadlineExceeded as error:  # no run starts on a count nobody could make
            new_samples, dependency_problem = 0, (STORAGE_UNREACHABLE, str(error))
        except StorageError as error:
            new_samples, dependency_problem = 0, (error.reason, f"counting new samples: {error.message}")
        except DataError as error:  # a corrupt incoming object: said, and no run on a count that skips it
            new_samples, dependency_problem = 0, ("IncomingDataUnreadable", f"counting new samples: {error}")
    scraped = observed.metrics
    if plan.wants.metrics:
        try:  # its own thread per policy: a hanging pod or Prometheus delays only this rollout
            assert observed.spec is not None  # metrics are wanted only of a valid spec's rollout
            scraped = await bulkhead.SCRAPES.run((policy.namespace, policy.name), _scrape, ctx, policy, observed.spec,
                                                 plan.wants.metrics, deadline=bulkhead.SCRAPE_DEADLINE,
                                                 what="the metrics scrape")
        except bulkhead.DeadlineExceeded as error:  # an inconclusive window, like a failed scrape
            empty: dict[str, Any] = {"requests": {}, "buckets": {}, "classes": {}}
            scraped = MetricsView(stable=empty, canary=empty, error=str(error))
    current_artifacts = observed.current_artifacts
    if plan.wants.verify_uri:  # the scheduled re-verification of the current model, where status records it
        current_artifacts = (await _read_outcome(storage, storage.outcome_at, plan.wants.verify_uri) if storage else
                             ArtifactOutcome(manifest=None, uri=plan.wants.verify_uri,
                                             storage_error="storage is not accessible"))
    return dataclasses.replace(observed, outcomes=outcomes, new_samples=new_samples, drift_outcomes=drift_outcomes,
                               metrics=scraped, current_artifacts=current_artifacts,
                               dependency_problem=dependency_problem)


def _refused(step: str, kind: str, name: str, error: ApiException) -> ApplyFailure:
    return apply_errors.from_api_error(step, kind, name, error.status, error.body, error.reason or "")


def _create_job(ctx: Context, policy: PolicyState, job: dict[str, Any]) -> ApplyFailure | None:
    """Create the planned Job; a refusal comes back as a typed failure, not an exception."""
    try:
        created_job, created = ctx.kube.create_job(job)
    except NotOwned as error:
        return apply_errors.not_owned(apply_errors.JOB, error.kind, error.name, error.message)
    except ApiException as error:
        return _refused(apply_errors.JOB, "Job", job["metadata"]["name"], error)
    log.info("%s Job %s for %s/%s", "created" if created else "adopted existing",
             created_job["metadata"]["name"], policy.namespace, policy.name)
    return None


def _apply_serving(ctx: Context, policy: PolicyState, plan: ServingPlan, observed: Observed) -> ApplyFailure | None:
    """Services, then Deployments, then route weights; stops at the first refusal and returns it.

    Stopping there is what keeps the model serving: weights never move towards a canary whose
    Deployment was not updated, and nothing is ever deleted or scaled down because of a refusal."""
    step = apply_errors.SERVING
    existing = {serving.deployment_name(policy.name, serving.STABLE): observed.serving.stable,
                serving.deployment_name(policy.name, serving.CANARY): observed.serving.canary}
    for service in plan.services:
        name = service["metadata"]["name"]
        try:
            ctx.kube.ensure_service(service)
        except NotOwned as error:
            return apply_errors.not_owned(step, error.kind, error.name, error.message)
        except ApiException as error:
            return _refused(step, "Service", name, error)
    for deployment in plan.deployments:
        name = deployment["metadata"]["name"]
        try:
            ctx.kube.apply_deployment(deployment, existing.get(name))
        except NotOwned as error:
            return apply_errors.not_owned(step, error.kind, error.name, error.message)
        except ApiException as error:
            return _refused(step, "Deployment", name, error)
    if plan.router == "replicas" or not plan.route_name:
        return None
    kind = routes.ROUTE_KINDS.get(plan.router, plan.router)
    route = observed.serving.route
    if route is None:  # its first read failed: once more, and a failure now is a refusal like any other
        try:
            route = ctx.kube.read_route(policy.namespace, plan.router, plan.route_name)
        except ApiException as error:
            return _refused(step, kind, plan.route_name, error)
        if route is None:  # deleted since it was observed: the next decision holds the weights
            return None
    make = routes.httproute_patch if plan.router == "gatewayAPI" else routes.virtualservice_patch
    operations = make(route, plan.stable_service, plan.canary_service, plan.weight, plan.port, plan.mirror)
    if operations:
        try:
            ctx.kube.patch_route(policy.namespace, plan.router, plan.route_name, operations)
        except ApiException as error:
            return _refused(step, kind, plan.route_name, error)
        log.info("%s/%s: %s %s weights stable %d%% / canary %d%%", policy.namespace, policy.name, plan.router,
                 plan.route_name, 100 - plan.weight, plan.weight)
    return None


async def _decide(ctx: Context, policy: PolicyState, observed: Observed,
                  storage: PolicyStorage | None) -> tuple[Plan, Observed]:
    """Decide, gathering the facts each decision asks for (at most three rounds)."""
    plan = decide(policy, observed, ctx.clock.now(), ctx.settings)
    for _ in range(3):  # each round answers the facts the previous decision asked for
        if not plan.wants:
            break
        observed = await _gather(ctx, plan, observed, storage, policy)
        plan = decide(policy, observed, ctx.clock.now(), ctx.settings)
    if plan.wants:
        raise RuntimeError(f"decision still wants {plan.wants} after gathering")
    return plan, observed


async def reconcile(ctx: Context, namespace: str, name: str) -> float:
    """Reconcile once; returns the seconds until the next look.

    What the API server refuses while the plan is applied does not escape: it is recorded in
    status (core/apply_errors.py), the whole status is still written, and a Warning Event and a log
    line say it. A refused Job means the run did not start: the decision is made again knowing
    that, so the status never claims a Job that does not exist."""
    body = await asyncio.to_thread(ctx.kube.get_policy, namespace, name)
    if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
        return ctx.max_requeue
    policy = _state(body)
    before = policy.status
    observed, storage = await observe(ctx, policy)
    plan, observed = await _decide(ctx, policy, observed, storage)

    failures: list[ApplyFailure] = []
    job_created = False
    if plan.create_job is not None:
        failure = await asyncio.to_thread(_create_job, ctx, policy, plan.create_job)
        if failure is None:
            job_created = True
        else:
            failures.append(failure)
            refused = apply_errors.record(before, failure, ctx.clock.now(), policy.generation)
            plan, observed = await _decide(ctx, dataclasses.replace(policy, status=refused), observed, storage)
            if plan.create_job is not None:  # the decision waits out the backoff; never retry at once
                log.error("%s/%s: the decision planned Job %s again right after it was refused; not created",
                          namespace, name, plan.create_job["metadata"]["name"])
    status = plan.status
    if job_created:
        status = apply_errors.clear(status, apply_errors.JOB)
    now = ctx.clock.now()
    if plan.serving is None:
        status = apply_errors.clear(status, apply_errors.SERVING)
    elif apply_errors.waiting(status, apply_errors.SERVING, now, policy.generation) is None:
        failure = await asyncio.to_thread(_apply_serving, ctx, policy, plan.serving, observed)
        if failure is None:
            status = apply_errors.clear(status, apply_errors.SERVING)
        else:
            failures.append(failure)
            status = apply_errors.record(status, failure, now, policy.generation)
    status = apply_errors.summarise(status, now, policy.generation)
    events = list(plan.events)
    for failure in failures:
        entry = apply_errors.records(status).get(failure.step) or {}
        events.append(Event("Warning", failure.reason, apply_errors.describe(entry)))

    # Events first: a crash before the status write repeats this decision, and its Events keep their names.
    notifiers = observed.spec.notify if observed.spec is not None else ()
    owed = await asyncio.to_thread(event_posting.post_events, ctx.kube, body, before, events, ctx.clock.now(),
                                   ctx.instance, notifiers, status)
    if owed and ctx.notifier is not None:
        ctx.notifier.submit(owed)  # never waits: delivery is the notifier's, off this reconcile's path
    if status != before:
        await asyncio.to_thread(ctx.kube.write_policy_status, namespace, name, status)
    metrics.record(namespace, name, status, plan.outcomes)
    metrics.notifiers(namespace, name, (n.name for n in notifiers))
    if plan.prune_versions and storage is not None:
        try:
            await _storage_read(storage, storage.prune, list(plan.prune_versions))
        except Exception:  # pruning is housekeeping: never fail a reconcile for it
            log.exception("pruning %s of %s/%s failed", plan.prune_versions, namespace, name)
    if plan.discard_partial and storage is not None:
        try:
            await _storage_read(storage, storage.discard_partial, list(plan.discard_partial))
        except Exception:  # housekeeping too: the failed run is recorded whatever happens here
            log.exception("removing the partial uploads of %s of %s/%s failed", plan.discard_partial, namespace, name)
    delay = plan.requeue_after
    retry = apply_errors.seconds_to_next_attempt(status, now)
    if retry is not None:
        delay = min(delay, max(MIN_REQUEUE, retry))
    return min(delay, ctx.max_requeue)
