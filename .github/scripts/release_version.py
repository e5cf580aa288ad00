"""The one version of a release, checked everywhere it is written.

The three distributions (retrain-contract, retrain-operator, retrain-trainer), their pins of the
contract, the packages' __version__, the chart's appVersion (the default tag of both images), the
kustomize base's operator tag and the workload image it names must agree; on a tag push the tag
must be `v<version>`. Prints the version; in GitHub Actions also writes `version=` to
$GITHUB_OUTPUT.

    python .github/scripts/release_version.py [--root PATH]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tomllib
from pathlib import Path

import yaml

DISTRIBUTIONS = {"retrain-contract": "contract/pyproject.toml", "retrain-operator": "pyproject.toml",
                 "retrain-trainer": "trainer_image/pyproject.toml"}
PACKAGES = ("contract/retrain_contract/__init__.py", "operator/retrain_operator/__init__.py",
            "trainer_image/retrain_trainer/__init__.py")


def problems(root: Path) -> tuple[str, list[str]]:
    """(the version, what disagrees with it)."""
    found: list[str] = []
    versions = {}
    for name, path in DISTRIBUTIONS.items():
        project = tomllib.loads((root / path).read_text())["project"]
        if project["name"] != name:
            found.append(f"{path}: project name {project['name']!r}, expected {name!r}")
        versions[path] = project["version"]
        for requirement in project.get("dependencies", []):
            if requirement.replace(" ", "").startswith("retrain-contract"):
                pin = requirement.replace(" ", "")
                if pin != f"retrain-contract=={versions[path]}":
                    found.append(f"{path}: {requirement!r} is not pinned to its own version {versions[path]}")
    version = versions["pyproject.toml"]
    found += [f"{path}: version {v}, the operator has {version}" for path, v in versions.items() if v != version]
    for path in PACKAGES:
        file = root / path
        if not file.exists():
            continue
        match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', file.read_text(), re.MULTILINE)
        if match and match.group(1) != version:
            found.append(f"{path}: __version__ {match.group(1)}, expected {version}")
    chart = yaml.safe_load((root / "helm/retrain-operator/Chart.yaml").read_text())
    if str(chart.get("appVersion")) != version:
        found.append(f"helm/retrain-operator/Chart.yaml: appVersion {chart.get('appVersion')} (the images' "
                     f"default tag), expected {version}")
    kustomization = yaml.safe_load((root / "manifests/kustomization.yaml").read_text())
    tags = {i["name"]: str(i.get("newTag")) for i in kustomization.get("images", [])}
    for name, tag in tags.items():
        if tag != version:
            found.append(f"manifests/kustomization.yaml: {name} tag {tag}, expected {version}")
    deployment = yaml.safe_load((root / "manifests/operator/deployment.yaml").read_text())
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        for env in container.get("env", []):
            if env["name"] == "RETRAIN_TRAINER_IMAGE" and not str(env.get("value", "")).endswith(f":{version}"):
                found.append(f"manifests/operator/deployment.yaml: RETRAIN_TRAINER_IMAGE {env.get('value')}, "
                             f"expected the tag {version}")
    if os.environ.get("GITHUB_REF_TYPE") == "tag" and os.environ.get("GITHUB_REF_NAME") != f"v{version}":
        found.append(f"the tag {os.environ.get('GITHUB_REF_NAME')} is not v{version}")
    return version, found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2])
    args = parser.parse_args(argv)
    version, found = problems(args.root)
    for problem in found:
        print(f"::error::{problem}" if os.environ.get("GITHUB_ACTIONS") else problem, file=sys.stderr)
    if found:
        return 1
    print(version)
    output = os.environ.get("GITHUB_OUTPUT")
    if output:
        with open(output, "a") as handle:
            handle.write(f"version={version}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
