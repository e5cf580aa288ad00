"""`retrain-operator sandbox`: the whole loop, on this machine, on a stream with real concept drift.

Starts a dev cluster (a real control plane and a process-kubelet node), SeaweedFS and the
operator; then plays: first training -> two model servers behind an HTTPRoute -> live
traffic with labeled feedback -> the concept changes (SEA) -> the drift check sees the accuracy
drop -> retraining -> quality gates -> canary steps with live weights and live accuracy ->
promotion. With `bad_canary`, a challenger trained on mislabeled data passes the offline gates
and is rolled back by the live analysis. Everything it starts, it stops.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path
from typing import Any

from retrain_contract.api import names
from retrain_operator.core import rollout, serving
from retrain_operator.plugin.report import split_uri
from retrain_operator.plugin.tables import age, render

from . import dataset, sea
from .cluster import LocalCluster
from .feedback import FeedbackPrometheus
from .live import LiveView, say
from .traffic import Traffic

NAMESPACE = "sandbox"
POLICY = "sea"
DATA_BUCKET = "sandbox-data"
MODEL_BUCKET = "sandbox-models"
START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
Json = dict[str, Any]


# Each estimator's params, and how it retrains: SGD on a window of recent data; a boosted model
# continues from its parent (new trees on the new batch and a little replay: after a concept change
# old labels are wrong answers, so most of the rows are new ones).
ESTIMATORS: dict[str, tuple[Json, Json]] = {
    "SGDClassifier": ({"loss": "log_loss", "random_state": 0}, {"strategy": "window", "window": {"duration": "2d"}}),
    "XGBClassifier": ({"n_estimators": 40, "max_depth": 4, "random_state": 0},
                      {"strategy": "incremental", "incremental": {"replayFraction": 0.2}}),
    "LGBMClassifier": ({"n_estimators": 40, "num_leaves": 15, "random_state": 0},
                       {"strategy": "incremental", "incremental": {"replayFraction": 0.2}}),
}


def sample_policy(endpoint: str, prometheus_url: str, estimator: str = "SGDClassifier") -> Json:
    """The policy the sandbox applies; intervals are seconds here where a cluster would use hours."""
    params, strategy = ESTIMATORS[estimator]
    return {
        "model": {"estimator": estimator, "task": "classification", "target": sea.TARGET,
                  "features": sea.FEATURES, "params": params},
        "data": {"history": f"s3://{DATA_BUCKET}/sea/history/", "incoming": f"s3://{DATA_BUCKET}/sea/incoming/",
                 "timestampColumn": sea.TIMESTAMP, "validation": {"minRows": 100}},
        "storage": {"bucket": MODEL_BUCKET, "prefix": "models", "endpoint": endpoint,
                    "credentialsSecret": {"name": "s3-credentials"}},
        "triggers": {
            "schedule": {"cron": "0 3 * * *", "timeZone": "UTC"}, "minNewSamples": 500,
            # Labeled recent data, checked every 15 s: SEA's features never drift, only the answers do.
            "drift": {"data": f"s3://{DATA_BUCKET}/sea/recent/", "interval": "15s", "window": "24h",
                      "performance": {"metric": "accuracy", "maxDrop": 0.05}}},
        # SGD: only the last two days of data: after a concept change, older labels are wrong answers.
        "training": {**strategy, "backoffLimit": 1,
                     "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}},
        "promotion": {
            # A new concept makes the old data's labels wrong: allow the challenger to differ there.
            "gates": {"olderData": {"maxRegression": 0.2}},
            "canary": {
                # 20 s at 50 %: the live-accuracy windows (15 s, 40 answers a version at least) need a
                # few independent looks to tell a 0.05 drop from noise; with 5 s a bad canary could pass
                # on one lucky window (it did once in CI: v3 read 0.981 on 52 answers, as stable did).
                "steps": [{"setWeight": 20}, {"pause": {"duration": "5s"}}, {"setWeight": 50},
                          {"pause": {"duration": "20s"}}, {"setWeight": 100}],
                # Local processes share two CPUs with training Jobs: latency is noisy, so a loose ratio.
                # After a concept change the new model must answer differently (measured: Jensen-Shannon
                # 0.41 between v1's and v2's predicted classes), so the default 0.2 would reject the fix;
                # live accuracy on labeled feedback is what judges it here.
                "analysis": {"interval": "2s", "minRequests": 10, "maxLatencyRatio": 20, "maxPredictionShift": 0.7,
                             "prometheusUrl": prometheus_url,
                             "prometheus": [{"name": "live-accuracy-drop", "successCondition": "result <= 0.02",
                                             "query": 'sandbox_accuracy_drop{stable="{{version}}", '
                                                      'canary="{{canaryVersion}}"}'}]}}},
        "serving": {"replicas": 2, "router": {"type": "gatewayAPI", "httpRoute": POLICY}},
        "historyLimit": 5,
    }


def http_route(cluster: LocalCluster) -> None:
    """What a platform team applies once: the model's route, all traffic to the stable Service."""
    cluster.custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", NAMESPACE, "httproutes", {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": POLICY},
        "spec": {"parentRefs": [{"name": "public-gateway"}], "hostnames": ["sea.example.com"],
                 "rules": [{"backendRefs": [{"name": serving.service_name(POLICY, serving.STABLE),
                                             "port": 8080}]}]}})


def _current(version: str):
    return lambda status: (status.get("currentModel") or {}).get("version") == version


def _rollout_of(version: str):
    return lambda status: ((status.get("rollout") or {}).get("version") == version
                           and status["rollout"].get("phase") in rollout.FINAL) or (
        (status.get("lastRun") or {}).get("version") == version and (status.get("lastRun") or {}).get("phase")
        in {"Failed", "Rejected"})


def run_sandbox(workdir: Path, keep: bool = False, bad_canary: bool = False,
                estimator: str = "SGDClassifier") -> int:
    workdir = workdir.resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    say("retrain-operator sandbox: the whole retraining loop on this machine, no cluster needed\n")
    say("1. starting SeaweedFS (S3), a Kubernetes control plane (etcd, kube-apiserver, controller manager, "
        "scheduler), a node that runs pods as local processes, and the operator")
    with LocalCluster(workdir, max_requeue=2.0, say=say) as cluster:
        assert cluster.seaweed is not None
        say(f"   S3 endpoint {cluster.seaweed.endpoint}, API server {cluster.url}")
        say(f"   kubeconfig: {cluster.kubeconfig}   operator log: {cluster.operator_log}")
        view = LiveView(cluster, NAMESPACE, POLICY)
        traffic: Traffic | None = None
        feedback: FeedbackPrometheus | None = None
        try:
            s3 = cluster.seaweed.client()
            for bucket in (DATA_BUCKET, MODEL_BUCKET):
                s3.create_bucket(Bucket=bucket)

            def put(key: str, rows: int, concept: int, seed: int, start: dt.datetime) -> None:
                table = sea.sea_table(rows, concept, seed, start)
                s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=dataset.to_parquet(table))
                say(f"   s3://{DATA_BUCKET}/{key}: {rows} rows, concept "
                    f"x1 + x2 > {sea.THRESHOLDS[concept]:g}")

            say("\n2. loading the SEA concept stream (river): label = x1 + x2 > 8; x3 is noise")
            put("sea/history/part-000.parquet", 6000, sea.CONCEPT_A, 1, START)
            put("sea/recent/latest.parquet", 2000, sea.CONCEPT_A, 2, START + dt.timedelta(days=1))

            traffic = Traffic(cluster, NAMESPACE, POLICY, [], rate=40, router="gatewayAPI", route=POLICY,
                              target=sea.TARGET)
            feedback = FeedbackPrometheus(traffic).start()
            plan = "window strategy" if estimator == "SGDClassifier" else f"{estimator}, incremental strategy"
            say(f"\n3. applying RetrainPolicy sandbox/sea ({plan}, drift checks on labeled data, quality "
                "gates, a canary through the HTTPRoute) and asking for a first training")
            cluster.ensure_namespace(NAMESPACE)
            cluster.create_s3_secret(NAMESPACE, "s3-credentials")
            http_route(cluster)
            cluster.apply_policy(NAMESPACE, POLICY, sample_policy(cluster.seaweed.endpoint, feedback.url, estimator),
                                 annotations={names.ANNOTATION_TRIGGER: "first"})
            view.until(_current("v1"), 180, "the first version")
            cluster.wait(lambda: (cluster.deployment(NAMESPACE, serving.deployment_name(POLICY, serving.STABLE)) or {})
                         .get("status", {}).get("readyReplicas") == 2, 90, "the model servers")

            say("\n4. v1 serves; clients send requests through the route, and their true labels come back")
            traffic.set_rows(sea.request_rows(sea.sea_table(3000, sea.CONCEPT_A, 11, START)))
            traffic.start()
            view.traffic = traffic
            view.until(lambda s: (s.get("drift") or {}).get("drift") is False, 90, "a drift check without drift")
            _linger(view, 4)

            say(f"\n5. the world changes: from now on label = x1 + x2 > {sea.THRESHOLDS[sea.CONCEPT_B]:g}; the "
                "features look exactly as before")
            traffic.set_rows(sea.request_rows(sea.sea_table(3000, sea.CONCEPT_B, 12, START)))
            put("sea/incoming/batch-001.parquet", 4000, sea.CONCEPT_B, 3, START + dt.timedelta(days=4))
            put("sea/recent/latest.parquet", 2000, sea.CONCEPT_B, 4, START + dt.timedelta(days=4))
            body = view.until(lambda s: (s.get("drift") or {}).get("drift") is True, 120, "the drift check")
            detected = dict(body["status"]["drift"])
            report = _download(s3, detected.get("reportUri"), workdir / f"drift-report-{detected['checkId']}.html")
            view.until(_rollout_of("v2"), 300, "v2's training and canary")

            if bad_canary:
                say("\n6. a labeling bug: a new batch is labeled with last month's rule (x1 + x2 > 8); its own "
                    "held-out rows agree with it, so the offline gates pass")
                put("sea/incoming/batch-002.parquet", 12000, sea.CONCEPT_A, 5, START + dt.timedelta(days=4, hours=12))
                cluster.trigger(NAMESPACE, POLICY, "labeling-bug")
                view.until(_rollout_of("v3"), 300, "v3's training and canary")
            _linger(view, 2)
            body = view.poll()
            live = traffic.accuracy_since_change()
            trained = _training_line(s3, body.get("status") or {})
        finally:
            view.close()
            if traffic is not None:
                traffic.stop()
            if feedback is not None:
                feedback.stop()

        status = body.get("status") or {}
        say("\n7. summary")
        say(_summary(status, live))
        say(f"\n   {trained}")
        say("\n   $ kubectl get retrainpolicies -n sandbox")
        say(_table(body))
        say(f"\n   drift report of {detected['checkId']}: {report}")
        say(f"   (drift: {_drift_line(detected)})")
        ok = status.get("phase") == "Ready" and (status.get("currentModel") or {}).get("version") == "v2"
        if bad_canary:
            v3 = next((h for h in status.get("history") or [] if h.get("version") == "v3"), {})
            ok = ok and v3.get("rejected") == "AnalysisFailed"
        if keep:
            say(f"\nEverything keeps running (KUBECONFIG={cluster.kubeconfig}); Ctrl-C stops it.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        say("\n8. stopping everything the sandbox started")
    say("done." if ok else "the sandbox did not end as expected: see the log above")
    return 0 if ok else 1


def _linger(view: LiveView, seconds: float) -> None:
    """Keep the live view going a moment, so the numbers settle where a person can read them."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        view.poll()
        time.sleep(0.5)


def _download(s3: Any, uri: str | None, path: Path) -> str:
    if not uri:
        return "(no report)"
    bucket, key = split_uri(uri)
    path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return str(path)


def _training_line(s3: Any, status: Json) -> str:
    """How the serving version was trained, from its manifest: strategy, parent, trees, device, ONNX."""
    uri = (status.get("currentModel") or {}).get("uri")
    if not uri:
        return "(no current model)"
    bucket, key = split_uri(uri.rstrip("/") + "/manifest.json")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    training, model = manifest.get("training") or {}, manifest.get("model") or {}
    text = f"{manifest.get('version')}: {model.get('estimator')}, strategy {training.get('strategy')}"
    if training.get("continuedFrom"):
        text += f", continued from {training['continuedFrom']}"
    if training.get("trees"):
        text += f" ({training['trees']} trees in all)"
    text += f", trained on {training.get('device')}"
    onnx = model.get("onnx") or {}
    if onnx.get("verified"):
        return text + (f"; model.onnx verified on {onnx['rows']} held-out rows (labels identical, probabilities "
                       f"within {onnx['maxProbabilityDifference']:.1g})")
    return text + f"; no model.onnx: {onnx.get('reason')}"


def _drift_line(drift: Json) -> str:
    performance = drift.get("performance") or {}
    features = drift.get("driftedFeatures") or []
    text = f"{len(features)} feature(s) drifted{': ' + ', '.join(features) if features else ''}"
    if performance:
        text += (f"; {performance.get('metric')} on recent labeled rows {performance.get('value'):.3f} vs "
                 f"{performance.get('heldOut'):.3f} held out at training")
    return text


def _summary(status: Json, live: dict[str, tuple[float, int]]) -> str:
    current = (status.get("currentModel") or {}).get("version")
    headers = ["VERSION", "TRIGGER", "PARENT", "HELD-OUT ACC", "LIVE ACC SINCE THE CHANGE", "OUTCOME"]
    rows = []
    for entry in reversed(status.get("history") or []):
        version = entry.get("version", "")
        accuracy = (entry.get("metrics") or {}).get("accuracy")
        seen = live.get(version)
        outcome = ("serving" if version == current else f"rejected: {entry['rejected']}" if entry.get("rejected")
                   else "replaced")
        rows.append([version, str(entry.get("trigger") or "-"), str(entry.get("parentVersion") or "-"),
                     f"{accuracy:.3f}" if isinstance(accuracy, float) else "-",
                     f"{seen[0]:.3f} (n={seen[1]})" if seen else "-", outcome])
    lines = [_indent(render(headers, rows))]
    rolling = status.get("rollout") or {}
    if rolling:
        lines.append(f"\n   last rollout: {rolling.get('version')} {rolling.get('phase')}: "
                     f"{rolling.get('message', '')}")
    return "\n".join(lines)


def _table(body: Json) -> str:
    """The row `kubectl get retrainpolicies` prints, from the CRD's printer columns."""
    from retrain_operator.api.crd import crd

    columns = [c for c in crd()["spec"]["versions"][0]["additionalPrinterColumns"] if not c.get("priority")]
    headers = ["NAME", *(c["name"].upper() for c in columns)]
    values = [body["metadata"]["name"], *(_cell(_json_path(body, c["jsonPath"]), c["type"]) for c in columns)]
    return _indent(render(headers, [values]))


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())


def _cell(value: Any, type_: str) -> str:
    """As kubectl prints it: an empty cell for a missing value, dates as an age (45s, 3m, 2h, 5d)."""
    if value in (None, ""):
        return ""
    return age(str(value), dt.datetime.now(dt.UTC)) if type_ == "date" else str(value)


def _json_path(body: Json, path: str) -> Any:
    node: Any = body
    for part in path.strip(".").split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node
