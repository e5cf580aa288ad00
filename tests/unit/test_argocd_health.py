"""The Argo CD health check, run by a real Lua 5.1 interpreter (Argo CD's gopher-lua speaks 5.1)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "manifests/argocd/health.lua"
PATCH = ROOT / "manifests/argocd/argocd-cm-patch.yaml"
KEY = "resource.customizations.health.retrain.mlops.dev_RetrainPolicy"

try:  # lupa ships one module per Lua version; 5.1 is what Argo CD runs
    lupa: Any = importlib.import_module("lupa.lua51")
except ImportError:  # pragma: no cover - a lupa build without 5.1
    lupa = importlib.import_module("lupa")


def health(obj: dict[str, Any]) -> tuple[str, str]:
    """Run the script as Argo CD does: `obj` a global table, the result a returned table."""
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(SCRIPT.read_text())
    return result["status"], result["message"]


def policy(phase: str | None = None, message: str = "", generation: int = 2, observed: int = 2,
           **status: Any) -> dict[str, Any]:
    fields = {"phase": phase, "message": message, "observedGeneration": observed, **status}
    return {"apiVersion": "retrain.mlops.dev/v1alpha1", "kind": "RetrainPolicy",
            "metadata": {"name": "churn", "namespace": "ml", "generation": generation},
            "spec": {}, "status": {k: v for k, v in fields.items() if v is not None}}


OPERATOR_STATUS = {  # shaped like what the operator writes for a served model
    "phase": "Ready", "message": "v3 is current", "observedGeneration": 4,
    "conditions": [
        {"type": "Ready", "status": "True", "reason": "ModelReady", "message": "v3 is current",
         "observedGeneration": 4, "lastTransitionTime": "2025-05-01T10:00:00Z"},
        {"type": "Training", "status": "False", "reason": "Idle", "message": "no run in progress",
         "observedGeneration": 4, "lastTransitionTime": "2025-05-01T10:00:00Z"},
        {"type": "Trained", "status": "True", "reason": "RunSucceeded", "message": "v3 trained",
         "observedGeneration": 4, "lastTransitionTime": "2025-05-01T10:00:00Z"},
        {"type": "DriftDetected", "status": "False", "reason": "NoDrift", "message": "1 of 12 features drifted",
         "observedGeneration": 4, "lastTransitionTime": "2025-05-01T09:00:00Z"},
    ],
    "currentModel": {"version": "v3", "uri": "s3://models/ml/churn/v3", "metrics": {"f1Macro": 0.86}},
    "history": [{"version": "v3"}, {"version": "v2", "rejected": "GateFailed"}],
    "rollout": {"version": "v3", "phase": "Succeeded", "weight": 100, "message": "promoted after 3 steps"},
    "runCounter": 3, "activeRun": None,
}


@pytest.mark.parametrize(("obj", "expected"), [
    ({}, ("Progressing", "Waiting for the operator")),
    (policy(), ("Progressing", "Waiting for the operator")),
    (policy("Pending", "waiting for the first run"), ("Progressing", "waiting for the first run")),
    (policy("Training", "training v4"), ("Progressing", "training v4")),
    (policy("RollingOut", "canary v4 at 20%"), ("Progressing", "canary v4 at 20%")),
    (policy("Ready", "v3 is current"), ("Healthy", "v3 is current")),
    (policy("Degraded", "v4 failed; v3 serves"), ("Degraded", "v4 failed; v3 serves")),
    (policy("Blocked", "secret s3-creds not found"), ("Degraded", "secret s3-creds not found")),
    (policy("Invalid", "spec.schedule: bad cron"), ("Degraded", "spec.schedule: bad cron")),
    (policy("Suspended", "spec.suspend is true"), ("Suspended", "spec.suspend is true")),
    (policy("Somewhere", "a phase from a newer operator"), ("Progressing", "a phase from a newer operator")),
    (policy("Ready", "v3 is current", generation=5, observed=4),
     ("Progressing", "Waiting for the operator to observe generation 5")),
    (policy("Degraded", "old news", generation=3, observed=2),
     ("Progressing", "Waiting for the operator to observe generation 3")),
    (policy("RollingOut", "canary v4 at 20%",
            rollout={"version": "v4", "phase": "Paused", "weight": 20, "reason": "AwaitingPromotion",
                     "message": "at 20%: paused until promoted"}),
     ("Suspended", "at 20%: paused until promoted")),
    (policy("RollingOut", "canary v4", rollout={"version": "v4", "phase": "Paused"}),
     ("Suspended", "Canary v4 paused: awaiting manual promote")),
    (policy("RollingOut", "canary v4 at 50%", rollout={"version": "v4", "phase": "Progressing", "weight": 50}),
     ("Progressing", "canary v4 at 50%")),
    ({**policy(generation=4), "status": OPERATOR_STATUS}, ("Healthy", "v3 is current")),
    ({**policy(generation=4), "status": {**OPERATOR_STATUS, "phase": "Degraded", "message": "v4 failed: OOMKilled"}},
     ("Degraded", "v4 failed: OOMKilled")),
    ({**policy(generation=4), "status": {**OPERATOR_STATUS, "conditions": [
        *OPERATOR_STATUS["conditions"],
        {"type": "Stalled", "status": "True", "reason": "ServingObjectRejected",
         "message": "Deployment churn-model-stable refused (422 Invalid): ..."}]}},
     ("Degraded", "Deployment churn-model-stable refused (422 Invalid): ...")),
    ({**policy(generation=4), "status": {**OPERATOR_STATUS, "conditions": [
        *OPERATOR_STATUS["conditions"], {"type": "Stalled", "status": "False", "reason": "Accepted"}]}},
     ("Healthy", "v3 is current")),
], ids=["empty", "no-phase", "pending", "training", "rolling-out", "ready", "degraded", "blocked", "invalid",
        "suspended", "unknown-phase", "stale-generation", "stale-beats-degraded", "paused-rollout",
        "paused-without-message", "progressing-rollout", "operator-status",
        "operator-status-degraded", "stalled", "no-longer-stalled"])
def test_health(obj: dict[str, Any], expected: tuple[str, str]):
    assert health(obj) == expected


def test_without_observed_generation_the_phase_decides():
    obj = policy("Ready", "v3 is current")
    del obj["status"]["observedGeneration"]
    assert health(obj) == ("Healthy", "v3 is current")


def test_the_argocd_cm_patch_holds_the_script_verbatim():
    patch = yaml.safe_load(PATCH.read_text())
    assert (patch["kind"], patch["metadata"]["name"], patch["metadata"]["namespace"]) == \
        ("ConfigMap", "argocd-cm", "argocd")
    assert patch["data"][KEY] == SCRIPT.read_text()
