"""Child processes that die with whoever started them.

Every process the dev cluster starts (etcd, the API server, the controllers, the kubelet, pods)
gets its own process group, so it can be stopped with everything it spawned, and
PR_SET_PDEATHSIG, so the kernel kills it when its parent dies, even by SIGKILL. A killed
test run therefore leaves nothing running. PDEATHSIG fires when the *thread* that forked
exits, so long-lived children must be started from a thread that lives as long as they do.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent exits (call in the child)."""
    if _libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def _child_setup(parent: int, extra: Callable[[], None] | None) -> Callable[[], None]:
    def setup() -> None:
        die_with_parent()
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)
        if extra is not None:
            extra()
    return setup


def spawn(command: Sequence[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None,
          preexec: Callable[[], None] | None = None) -> subprocess.Popen[bytes]:
    """Start `command` in a new session, output appended to `log`, killed if this process dies."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd, start_new_session=True,
                                preexec_fn=_child_setup(os.getpid(), preexec))


def run(command: Sequence[str], timeout: float, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `command` to its end, output (stderr too) captured as text; killed if this process dies, and
    its whole process group killed on a timeout (or any interruption) before that is raised."""
    process = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, text=True, env=env, cwd=cwd, start_new_session=True,
                               preexec_fn=_child_setup(os.getpid(), None))
    try:
        output, _ = process.communicate(timeout=timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    return subprocess.CompletedProcess(list(command), process.returncode, output, "")


def stop(process: subprocess.Popen[bytes] | None, grace: float = 10.0) -> int | None:
    """SIGTERM the process group, SIGKILL it after `grace` seconds; the exit code."""
    if process is None:
        return None
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    # Whatever is left in the group (children of the child) goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    return process.wait()


def wait_until(probe: Callable[[], bool], timeout: float, what: str, process: subprocess.Popen[bytes] | None = None,
               log: Path | None = None, interval: float = 0.2) -> None:
    """Poll `probe` until true; fail early if `process` exits, with the tail of its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if probe():
                return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {process.returncode}\n{tail(log)}")
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}\n{tail(log)}")


def tail(log: Path | None, lines: int = 30) -> str:
    if log is None:
        return ""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {log})"


def mentioning(text: str) -> list[str]:
    """Every running process whose command line contains `text` (to check that nothing was left behind)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command:
            found.append(f"{entry.name}: {command}")
    return found
