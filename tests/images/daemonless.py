"""Build the two images without a daemon or a registry: buildah (vfs storage, chroot isolation) on a
local stand-in for the base image.

python:3.11-slim-bookworm cannot be pulled here, so the base is Debian bookworm made with
debootstrap (bookworm's own python3.11, venv and `python` on PATH, trimmed of apt lists, docs, man
pages and locales like the slim images), cached as a tarball under
~/.cache/retrain-images/ and committed into a fresh buildah storage per run. Both Dockerfiles are
built from the repository root exactly as the release does, pinned to that base's digest.

Every command runs in a PID namespace of its own whose init dies with the test process
(PR_SET_PDEATHSIG), so a killed test run leaves no build or pip behind; the storage is deleted
afterwards (and a dead run's at the next start).

    python -m tests.images.daemonless        # build both, print their sizes (what the README states)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from retrain_devcluster import processes

ROOT = Path(__file__).resolve().parents[2]
SUITE = "bookworm"
MIRROR = os.environ.get("RETRAIN_IMAGES_MIRROR", "http://deb.debian.org/debian")
# What python:3.11-slim-bookworm offers the Dockerfiles: python3.11 with venv/ensurepip, `python`,
# CA certificates, netbase, tzdata; useradd/groupadd come with every Debian base.
PACKAGES = ("python3.11", "python3.11-venv", "python3-distutils", "python-is-python3", "ca-certificates",
            "netbase", "tzdata")
TRIM = ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*", "usr/share/doc/*",
        "usr/share/man/*", "usr/share/info/*", "debootstrap")
BASE_NAME = "localhost/retrain-base:python3.11-bookworm"
IMAGES = {"operator": ("operator/Dockerfile", "retrain-operator"),
          "trainer": ("trainer_image/Dockerfile", "retrain-trainer")}


def cache_root() -> Path:
    override = os.environ.get("RETRAIN_IMAGES_CACHE")
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "retrain-images"


def missing_tools() -> str | None:
    """Why these builds cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (buildah's chroot isolation and debootstrap)"
    absent = [tool for tool in ("buildah", "debootstrap", "unshare", "tar") if shutil.which(tool) is None]
    if absent:
        return f"{', '.join(absent)} not installed (Debian: apt-get install buildah debootstrap)"
    return None


def run(command: Sequence[str], timeout: float, env: dict[str, str] | None = None,
        cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `command` as the init of new PID and mount namespaces: when this process dies, unshare gets
    SIGKILL (PDEATHSIG), its forked child (the namespace's init) too (--kill-child), and with it
    every process in the namespace; mounts made inside (debootstrap's /proc) go with the namespace.
    A timeout kills the whole namespace the same way."""
    wrapped = ["unshare", "--pid", "--mount", "--fork", "--kill-child=SIGKILL", *command]
    done = processes.run(wrapped, timeout, env=env, cwd=cwd)
    result = subprocess.CompletedProcess(list(command), done.returncode, done.stdout, "")
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {result.returncode}:\n{result.stdout[-6000:]}")
    return result


def _base_key() -> str:
    recipe = json.dumps([SUITE, MIRROR, PACKAGES, TRIM]).encode()
    return f"{SUITE}-python3.11-{hashlib.sha256(recipe).hexdigest()[:12]}"


def base_tarball(say=print) -> Path:
    """The debootstrapped root as a tarball, made once (about a minute) and cached."""
    tarball = cache_root() / f"base-{_base_key()}.tar"
    if tarball.exists():
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    remove_dead(tarball.parent, "debootstrap-")
    started = time.monotonic()
    say(f"debootstrap {SUITE} ({', '.join(PACKAGES)}) from {MIRROR} into {tarball}")
    with tempfile.TemporaryDirectory(dir=tarball.parent, prefix=f"debootstrap-{os.getpid()}-") as scratch:
        rootfs = Path(scratch) / "rootfs"
        run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(rootfs), MIRROR],
            timeout=1200)
        for pattern in TRIM:
            for path in rootfs.glob(pattern):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        locales = rootfs / "usr/share/locale"
        for path in locales.iterdir() if locales.exists() else ():
            if path.name != "locale.alias":
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        partial = tarball.with_suffix(".partial")
        run(["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(partial), "."], timeout=600)
        partial.rename(tarball)
    say(f"   base root made in {time.monotonic() - started:.0f} s")
    return tarball


@dataclass(frozen=True)
class Built:
    name: str
    reference: str
    config: dict          # the image's Docker config (User, Entrypoint, Healthcheck, Labels, ...)
    seconds: float


class Buildah:
    """One private buildah storage (vfs) and its commands."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        (directory / "tmp").mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "TMPDIR": str(directory / "tmp")}
        self.base = ["buildah", "--storage-driver", "vfs", "--root", str(directory / "storage"),
                     "--runroot", str(directory / "run")]

    def __call__(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([*self.base, *args], timeout=timeout, env=self.env, cwd=ROOT, check=check)

    def commit_base(self, tarball: Path) -> str:
        """The debootstrapped root as BASE_NAME; returns its manifest digest."""
        container = self("from", "scratch").stdout.strip().splitlines()[-1]
        mountpoint = Path(self("mount", container).stdout.strip().splitlines()[-1])
        run(["tar", "--numeric-owner", "--xattrs", "-C", str(mountpoint), "-xpf", str(tarball)], timeout=600)
        # The base trusts what this machine trusts: TLS here may pass a proxy with a CA of its own
        # (python:3.11-slim trusts Debian's bundle, enough where nothing is in the way).
        shutil.copyfile("/etc/ssl/certs/ca-certificates.crt", mountpoint / "etc/ssl/certs/ca-certificates.crt")
        self("config", "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "--env", "LANG=C.UTF-8", "--cmd", "python3", container)
        self("umount", container)
        self("commit", "--quiet", "--rm", container, BASE_NAME)
        return self.digest(BASE_NAME)

    def digest(self, reference: str) -> str:
        return self("images", "--digests", "--format", "{{.Digest}}", reference).stdout.strip().splitlines()[-1]

    def build(self, name: str, base: str, base_digest: str) -> Built:
        dockerfile, _ = IMAGES[name]
        reference = f"localhost/retrain-{name}:test"
        started = time.monotonic()
        # --format docker keeps HEALTHCHECK (the OCI image config has no field for it).
        self("bud", "--isolation", "chroot", "--format", "docker", "--pull=never", "-f", dockerfile,
             "--build-arg", f"PYTHON_IMAGE={base}", "--build-arg", f"PYTHON_IMAGE_DIGEST={base_digest}",
             "-t", reference, ".", timeout=1800)
        seconds = time.monotonic() - started
        inspected = json.loads(self("inspect", "--type", "image", reference).stdout)
        return Built(name, reference, inspected["Docker"]["config"], seconds)

    @contextlib.contextmanager
    def container(self, reference: str) -> Iterator[tuple[str, Path]]:
        """A working container of `reference` and its root filesystem (vfs: a plain directory)."""
        container = self("from", "--pull=never", reference).stdout.strip().splitlines()[-1]
        try:
            yield container, Path(self("mount", container).stdout.strip().splitlines()[-1])
        finally:
            self("rm", container, check=False)

    def run_in(self, container: str, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`command` inside the container as its image's USER (chroot isolation)."""
        return self("run", "--isolation", "chroot", container, "--", *command, timeout=timeout, check=False)

    def compressed_size(self, reference: str) -> int:
        """Bytes of the image's gzip layers in an OCI layout: about what a pull transfers."""
        layout = self.directory / "oci" / reference.rsplit("/", 1)[-1].replace(":", "-")
        layout.mkdir(parents=True)
        self("push", "--quiet", "--format", "oci", reference, f"oci:{layout}:latest", timeout=900)
        index = json.loads((layout / "index.json").read_text())
        manifest = json.loads((layout / "blobs" / Path(*index["manifests"][0]["digest"].split(":"))).read_text())
        return sum(layer["size"] for layer in manifest["layers"])


def installed_bytes(path: Path) -> int:
    """Apparent size of the regular files under `path`, each inode once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                status = os.lstat(os.path.join(directory, name))
                if (status.st_mode & 0o170000) == 0o100000 and (status.st_dev, status.st_ino) not in seen:
                    seen.add((status.st_dev, status.st_ino))
                    total += status.st_size
    return total


def remove_dead(parent: Path, prefix: str) -> None:
    """What a killed run left (`<prefix><pid>-...`, its pid no longer alive)."""
    for path in parent.glob(f"{prefix}*") if parent.exists() else ():
        pid = path.name[len(prefix):].split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def session(say=print) -> Iterator[tuple[Buildah, str, str]]:
    """A fresh buildah storage with the base committed: (buildah, base reference, base digest)."""
    parent = cache_root() / "runs"
    remove_dead(parent, "run-")
    parent.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(dir=parent, prefix=f"run-{os.getpid()}-"))
    try:
        buildah = Buildah(directory)
        digest = buildah.commit_base(base_tarball(say))
        yield buildah, BASE_NAME, digest
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> int:
    reason = missing_tools()
    if reason:
        print(f"cannot build the images here: {reason}")
        return 1
    with session() as (buildah, base, digest):
        rows = []
        for name in IMAGES:
            built = buildah.build(name, base, digest)
            with buildah.container(built.reference) as (_, rootfs):
                rows.append((name, installed_bytes(rootfs), installed_bytes(rootfs / "opt/retrain"),
                             buildah.compressed_size(built.reference), built.seconds))
        with buildah.container(base) as (_, rootfs):
            base_bytes = installed_bytes(rootfs)
    print(f"base {base}@{digest}: {base_bytes / 1e6:.0f} MB installed")
    for name, total, environment, compressed, seconds in rows:
        print(f"{name}: {total / 1e6:.0f} MB installed ({environment / 1e6:.0f} MB /opt/retrain), "
              f"{compressed / 1e6:.0f} MB compressed layers, built in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
