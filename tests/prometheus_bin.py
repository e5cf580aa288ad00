"""Prometheus' own binaries for the tests: `promtool` (the alert rules) and `prometheus` (the dashboard).

They come from Debian's `prometheus` package (`.ci/run` installs it when they are missing; locally:
`apt-get install -y prometheus`), found on PATH. Without them a test skips and says so, unless
RETRAIN_REQUIRE_PROMETHEUS=1 (as `.ci/run` sets it), where a missing binary fails the test: CI must
never pass by skipping them.
"""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRED = "RETRAIN_REQUIRE_PROMETHEUS"


def binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not on PATH: `apt-get install -y prometheus` (Debian) installs it"
    if os.environ.get(REQUIRED) == "1":
        pytest.fail(f"{message}; {REQUIRED}=1 says it must be there")
    pytest.skip(message)
