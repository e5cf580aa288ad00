"""The README's first command, end to end: `retrain-sandbox --bad-canary` as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from retrain_devcluster import processes

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


@pytest.mark.timeout(480)
def test_the_sandbox_plays_drift_retraining_canary_and_rollback_and_stops_everything(tmp_path: Path):
    workdir = tmp_path / "sandbox"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KUBECONFIG"))}
    result = subprocess.run([str(BIN / "retrain-sandbox"), "--bad-canary", "--workdir", str(workdir)],
                            capture_output=True, text=True, timeout=450, env=env)
    output = result.stdout
    print(output)
    assert result.returncode == 0, output[-4000:] + result.stderr[-4000:]
    assert output.rstrip().endswith("done.")
    assert "DriftDetected: drift check" in output and "v2 started by drift" in output
    assert "canary v2 at 20%" in output and "canary v2 at 50%" in output  # the live view saw the weights
    assert "ModelPromoted: v2 serves all traffic" in output
    assert "AnalysisFailed: v3: rolled back" in output and "live-accuracy-drop" in output
    summary = output[output.index("7. summary"):]
    rows = {line.split()[0]: line for line in summary.splitlines()[1:5] if line.strip().startswith("v")}
    assert rows["v1"].rstrip().endswith("replaced")
    assert " drift " in rows["v2"] and rows["v2"].rstrip().endswith("serving")
    assert rows["v3"].rstrip().endswith("rejected: AnalysisFailed")
    reports = list(workdir.glob("drift-report-d*.html"))
    assert len(reports) == 1 and reports[0].read_text().lstrip().startswith("<!doctype html>")
    assert f"drift report of {reports[0].stem.removeprefix('drift-report-')}: {reports[0]}" in output
    assert processes.mentioning(str(workdir)) == []  # SeaweedFS, model servers, Jobs: all stopped


@pytest.mark.timeout(480)
def test_the_sandbox_with_xgboost_continues_boosting_from_the_parent_and_promotes_it(tmp_path: Path):
    """Issue 17's story: XGBClassifier trains, drift retrains it incrementally from v1, the canary promotes v2."""
    workdir = tmp_path / "sandbox"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KUBECONFIG"))}
    result = subprocess.run([str(BIN / "retrain-sandbox"), "--estimator", "XGBClassifier", "--workdir", str(workdir)],
                            capture_output=True, text=True, timeout=450, env=env)
    output = result.stdout
    print(output)
    assert result.returncode == 0, output[-4000:] + result.stderr[-4000:]
    assert "(XGBClassifier, incremental strategy," in output and output.rstrip().endswith("done.")
    assert "DriftDetected: drift check" in output and "v2 started by drift" in output
    assert "canary v2 at 50%" in output and "ModelPromoted: v2 serves all traffic" in output
    summary = output[output.index("7. summary"):]
    rows = {line.split()[0]: line.split() for line in summary.splitlines()[1:4] if line.strip().startswith("v")}
    assert rows["v2"][2] == "v1" and rows["v2"][-1] == "serving"  # PARENT v1
    # v2's manifest: 40 trees of v1's and 40 new ones, on the CPU here, and a verified ONNX twin
    assert "v2: XGBClassifier, strategy incremental, continued from v1 (80 trees in all), trained on cpu; " \
           "model.onnx verified on " in summary
    assert processes.mentioning(str(workdir)) == []


def test_a_terminated_sandbox_still_stops_everything_it_started(tmp_path: Path):
    """SIGTERM (a closed terminal, `timeout`, a CI runner) cleans up as Ctrl-C does."""
    workdir = tmp_path / "sandbox"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KUBECONFIG"))}
    process = subprocess.Popen([str(BIN / "retrain-sandbox"), "--workdir", str(workdir)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("3. applying"):  # SeaweedFS, API server and the operator are running by now
            break
    assert processes.mentioning(str(workdir)), "nothing was started"
    process.terminate()
    assert process.wait(timeout=60) == 128 + 15
    assert processes.mentioning(str(workdir)) == []
