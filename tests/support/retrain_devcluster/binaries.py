"""Build the control plane from the published Go modules, once, into a cache keyed by version.

No registry ships kube-apiserver, kube-controller-manager, kube-scheduler or a current etcd,
so they are built with `go build` from the pinned modules in ./go (each a small module of
ours that requires the upstream one). The third-party CRDs (Gateway API, Istio) come from
their published Go modules the same way. A second run finds everything in the cache and
checks it against the recorded sha256 sums.

    python -m retrain_devcluster.binaries        # build or reuse; prints the paths and sums
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

KUBERNETES = "v1.37.2"
ETCD = "v3.6.16"
GATEWAY_API = "v1.6.3"
ISTIO_API = "v1.32.0"

GO_DIR = Path(__file__).resolve().parent / "go"
KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
SUMS = "SHA256SUMS"


@dataclass(frozen=True)
class Binaries:
    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def etcd(self) -> Path:
        return self.path("etcd")

    @property
    def apiserver(self) -> Path:
        return self.path("kube-apiserver")

    @property
    def controller_manager(self) -> Path:
        return self.path("kube-controller-manager")

    @property
    def scheduler(self) -> Path:
        return self.path("kube-scheduler")


def cache_root() -> Path:
    override = os.environ.get("RETRAIN_DEVCLUSTER_CACHE")
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "retrain-devcluster"


def _version_flags() -> str:
    """What a release build stamps in, so the server reports its version (kubectl version parses it)."""
    values = {"gitVersion": KUBERNETES, "gitMajor": KUBERNETES.lstrip("v").split(".")[0],
              "gitMinor": KUBERNETES.split(".")[1], "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z"}
    return " ".join(f"-X {package}.{name}={value}" for package in ("k8s.io/component-base/version",
                                                                   "k8s.io/client-go/pkg/version")
                    for name, value in values.items())


def _key() -> str:
    """The pins, the link flags and the exact module files: a changed go.sum is a different build."""
    digest = hashlib.sha256(_version_flags().encode())
    for path in sorted(GO_DIR.rglob("*")):
        if path.is_file() and path.suffix in {".mod", ".sum", ".go"}:
            digest.update(path.relative_to(GO_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return f"kubernetes-{KUBERNETES}-etcd-{ETCD}-{digest.hexdigest()[:12]}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _go_env() -> dict[str, str]:
    return {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"}


def _go(args: list[str], cwd: Path, what: str, say) -> None:
    """Run a go command, printing a progress line every 20 s (a cold build takes minutes)."""
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("the Go toolchain is needed to build the control plane (go 1.26 or newer on PATH)")
    started = time.monotonic()
    done = threading.Event()

    def progress() -> None:
        while not done.wait(20):
            say(f"   ... still building {what} ({time.monotonic() - started:.0f} s)")

    ticker = threading.Thread(target=progress, daemon=True)
    ticker.start()
    try:
        result = subprocess.run([go, *args], cwd=cwd, env=_go_env(), capture_output=True, text=True)
    finally:
        done.set()
    if result.returncode != 0:
        raise RuntimeError(f"go {' '.join(args)} failed in {cwd}:\n{result.stderr[-4000:]}")
    say(f"   built {what} in {time.monotonic() - started:.0f} s")


def module_dir(module: str, version: str) -> Path:
    """Where the Go module cache holds `module@version` (downloaded if needed)."""
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("the Go toolchain is needed to fetch the CRDs (go 1.26 or newer on PATH)")
    result = subprocess.run([go, "mod", "download", "-json", f"{module}@{version}"], cwd=GO_DIR,
                            capture_output=True, text=True, env=_go_env())
    if result.returncode != 0:
        raise RuntimeError(f"go mod download {module}@{version} failed:\n{result.stderr[-2000:]}")
    return Path(json.loads(result.stdout)["Dir"])


def _verified(directory: Path) -> bool:
    sums = directory / SUMS
    if not sums.exists():
        return False
    for line in sums.read_text().splitlines():
        digest, name = line.split()
        path = directory / name
        if not path.exists() or _sha256(path) != digest:
            return False
    return True


def ensure(say=print) -> Binaries:
    """The cached binaries, built first if missing or if a recorded sum no longer matches."""
    directory = cache_root() / _key()
    if _verified(directory):
        return Binaries(directory)
    say(f"building the control plane (Kubernetes {KUBERNETES}, etcd {ETCD}) into {directory}")
    say("   a cold build takes 10-20 minutes on 2 cores and needs ~3 GB for Go's caches; later runs reuse it")
    staging = directory.with_name(directory.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    build = ["build", "-trimpath", "-ldflags", f"-s -w {_version_flags()}", "-o", str(staging) + "/"]
    _go([*build, *(f"k8s.io/kubernetes/cmd/{command}" for command in KUBE_COMMANDS)], GO_DIR / "kubernetes",
        "kube-apiserver, kube-controller-manager and kube-scheduler", say)
    _go(["build", "-trimpath", "-ldflags", "-s -w", "-o", str(staging / "etcd"), "."], GO_DIR / "etcd", "etcd", say)
    names = sorted(p.name for p in staging.iterdir() if p.is_file())
    (staging / SUMS).write_text("".join(f"{_sha256(staging / name)}  {name}\n" for name in names))
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)  # only a complete build is ever found under the key
    return Binaries(directory)


def main() -> int:
    started = time.monotonic()
    binaries = ensure()
    print(f"control plane binaries in {binaries.directory} ({time.monotonic() - started:.1f} s)")
    sys.stdout.write((binaries.directory / SUMS).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
