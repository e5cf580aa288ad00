"""A container, as far as a process can be one: the pod's network, its own mounts, then exec.

The kubelet starts this with a JSON file describing the container. It joins the pod's network
namespace, takes a private mount namespace, bind-mounts the pod's volumes at their mount
paths and the container's termination-message file at its path, makes the root read-only
when `readOnlyRootFilesystem` asks for it, and execs the command. Images are not pulled:
every image is this machine's file system, so the paths the project runs from (its
virtualenv and source) are bound back in if a volume would hide them. If the command cannot
be started, it exits 128 with the reason in the termination message, as a runtime does.

    python -m retrain_devcluster.kubelet.runner SPEC.json
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

from .linux import CLONE_NEWNET, CLONE_NEWNS, MS_BIND, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT, mount, setns, unshare

EXIT_START_ERROR = 128


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _ensure(target: str, is_dir: bool) -> None:
    if os.path.lexists(target):
        return
    if is_dir:
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()


def _bind(fd: int, target: str, read_only: bool) -> None:
    mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
    if read_only:
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def enter(spec: dict) -> None:
    """Everything but the exec: network, mounts, working directory."""
    net = os.open(spec["netns"], os.O_RDONLY)
    setns(net, CLONE_NEWNET)
    unshare(CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here leaks back to the node
    mounts = list(spec.get("mounts") or [])
    # Open every source before mounting anything: a mount may hide a later source's path.
    sources = [os.open(m["source"], os.O_PATH) for m in mounts]
    image = [p for p in spec.get("imagePaths") or [] if any(_under(p, m["target"]) for m in mounts)]
    image_fds = [os.open(p, os.O_PATH) for p in image]
    termination = spec.get("terminationLog")
    termination_fd = os.open(termination["source"], os.O_PATH) if termination else None
    for mounted, fd in zip(mounts, sources, strict=True):
        # By the fd: an earlier mount (an emptyDir at /tmp) may hide the source's path by now.
        _ensure(mounted["target"], stat.S_ISDIR(os.fstat(fd).st_mode))
        _bind(fd, mounted["target"], bool(mounted.get("readOnly")))
    for path, fd in zip(image, image_fds, strict=True):
        _ensure(path, True)
        _bind(fd, path, True)
    if termination and termination_fd is not None:
        try:
            _ensure(termination["target"], False)
            _bind(termination_fd, termination["target"], False)
        except OSError as error:  # a path the node cannot offer: the message falls back to the log
            print(f"runner: no termination message file at {termination['target']}: {error}", file=sys.stderr)
    if spec.get("readOnlyRoot"):
        mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    os.chdir(spec.get("workingDir") or "/")


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    command = list(spec["command"])
    try:
        enter(spec)
        os.execvpe(command[0], command, spec["env"])
    except OSError as error:
        message = f"failed to start container: exec: {command[0]!r}: {error.strerror or error}"
        print(message, file=sys.stderr, flush=True)
        termination = spec.get("terminationLog")
        if termination:
            Path(termination["source"]).write_text(message)
        return EXIT_START_ERROR
    return EXIT_START_ERROR  # not reached: exec replaced this process


if __name__ == "__main__":
    raise SystemExit(main())
