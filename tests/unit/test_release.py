"""The release: .github/workflows checked by actionlint, both images built from their Dockerfiles into the
chart's repositories on one digest-pinned base, the three wheels, one version; the Dockerfiles multi-stage,
non-root, compiler-free in the final stage, with their probes documented.

actionlint is built once with `go install` (the Go toolchain the control plane needs anyway) into
~/.cache/retrain-devtools/actionlint-<version>/ with its sha256, checked on every use; without Go, an
actionlint on PATH is used, and without either the actionlint test skips. The other tests read the files.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from retrain_devcluster.processes import run as _run

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
RELEASE = WORKFLOWS / "release.yml"
ACTIONLINT_VERSION = "v1.7.12"
ACTIONLINT_MODULE = "github.com/rhysd/actionlint/cmd/actionlint"
DOCKERFILES = {"operator": ROOT / "operator" / "Dockerfile", "trainer": ROOT / "trainer_image" / "Dockerfile"}
ENTRYPOINTS = {"operator": "retrain-operator", "trainer": "retrain-trainer"}
PINNED_FROM = "${PYTHON_IMAGE}${PYTHON_IMAGE_DIGEST:+@}${PYTHON_IMAGE_DIGEST}"


def _cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "retrain-devtools"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def actionlint() -> Path | None:
    """The pinned actionlint, built once into the cache; else one on PATH; else None."""
    directory = _cache() / f"actionlint-{ACTIONLINT_VERSION}"
    binary, sums = directory / "actionlint", directory / "SHA256SUMS"
    if binary.exists() and sums.exists() and sums.read_text().split()[0] == _sha256(binary):
        return binary
    go = shutil.which("go")
    if go is None:
        found = shutil.which("actionlint")
        return Path(found) if found else None
    staging = directory.with_name(f"{directory.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    built = _run([go, "install", f"{ACTIONLINT_MODULE}@{ACTIONLINT_VERSION}"], timeout=600,
                 env={**os.environ, "GOBIN": str(staging), "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"})
    if built.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise AssertionError(f"go install {ACTIONLINT_MODULE}@{ACTIONLINT_VERSION} failed:\n{built.stdout[-3000:]}")
    (staging / "SHA256SUMS").write_text(f"{_sha256(staging / 'actionlint')}  actionlint\n")
    shutil.rmtree(directory, ignore_errors=True)
    try:
        staging.rename(directory)  # only a complete build is ever found
    except OSError:  # another run got there first
        shutil.rmtree(staging, ignore_errors=True)
    return binary


def test_actionlint_finds_nothing_in_the_workflows():
    binary = actionlint()
    if binary is None:
        pytest.skip("actionlint is not available: no Go toolchain to build it and none on PATH")
    files = sorted(str(p.relative_to(ROOT)) for p in WORKFLOWS.glob("*.y*ml"))
    assert files, "no workflow"
    # shellcheck (on PATH, if installed) checks every `run:` script too.
    result = _run([str(binary), "-no-color", *files], timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout


def release() -> dict:
    return yaml.safe_load(RELEASE.read_text())


def steps(job: dict, action: str) -> list[dict]:
    return [s for s in job["steps"] if s.get("uses", "").split("@")[0] == action]


def chart_values() -> dict:
    return yaml.safe_load((ROOT / "helm/retrain-operator/values.yaml").read_text())


def test_both_images_are_built_from_their_dockerfiles_into_the_charts_repositories():
    workflow = release()
    images = workflow["jobs"]["images"]
    matrix = {entry["dockerfile"]: entry for entry in images["strategy"]["matrix"]["include"]}
    values = chart_values()
    assert {path: entry["repository"] for path, entry in matrix.items()} == {
        "operator/Dockerfile": values["image"]["repository"],
        "trainer_image/Dockerfile": values["trainerImage"]["repository"],
    }
    assert values["image"]["repository"] != values["trainerImage"]["repository"]
    assert {entry["entrypoint"] for entry in matrix.values()} == set(ENTRYPOINTS.values())
    builds = steps(images, "docker/build-push-action")
    assert len(builds) == 2, "one build for the smoke test, one for every platform and the push"
    for build in builds:
        inputs = build["with"]
        assert inputs["file"] == "${{ matrix.dockerfile }}" and inputs["context"] == "."
        assert "PYTHON_IMAGE_DIGEST=${{ needs.base.outputs.digest }}" in inputs["build-args"]
    push = builds[-1]["with"]
    assert push["tags"] == "${{ steps.meta.outputs.tags }}" and "push" in push
    meta = steps(images, "docker/metadata-action")[0]["with"]
    assert meta["images"] == "${{ matrix.repository }}"
    assert "type=semver,pattern={{version}}" in meta["tags"], "the chart's default tag is the bare version"
    # The kustomize base names the same two repositories.
    kustomization = yaml.safe_load((ROOT / "manifests/kustomization.yaml").read_text())
    assert [i["name"] for i in kustomization["images"]] == [values["image"]["repository"]]
    deployment = (ROOT / "manifests/operator/deployment.yaml").read_text()
    assert f"value: {values['trainerImage']['repository']}:" in deployment


def test_the_base_is_resolved_once_to_a_digest_and_is_the_dockerfiles_default():
    workflow = release()
    base = workflow["env"]["PYTHON_IMAGE"]
    for path in DOCKERFILES.values():
        assert re.search(rf"^ARG PYTHON_IMAGE={re.escape(base)}$", path.read_text(), re.MULTILINE), path
    resolve = next(s for s in workflow["jobs"]["base"]["steps"] if s.get("id") == "resolve")
    assert "docker buildx imagetools inspect" in resolve["run"] and "sha256:[0-9a-f]{64}" in resolve["run"]
    assert workflow["jobs"]["base"]["outputs"]["digest"] == "${{ steps.resolve.outputs.digest }}"
    assert set(workflow["jobs"]["images"]["needs"]) == {"wheels", "base"}


def test_the_three_wheels_are_built_with_one_version():
    workflow = release()
    job = workflow["jobs"]["wheels"]
    script = "\n".join(s.get("run", "") for s in job["steps"])
    for directory in ("./contract", ".", "./trainer_image"):
        assert f"python -m build --wheel --outdir dist {directory}\n" in script + "\n"
    assert "release_version.py" in script
    assert steps(job, "actions/upload-artifact")[0]["with"]["path"] == "dist/*.whl"
    assert workflow[True]["push"]["tags"] == ["v*.*.*"]  # YAML 1.1 reads the key `on` as True


def test_the_version_check_passes_here_and_refuses_a_foreign_tag():
    script = ROOT / ".github/scripts/release_version.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    ok = _run([sys.executable, str(script)], timeout=60, env=env)
    assert ok.returncode == 0, ok.stdout
    version = ok.stdout.strip()
    assert version == str(yaml.safe_load((ROOT / "helm/retrain-operator/Chart.yaml").read_text())["appVersion"])
    refused = _run([sys.executable, str(script)], timeout=60,
                   env={**env, "GITHUB_REF_TYPE": "tag", "GITHUB_REF_NAME": "v999.0.0"})
    assert refused.returncode == 1 and f"is not v{version}" in refused.stdout


def stages(dockerfile: Path) -> list[list[str]]:
    """The instructions of each stage (continuation lines joined), the global ARGs first."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    result: list[list[str]] = [[]]
    for line in lines:
        if line.upper().startswith("FROM "):
            result.append([])
        result[-1].append(line)
    return result


@pytest.mark.parametrize("name", list(DOCKERFILES))
def test_the_dockerfiles_are_multi_stage_pinnable_non_root_and_compiler_free(name):
    dockerfile = DOCKERFILES[name]
    global_args, *built = stages(dockerfile)
    assert "ARG PYTHON_IMAGE_DIGEST=" in global_args
    assert len(built) >= 2, "a build stage and the image"
    for stage in built:
        assert stage[0].split()[1] == PINNED_FROM, f"every stage on the pinnable base: {stage[0]}"
    final = built[-1]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", users[-1]), "numeric and non-root (runAsNonRoot)"
    final_text = "\n".join(final)
    assert not re.search(r"apt-get|apk add|build-essential|gcc|g\+\+|clang", final_text), "no compiler installed"
    assert "COPY --from=build /opt/retrain /opt/retrain" in final
    assert f'ENTRYPOINT ["{ENTRYPOINTS[name]}"]' in final
    assert any(line.startswith("HEALTHCHECK ") for line in final)
    # The build stage installs dependencies from binary wheels only: no compiler anywhere.
    assert "--only-binary=:all:" in "\n".join(built[0])
    # Where the probes are is written next to them.
    assert "Probes." in dockerfile.read_text()


def test_the_operators_healthcheck_and_probes_agree():
    final = stages(DOCKERFILES["operator"])[-1]
    healthcheck = next(line for line in final if line.startswith("HEALTHCHECK "))
    command = next(line for line in final if line.startswith("CMD "))
    assert "127.0.0.1:8080/healthz" in healthcheck and "0.0.0.0:8080/healthz" in command
    deployment = yaml.safe_load((ROOT / "manifests/operator/deployment.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"name": "health", "containerPort": 8080} in container["ports"]
