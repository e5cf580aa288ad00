"""Both images, built without a daemon (tests/images/daemonless.py: buildah, vfs, chroot isolation, on a
debootstrapped Debian bookworm base pinned by its digest), started and measured.

Slow (3-5 minutes: the base once, then both builds download their wheels), so not part of `make test`:
marker `images`, run with `make images`. Skips, saying why, without root, buildah or debootstrap.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.images import daemonless

pytestmark = [pytest.mark.images, pytest.mark.timeout(3600)]

_reason = daemonless.missing_tools()
if _reason:
    pytestmark.append(pytest.mark.skip(reason=f"daemonless image build unavailable: {_reason}"))

ENVIRONMENT = "opt/retrain"
SITE = f"{ENVIRONMENT}/lib/python3.11/site-packages"
COMPILERS = ("cc", "c++", "gcc*", "g++*", "*-gcc*", "*-g++*", "clang*", "tcc", "make")
NEVER_SHIPPED = ("retrain_devcluster", "retrain_sandbox", "retrain_devtools", "faithful_kube", "tests")
# Importable in one image, never in the other (docs/architecture.md).
FOREIGN = {"operator": ("sklearn", "pandas", "pyarrow", "matplotlib", "numpy", "scipy", "retrain_trainer"),
           "trainer": ("kopf", "kubernetes", "retrain_operator")}
# The operator's Python environment stays far under the workload's. Measured: 178 MB vs 684 MB (0.26).
MAX_ENVIRONMENT_RATIO = 0.35


@pytest.fixture(scope="module")
def built() -> Iterator[tuple[daemonless.Buildah, dict[str, daemonless.Built], str, str]]:
    with daemonless.session() as (buildah, base, digest):
        images = {name: buildah.build(name, base, digest) for name in daemonless.IMAGES}
        yield buildah, images, base, digest


@pytest.fixture(scope="module")
def sizes(built) -> dict[str, dict[str, int]]:
    buildah, images, base, _ = built
    measured = {}
    for name, image in images.items():
        with buildah.container(image.reference) as (_, rootfs):
            measured[name] = {"installed": daemonless.installed_bytes(rootfs),
                              "environment": daemonless.installed_bytes(rootfs / ENVIRONMENT),
                              "compressed": buildah.compressed_size(image.reference), "seconds": image.seconds}
    with buildah.container(base) as (_, rootfs):
        measured["base"] = {"installed": daemonless.installed_bytes(rootfs)}
    return measured


@pytest.mark.parametrize("name", list(daemonless.IMAGES))
def test_the_entrypoint_starts_as_the_non_root_user_and_answers_help(built, name):
    buildah, images, _, _ = built
    image = images[name]
    _, program = daemonless.IMAGES[name]
    config = image.config
    assert config["Entrypoint"] == [program]
    assert re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", config["User"]), "numeric, non-root (runAsNonRoot checks it)"
    with buildah.container(image.reference) as (container, _):
        helped = buildah.run_in(container, *config["Entrypoint"], "--help")
        assert helped.returncode == 0, helped.stdout
        assert f"usage: {program}" in helped.stdout
        identity = buildah.run_in(container, "id", "-u")
        assert identity.returncode == 0 and identity.stdout.strip() == config["User"].split(":")[0]
        # The environment is root's: the user cannot change what it runs.
        written = buildah.run_in(container, "touch", f"/{ENVIRONMENT}/bin/x")
        assert written.returncode != 0


@pytest.mark.parametrize("name", list(daemonless.IMAGES))
def test_the_image_holds_no_compiler_no_build_stage_and_nothing_of_the_other_side(built, name):
    buildah, images, _, _ = built
    with buildah.container(images[name].reference) as (_, rootfs):
        compilers = sorted({str(p.relative_to(rootfs)) for directory in ("usr/bin", "usr/local/bin", "bin")
                            for pattern in COMPILERS for p in (rootfs / directory).glob(pattern)})
        assert compilers == []
        assert not (rootfs / "src").exists() and not (rootfs / "wheels").exists()
        site = rootfs / SITE
        installed = {p.name for p in site.iterdir()}
        assert not installed & set(NEVER_SHIPPED)
        assert not installed & set(FOREIGN[name]), f"{name}: {sorted(installed & set(FOREIGN[name]))}"
        assert not list(site.glob("pip")) and not list(site.glob("setuptools")), "no installer left in the image"


def test_probes_are_built_in_where_the_image_has_one_job(built):
    _, images, _, _ = built
    operator, trainer = images["operator"].config, images["trainer"].config
    assert "http://127.0.0.1:8080/healthz" in " ".join(operator["Healthcheck"]["Test"])
    assert "8080/tcp" in operator["ExposedPorts"] and "9090/tcp" in operator["ExposedPorts"]
    # One image for Jobs and model servers: no HEALTHCHECK; the operator gives servers their probes.
    assert trainer.get("Healthcheck", {}).get("Test") in (None, ["NONE"])


def test_both_stand_on_the_digest_pinned_base(built):
    _, images, base, digest = built
    for image in images.values():
        labels = image.config["Labels"]
        assert labels["org.opencontainers.image.base.name"] == base
        assert labels["org.opencontainers.image.base.digest"] == digest


def test_a_base_that_is_not_the_pinned_digest_is_refused(built):
    buildah, _, base, _ = built
    wrong = "sha256:" + "0" * 64
    refused = buildah("bud", "--isolation", "chroot", "--pull=never", "-f", "operator/Dockerfile",
                      "--build-arg", f"PYTHON_IMAGE={base}", "--build-arg", f"PYTHON_IMAGE_DIGEST={wrong}",
                      "-t", "localhost/retrain-operator:wrong-base", ".", check=False, timeout=300)
    assert refused.returncode != 0
    assert wrong in refused.stdout


def test_the_operator_image_is_far_smaller_than_the_workload(sizes, capsys):
    with capsys.disabled():
        print(f"\nbase: {sizes['base']['installed'] / 1e6:.0f} MB installed")
        for name in daemonless.IMAGES:
            size = sizes[name]
            print(f"{name}: {size['installed'] / 1e6:.0f} MB installed ({size['environment'] / 1e6:.0f} MB in "
                  f"/{ENVIRONMENT}), {size['compressed'] / 1e6:.0f} MB compressed, built in {size['seconds']:.0f} s")
    operator, trainer = sizes["operator"], sizes["trainer"]
    assert operator["installed"] < trainer["installed"]
    assert operator["compressed"] < trainer["compressed"]
    assert operator["environment"] < MAX_ENVIRONMENT_RATIO * trainer["environment"]


def test_nothing_is_left_running_or_mounted(built):
    buildah, _, _, _ = built
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _mentions(p, str(buildah.directory))]
    assert str(buildah.directory) not in Path("/proc/self/mountinfo").read_text()


def _mentions(process: Path, text: str) -> bool:
    try:
        return process.name != str(os.getpid()) and text in (process / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
