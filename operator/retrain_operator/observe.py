"""The first step of a reconcile: what is (the policy's Jobs and their pods, its Secrets, S3, its serving
objects), gathered into the core's Observed. Reads only; a read that fails becomes a fact the core decides on."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from kubernetes.client.rest import ApiException

from retrain_contract.api.spec import PolicySpec
from retrain_contract.artifacts.errors import STORAGE_UNREACHABLE

from .adapters import bulkhead, notifier, signing
from .adapters.s3clients import fingerprint
from .adapters.storage import PolicyStorage, client_for, credentials_from_secret, recorded_uris, storage_endpoint
from .api.validation import problems as spec_problems
from .context import Context
from .core import serving
from .core.decide import PolicyState
from .core.in_flight import storage_in_use
from .core.observed import Observed, ServingView, drift_job_view, job_view, waits_for_pods
from .core.pod_problems import pod_problem

log = logging.getLogger(__name__)


async def observe(ctx: Context, policy: PolicyState) -> tuple[Observed, PolicyStorage | None]:
    problems = tuple(spec_problems(policy.spec))
    if problems:
        return Observed(spec_problems=problems), None
    spec = PolicySpec.from_dict(policy.spec)
    jobs = await asyncio.to_thread(ctx.kube.list_jobs, policy.namespace, policy.name)
    owned = [job for job in jobs if serving.owned_by(job, policy.uid)]
    problems = await _pod_problems(ctx, policy.namespace, owned)
    views = tuple(dataclasses.replace(view, pod_problem=problems.get(view.name))
                  for job in owned if (view := job_view(job)) is not None)
    drift_views = tuple(dataclasses.replace(view, pod_problem=problems.get(view.name))
                        for job in owned if (view := drift_job_view(job)) is not None)
    secret = await asyncio.to_thread(ctx.kube.read_secret, policy.namespace, spec.storage.credentials.name)
    credentials, problem = credentials_from_secret(spec, secret, policy.namespace)
    public_key, signing_problem = await _signing_keys(ctx, policy, spec)
    notify_problems = await notifier.webhook_problems(ctx.kube, policy.namespace, spec.notify)
    storage = None
    if credentials is not None:
        # In the endpoint's bulkhead, with a deadline: a silent endpoint delays this policy only.
        endpoint = storage_endpoint(spec)
        try:
            client = await bulkhead.STORAGE.run(endpoint, client_for, spec, credentials,
                                                deadline=bulkhead.CHECK_DEADLINE, what=str(endpoint))
            storage = PolicyStorage(spec, policy.namespace, policy.name, client,
                                    uid=policy.uid, recorded=recorded_uris(policy.status), public_key=public_key,
                                    signing_problem=signing_problem[1] if signing_problem else None)
            question = (endpoint, spec.storage.bucket, fingerprint(credentials))
            known, problem = (False, None) if storage_in_use(policy.status) else ctx.bucket_checks.lookup(question)
            if not known:
                problem = await bulkhead.STORAGE.run(endpoint, storage.check_bucket,
                                                     deadline=bulkhead.CHECK_DEADLINE, what=str(endpoint))
                ctx.bucket_checks.put(question, problem)
        except bulkhead.DeadlineExceeded as error:  # no further reads this round: they would wait too
            storage, problem = None, (STORAGE_UNREACHABLE, str(error))
    problem = problem or signing_problem  # S3 first: without it nothing is read, signed or not
    serving_view = ServingView()
    if spec.serving is not None:
        stable, canary = await asyncio.gather(*(
            asyncio.to_thread(ctx.kube.read_deployment, policy.namespace, serving.deployment_name(policy.name, role))
            for role in (serving.STABLE, serving.CANARY)))
        # Only Deployments the policy controls count; one of our name that is not is refused when applied.
        route, missing = await asyncio.to_thread(_read_route, ctx, policy, spec)
        serving_view = ServingView(stable=stable if serving.owned_by(stable, policy.uid) else None,
                                   canary=canary if serving.owned_by(canary, policy.uid) else None,
                                   route=route, route_missing=missing)
    return Observed(spec=spec, dependency_problem=problem, jobs=views, drift_jobs=drift_views,
                    serving=serving_view, notify_problems=notify_problems), storage


async def _pod_problems(ctx: Context, namespace: str, jobs: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Why the pods of our active Jobs without a ready pod do not start (a missing Secret, image or node).
    A read that fails says nothing: the run is followed as before."""
    found = {}
    for job in jobs:
        if not waits_for_pods(job):
            continue
        name = (job.get("metadata") or {}).get("name", "")
        try:
            problem = pod_problem(await asyncio.to_thread(ctx.kube.job_pods, namespace, name))
        except ApiException as error:
            log.warning("%s: listing the pods of Job %s failed: %s %s", namespace, name, error.status, error.reason)
            continue
        if problem is not None:
            found[name] = problem
    return found


def _read_route(ctx: Context, policy: PolicyState, spec: PolicySpec) -> tuple[dict[str, Any] | None, bool]:
    """The route spec.serving.router names, and whether the API server says it does not exist. A read
    that fails otherwise is neither: weights are left as they are this round, and the log says why."""
    router = spec.serving.router if spec.serving else None
    name = router.http_route or router.virtual_service if router else None
    if router is None or router.type == "replicas" or not name:
        return None, False
    try:
        route = ctx.kube.read_route(policy.namespace, router.type, name)
    except ApiException as error:
        log.warning("%s/%s: reading %s %s failed: %s %s", policy.namespace, policy.name, router.type, name,
                    error.status, error.reason)
        return None, False
    return route, route is None


async def _signing_keys(ctx: Context, policy: PolicyState, spec: PolicySpec) \
        -> tuple[Any, tuple[str, str] | None]:
    """With spec.signing: the public key to verify with, and what keeps the signing from working."""
    if spec.signing is None:
        return None, None
    secret = await asyncio.to_thread(ctx.kube.read_secret, policy.namespace, spec.signing.public_key.name)
    public_key, problem = signing.public_key_from_secret(spec.signing, secret, policy.namespace)
    if problem is None and spec.signing.private_key is not None:
        private = await asyncio.to_thread(ctx.kube.read_secret, policy.namespace, spec.signing.private_key.name)
        problem = signing.private_key_problem(spec.signing, private, policy.namespace)
    return public_key, problem


