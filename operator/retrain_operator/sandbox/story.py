"""`retrain-operator sandbox`: the retraining loop, step by step, on this machine.

Starts the embedded API server, SeaweedFS, the local Job executor and the operator; loads a
sample dataset; applies a sample policy; triggers a first (full) training and a second
(incremental) one after a new batch lands; prints what happens and where the results are.
Everything it starts, it stops.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path
from typing import Any

from ..api import names
from ..core.timeutil import from_rfc3339
from . import dataset
from .cluster import LocalCluster

NAMESPACE = "sandbox"
POLICY = "churn"
DATA_BUCKET = "sandbox-data"
MODEL_BUCKET = "sandbox-models"


def _say(text: str) -> None:
    print(text, flush=True)


def sample_policy(endpoint: str) -> dict[str, Any]:
    return {
        "model": {"estimator": "SGDClassifier", "task": "classification", "target": dataset.TARGET,
                  "features": dataset.FEATURES, "params": {"loss": "log_loss", "random_state": 0}},
        "data": {"history": f"s3://{DATA_BUCKET}/churn/history/", "incoming": f"s3://{DATA_BUCKET}/churn/incoming/",
                 "validation": {"minRows": 100, "maxNullFraction": 0.1}},
        "storage": {"bucket": MODEL_BUCKET, "prefix": "models", "endpoint": endpoint,
                    "credentialsSecret": {"name": "s3-credentials"}},
        "triggers": {"schedule": {"cron": "0 3 * * *", "timeZone": "UTC"}, "cooldown": "10m",
                     "minNewSamples": 500},
        "training": {"strategy": "incremental", "incremental": {"replayFraction": 0.8}, "backoffLimit": 1,
                     "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}},
        "historyLimit": 5,
    }


class _Watcher:
    """Prints each change of the things a person watches with `kubectl get -w`."""

    def __init__(self, cluster: LocalCluster):
        self.cluster = cluster
        self.seen: set[str] = set()

    def poll(self) -> dict[str, Any]:
        body = self.cluster.policy(NAMESPACE, POLICY)
        status = body.get("status") or {}
        active = status.get("activeRun") or {}
        line = f"phase={status.get('phase', '-')}"
        if active:
            line += f" run={active.get('version')} ({(active.get('trigger') or {}).get('type')})"
        if status.get("currentModel"):
            line += f" current={status['currentModel']['version']}"
        for item in self.cluster.jobs(NAMESPACE):
            job_status = item.get("status") or {}
            running = "Running" if job_status.get("active") else "Pending"
            state = next((c["type"] for c in job_status.get("conditions") or []
                          if c.get("type") in {"Complete", "Failed"}), running)
            key = f"job {item['metadata']['name']}: {state}"
            if key not in self.seen:
                self.seen.add(key)
                _say(f"   · {key}")
        if line not in self.seen:
            self.seen.add(line)
            _say(f"   · policy {POLICY}: {line}")
        for event in sorted(self.cluster.events(NAMESPACE, POLICY), key=lambda e: e.get("metadata", {}).get("name")):
            key = f"event {event.get('metadata', {}).get('name')}"
            if key not in self.seen:
                self.seen.add(key)
                _say(f"   · event {event.get('type')} {event.get('reason')}: {event.get('message')}")
        return body

    def until(self, done, timeout: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.poll()
            if done(body.get("status") or {}):
                return body
            time.sleep(0.5)
        raise TimeoutError(f"sandbox: timed out waiting for {what}\n{self.cluster.log_tail()}")


def _recorded(version: str):
    return lambda status: ((status.get("lastRun") or {}).get("version") == version
                           and not status.get("activeRun"))


def run_sandbox(workdir: Path, keep: bool = False) -> int:
    workdir = workdir.resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    _say("retrain-operator sandbox: the whole retraining loop on this machine, no cluster needed\n")
    _say("1. starting SeaweedFS (S3), the test Kubernetes API server, the local Job executor and the operator")
    with LocalCluster(workdir, max_requeue=2.0) as cluster:
        assert cluster.seaweed is not None
        _say(f"   S3 endpoint {cluster.seaweed.endpoint}, API server {cluster.api.url}")
        _say(f"   kubeconfig: {cluster.kubeconfig}   operator log: {cluster.operator_log}")

        _say("\n2. loading a sample dataset into S3")
        s3 = cluster.seaweed.client()
        for bucket in (DATA_BUCKET, MODEL_BUCKET):
            s3.create_bucket(Bucket=bucket)
        start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        history = dataset.churn_table(4000, seed=1, start=start)
        s3.put_object(Bucket=DATA_BUCKET, Key="churn/history/part-000.parquet", Body=dataset.to_parquet(history))
        batch1 = dataset.churn_table(1000, seed=2, start=start + dt.timedelta(days=1))
        s3.put_object(Bucket=DATA_BUCKET, Key="churn/incoming/batch-001.csv", Body=dataset.to_csv(batch1))
        _say(f"   s3://{DATA_BUCKET}/churn/history/part-000.parquet ({history.num_rows} rows), "
             f"s3://{DATA_BUCKET}/churn/incoming/batch-001.csv ({batch1.num_rows} rows)")

        _say("\n3. applying RetrainPolicy sandbox/churn (incremental SGDClassifier, nightly schedule, "
             "cooldown, minNewSamples) with a manual trigger")
        cluster.ensure_namespace(NAMESPACE)
        cluster.create_s3_secret(NAMESPACE, "s3-credentials")
        cluster.apply_policy(NAMESPACE, POLICY, sample_policy(cluster.seaweed.endpoint),
                             annotations={names.ANNOTATION_TRIGGER: "first"})
        watcher = _Watcher(cluster)
        watcher.until(_recorded("v1"), 180, "the first version")

        _say("\n4. a new batch lands; triggering again: the incremental strategy continues from v1")
        batch2 = dataset.churn_table(1500, seed=3, start=start + dt.timedelta(days=2))
        s3.put_object(Bucket=DATA_BUCKET, Key="churn/incoming/batch-002.csv", Body=dataset.to_csv(batch2))
        cluster.trigger(NAMESPACE, POLICY, "second")
        body = watcher.until(_recorded("v2"), 180, "the second version")

        status = body["status"]
        _say("\n5. result")
        _say(_table(body))
        for entry in status.get("history") or []:
            metrics = ", ".join(f"{k}={v:.3f}" for k, v in (entry.get("metrics") or {}).items()
                                if isinstance(v, int | float))
            _say(f"   {entry['version']} (parent {entry.get('parentVersion') or '-'}, {entry.get('trigger')}): "
                 f"{entry['uri']}  {metrics}")
        last = status.get("lastRun") or {}
        for check in last.get("gates") or []:
            _say(f"   gate {check['gate']} ({last.get('version')}): {check['result']}: {check['message']}")
        current = status.get("currentModel") or {}
        if current:
            _say(f"\n   model:    {current['uri']}model.joblib")
            _say(f"   metrics:  {current['uri']}metrics.json")
            _say(f"   manifest: {current['uri']}manifest.json")
            bucket, _, prefix = current["uri"][len("s3://"):].partition("/")
            manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read())
            rows = (manifest.get("data") or {}).get("rows")
            _say(f"   lineage:  {manifest.get('version')} <- {manifest.get('parentVersion')}, rows {rows}")
        ok = status.get("phase") == "Ready" and current.get("version") == "v2"
        if keep:
            _say(f"\nEverything keeps running (KUBECONFIG={cluster.kubeconfig}); Ctrl-C stops it.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        _say("\n6. stopping everything the sandbox started")
    _say("done." if ok else "the sandbox did not end as expected: see the log above")
    return 0 if ok else 1


def _table(body: dict[str, Any]) -> str:
    """The row `kubectl get retrainpolicies` prints, from the CRD's printer columns."""
    from ..api.crd import crd

    columns = [c for c in crd()["spec"]["versions"][0]["additionalPrinterColumns"] if not c.get("priority")]
    headers = ["NAME", *(c["name"].upper() for c in columns)]
    values = [body["metadata"]["name"], *(_cell(_json_path(body, c["jsonPath"]), c["type"]) for c in columns)]
    widths = [max(len(h), len(v)) for h, v in zip(headers, values, strict=True)]
    line = "   ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    row = "   ".join(v.ljust(w) for v, w in zip(values, widths, strict=True))
    return f"   {line}\n   {row}"


def _cell(value: Any, type_: str) -> str:
    """As kubectl prints it: dates as an age (45s, 3m, 2h, 5d)."""
    if value in (None, ""):
        return "<none>"
    if type_ != "date":
        return str(value)
    seconds = int((dt.datetime.now(dt.UTC) - from_rfc3339(str(value))).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _json_path(body: dict[str, Any], path: str) -> Any:
    node: Any = body
    for part in path.strip(".").split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node
