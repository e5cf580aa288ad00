"""The CustomResourceDefinition, generated from `schema.py`.

`python -m retrain_operator.api.crd --write` regenerates manifests/crd/ and the Helm chart's copy in
files/ (which its templates/crd.yaml renders); tests fail when a checked-in copy and the generated one differ.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from retrain_contract.api import names
from retrain_contract.api.schema import openapi_schema

CRD_PATH = Path("manifests/crd") / f"{names.PLURAL}.{names.GROUP}.yaml"
HELM_CRD_PATH = Path("helm/retrain-operator/files") / CRD_PATH.name  # templates/crd.yaml renders it (crds.install)
HEADER = "# Generated from contract/retrain_contract/api/schema.py: python -m retrain_operator.api.crd --write\n"

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "Where the policy stands"},
    {"name": "Model", "type": "string", "jsonPath": ".status.currentModel.version",
     "description": "The current model version"},
    {"name": "Strategy", "type": "string", "jsonPath": ".spec.training.strategy", "priority": 1,
     "description": "Training strategy"},
    {"name": "Last Trained", "type": "date", "jsonPath": ".status.currentModel.trainedAt",
     "description": "When the current model was trained"},
    {"name": "Next Run", "type": "string", "jsonPath": ".status.nextRunAt", "description": "Next scheduled run"},
    {"name": "Canary", "type": "string", "jsonPath": ".status.canary",
     "description": "The version in a canary rollout and its traffic weight"},
    {"name": "Trigger", "type": "string", "jsonPath": ".status.lastRun.trigger", "priority": 1,
     "description": "What started the last run"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{names.PLURAL}.{names.GROUP}"},
        "spec": {
            "group": names.GROUP,
            "scope": "Namespaced",
            "names": {"kind": names.KIND, "plural": names.PLURAL, "singular": names.SINGULAR,
                      "shortNames": list(names.SHORT_NAMES), "categories": list(names.CATEGORIES),
                      "listKind": f"{names.KIND}List"},
            "versions": [{
                "name": names.VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": PRINTER_COLUMNS,
                "schema": {"openAPIV3Schema": openapi_schema()},
            }],
        },
    }


def render_yaml() -> str:
    return HEADER + yaml.safe_dump(crd(), sort_keys=False, allow_unicode=True, width=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"write {CRD_PATH} instead of printing")
    args = parser.parse_args()
    if args.write:
        for path in (CRD_PATH, HELM_CRD_PATH):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render_yaml())
    else:
        print(render_yaml(), end="")


if __name__ == "__main__":
    main()
