"""Use an accelerator only when one is there; say which in the manifest."""

from __future__ import annotations

import os
import shutil
import subprocess


def detect() -> str:
    """'cuda' when an NVIDIA GPU is visible to this container, else 'none'."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "") in {"-1", "none"}:
        return "none"
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "none"
    try:
        result = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "none"
    return "cuda" if result.returncode == 0 and "GPU" in result.stdout else "none"
