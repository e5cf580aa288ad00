"""A stand-in for the Job controller, the kubelet and the TTL controller, for machines without a cluster.

It watches Jobs through the API like the real controller, runs each Job's container command
as a local subprocess with the Job's environment (secretKeyRef / configMapKeyRef / fieldRef
resolved through the API, like the kubelet does), and writes the Job's status back the way
the real controller does: startTime/active, then succeeded or failed with Complete / Failed
conditions, honouring backoffLimit, podFailurePolicy exit-code rules, activeDeadlineSeconds
and ttlSecondsAfterFinished. The image is not pulled: the command runs from this machine's
PATH (the project's virtualenv first). No Pod objects are created.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
from kubernetes.client.rest import ApiException

from ..core.timeutil import from_rfc3339, to_rfc3339

log = logging.getLogger(__name__)
Json = dict[str, Any]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _condition(type_: str, reason: str, message: str, now: dt.datetime) -> Json:
    stamp = to_rfc3339(now)
    return {"type": type_, "status": "True", "reason": reason, "message": message,
            "lastProbeTime": stamp, "lastTransitionTime": stamp}


def failure_rule_action(job: Json, exit_code: int) -> str | None:
    """The podFailurePolicy action for a container exit code (FailJob, Ignore, Count), if a rule matches."""
    rules = ((job.get("spec") or {}).get("podFailurePolicy") or {}).get("rules") or []
    for rule in rules:
        on_codes = rule.get("onExitCodes")
        if not on_codes:
            continue
        values = set(on_codes.get("values") or [])
        matches = exit_code in values if on_codes.get("operator", "In") == "In" else exit_code not in values
        if matches and exit_code != 0:
            return str(rule.get("action"))
    return None


@dataclass
class _Running:
    job_uid: str
    thread: threading.Thread
    process: subprocess.Popen[bytes] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)


class LocalExecutor:
    """Run Jobs from the API as local processes; `run_forever()` until `stop()`."""

    def __init__(self, api_client: kubernetes.client.ApiClient, workdir: Path,
                 namespace: str | None = None, poll_interval: float = 0.3,
                 extra_path: list[str] | None = None):
        self.batch = kubernetes.client.BatchV1Api(api_client)
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.workdir = workdir
        self.namespace = namespace
        self.poll_interval = poll_interval
        self.extra_path = extra_path or [str(Path(sys.executable).parent)]
        self._running: dict[tuple[str, str], _Running] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()

    # -- API helpers ---------------------------------------------------------------------

    def _list_jobs(self) -> list[Json]:
        if self.namespace:
            response = self.batch.list_namespaced_job(self.namespace, _preload_content=False)
        else:
            response = self.batch.list_job_for_all_namespaces(_preload_content=False)
        return list(json.loads(response.data).get("items") or [])

    def _read_job(self, namespace: str, name: str) -> Json | None:
        try:
            return json.loads(self.batch.read_namespaced_job(name, namespace, _preload_content=False).data)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def _patch_status(self, namespace: str, name: str, status: Json) -> None:
        with contextlib.suppress(ApiException):
            self.batch.patch_namespaced_job_status(name, namespace, {"status": status})

    # -- the environment a kubelet would build -------------------------------------------

    def _env(self, job: Json, container: Json, tmpdir: Path) -> dict[str, str]:
        meta = job["metadata"]
        return container_env(self.core, meta["namespace"], f"{meta['name']}-local", container, self.extra_path,
                             tmpdir)

    # -- running one Job -----------------------------------------------------------------

    def _run_job(self, job: Json, running: _Running) -> None:
        meta = job["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        spec = job.get("spec") or {}
        container = spec["template"]["spec"]["containers"][0]
        backoff_limit = int(spec.get("backoffLimit", 6))
        deadline = spec.get("activeDeadlineSeconds")
        started = _now()
        self._patch_status(namespace, name, {"startTime": to_rfc3339(started), "active": 1, "ready": 0})
        failed = 0
        attempt = 0
        while not running.cancelled.is_set():
            attempt += 1
            jobdir = self.workdir / namespace / name
            tmpdir = jobdir / f"attempt-{attempt}-tmp"
            tmpdir.mkdir(parents=True, exist_ok=True)
            log_path = jobdir / f"attempt-{attempt}.log"
            command = [*(container.get("command") or []), *(container.get("args") or [])]
            try:
                env = self._env(job, container, tmpdir)
            except (KeyError, ApiException) as error:
                # The kubelet would report CreateContainerConfigError and keep the pod pending.
                log.warning("Job %s/%s cannot start: %s", namespace, name, error)
                if running.cancelled.wait(2.0):
                    return
                continue
            remaining = None
            if deadline is not None:
                remaining = float(deadline) - (_now() - started).total_seconds()
            code = self._spawn(command, env, log_path, running, remaining)
            if running.cancelled.is_set():
                return
            now = _now()
            if code == 0:
                done = "Reached expected number of succeeded pods"
                self._patch_status(namespace, name, {
                    "active": 0, "ready": 0, "succeeded": 1, "failed": failed, "completionTime": to_rfc3339(now),
                    "conditions": [_condition("SuccessCriteriaMet", "CompletionsReached", done, now),
                                   _condition("Complete", "CompletionsReached", done, now)]})
                return
            if code is None:  # deadline
                self._fail(namespace, name, failed + 1, "DeadlineExceeded",
                           "Job was active longer than specified deadline", now)
                return
            action = failure_rule_action(job, code)
            if action == "Ignore":
                continue
            failed += 1
            if action == "FailJob":
                self._fail(namespace, name, failed, "PodFailurePolicy",
                           f"Container {container['name']} for pod {namespace}/{name}-local failed with exit "
                           f"code {code} matching FailJob rule at index 0", now)
                return
            if failed > backoff_limit:
                self._fail(namespace, name, failed, "BackoffLimitExceeded",
                           "Job has reached the specified backoff limit", now)
                return
            self._patch_status(namespace, name, {"failed": failed, "active": 1})
            # The real controller backs off 10 s, 20 s, ...; a short pause keeps tests quick.
            if running.cancelled.wait(min(0.5 * failed, 2.0)):
                return

    def _fail(self, namespace: str, name: str, failed: int, reason: str, message: str, now: dt.datetime) -> None:
        self._patch_status(namespace, name, {
            "active": 0, "ready": 0, "failed": failed,
            "conditions": [_condition("FailureTarget", reason, message, now),
                           _condition("Failed", reason, message, now)]})

    def _spawn(self, command: list[str], env: dict[str, str], log_path: Path, running: _Running,
               timeout: float | None) -> int | None:
        """Exit code, or None when the deadline killed it; 127 when the command does not exist."""
        if not command:
            return 127
        with open(log_path, "wb") as log_file:
            try:
                process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, cwd=env["TMPDIR"], start_new_session=True)
            except FileNotFoundError:
                log_file.write(f"exec: {command[0]!r}: executable file not found in $PATH\n".encode())
                return 127
            running.process = process
            end = None if timeout is None else time.monotonic() + max(timeout, 0.0)
            while True:
                try:
                    return process.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    pass
                if running.cancelled.is_set() or (end is not None and time.monotonic() >= end):
                    self._kill(process)
                    return None

    @staticmethod
    def _kill(process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    # -- the control loop ----------------------------------------------------------------

    def _finished(self, job: Json) -> bool:
        return any(c.get("type") in {"Complete", "Failed"} and c.get("status") == "True"
                   for c in (job.get("status") or {}).get("conditions") or [])

    def _expire(self, job: Json) -> None:
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        conditions = (job.get("status") or {}).get("conditions") or []
        finished = max((from_rfc3339(c.get("lastTransitionTime")) for c in conditions
                        if c.get("type") in {"Complete", "Failed"}), default=None)
        if finished and _now() >= finished + dt.timedelta(seconds=int(ttl)):
            meta = job["metadata"]
            with contextlib.suppress(ApiException):
                self.batch.delete_namespaced_job(meta["name"], meta["namespace"],
                                                 propagation_policy="Background")

    def poll_once(self) -> None:
        jobs = self._list_jobs()
        seen: set[tuple[str, str]] = set()
        for job in jobs:
            meta = job["metadata"]
            key = (meta["namespace"], meta["name"])
            seen.add(key)
            if self._finished(job):
                self._expire(job)
                continue
            if (job.get("spec") or {}).get("suspend"):
                continue
            with self._lock:
                current = self._running.get(key)
                if current is not None and current.job_uid == meta.get("uid") and current.thread.is_alive():
                    continue
                running = _Running(job_uid=meta.get("uid", ""), thread=threading.Thread(
                    target=lambda j=job: self._run_job_safely(j), name=f"job-{key[1]}", daemon=True))
                self._running[key] = running
            running.thread.start()
        with self._lock:
            for key, running in list(self._running.items()):
                if key not in seen:  # the Job was deleted: its pod would be killed
                    running.cancelled.set()
                if not running.thread.is_alive():
                    del self._running[key]

    def _run_job_safely(self, job: Json) -> None:
        key = (job["metadata"]["namespace"], job["metadata"]["name"])
        running = self._running[key]
        try:
            self._run_job(job, running)
        except Exception:
            log.exception("running Job %s/%s failed", *key)

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("local executor poll failed")
            self._stop.wait(self.poll_interval)
        with self._lock:
            for running in self._running.values():
                running.cancelled.set()
            threads = [running.thread for running in self._running.values()]
        for thread in threads:
            thread.join(timeout=10)

    def stop(self) -> None:
        self._stop.set()


def container_env(core: kubernetes.client.CoreV1Api, namespace: str, pod_name: str, container: Json,
                  extra_path: list[str], tmpdir: Path) -> dict[str, str]:
    """The environment a kubelet would give the container: values, and secret/config/field refs resolved."""
    env = {
        "PATH": os.pathsep.join([*extra_path, os.environ.get("PATH", "/usr/bin:/bin")]),
        "HOME": str(tmpdir),
        "TMPDIR": str(tmpdir),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "HOSTNAME": pod_name,
        "RETRAIN_LOCAL_EXECUTOR": "1",
    }
    for item in container.get("env") or []:
        name = item["name"]
        if "value" in item:
            env[name] = str(item["value"])
            continue
        source = item.get("valueFrom") or {}
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            secret = json.loads(core.read_namespaced_secret(ref["name"], namespace, _preload_content=False).data)
            if ref["key"] in (secret.get("data") or {}):
                env[name] = base64.b64decode(secret["data"][ref["key"]]).decode()
            elif ref["key"] in (secret.get("stringData") or {}):
                env[name] = str(secret["stringData"][ref["key"]])
            elif not ref.get("optional"):
                raise KeyError(f"Secret {ref['name']} has no key {ref['key']}")
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            config_map = json.loads(core.read_namespaced_config_map(ref["name"], namespace,
                                                                    _preload_content=False).data)
            env[name] = str((config_map.get("data") or {})[ref["key"]])
        elif "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            env[name] = {"metadata.name": pod_name, "metadata.namespace": namespace}.get(path, "")
    return env
