"""`retrain-trainer compare` on two local files: no cluster, no S3."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from retrain_sandbox import dataset

CLI = str(Path(sys.executable).parent / "retrain-trainer")


def write(tmp_path: Path) -> tuple[Path, Path]:
    reference = dataset.churn_table(20000, 1).drop_columns([dataset.TIMESTAMP])
    current = dataset.churn_table(20000, 2).drop_columns([dataset.TIMESTAMP])
    index = current.schema.get_field_index("monthly_spend")
    current = current.set_column(index, "monthly_spend", pa.array(current["monthly_spend"].to_numpy() * 1.5))
    pq.write_table(reference, tmp_path / "reference.parquet")
    pacsv.write_csv(current, tmp_path / "current.csv")
    return tmp_path / "reference.parquet", tmp_path / "current.csv"


def test_the_drift_command_writes_a_result_and_a_self_contained_report(tmp_path: Path):
    reference, current = write(tmp_path)
    result = subprocess.run([CLI, "compare", "--reference", str(reference), "--current", str(current),
                             "--report", str(tmp_path / "report.html"), "--json", str(tmp_path / "drift.json"),
                             "--save-profile", str(tmp_path / "profile.json"), "--key-feature", "monthly_spend"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr  # 1: dataset drift, so that scripts can gate on it
    assert result.stdout.startswith("DATASET DRIFT: 1 of 6 features drifted: monthly_spend")
    document = json.loads((tmp_path / "drift.json").read_text())
    assert document["driftedFeatures"] == ["monthly_spend"] and document["drift"] is True
    page = (tmp_path / "report.html").read_text()
    assert len(re.findall(r"src='data:image/png;base64,", page)) == 6
    assert not re.search(r"(src|href)=['\"]https?://", page)  # nothing loaded from the network

    again = subprocess.run([CLI, "compare", "--reference", str(tmp_path / "profile.json"), "--current", str(current),
                            "--json", str(tmp_path / "again.json"), "--key-feature", "monthly_spend"],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 1
    assert json.loads((tmp_path / "again.json").read_text())["features"] == document["features"]


def test_the_same_distribution_is_no_drift_and_exits_0(tmp_path: Path):
    reference, _ = write(tmp_path)
    other = tmp_path / "other.parquet"
    pq.write_table(dataset.churn_table(20000, 3).drop_columns([dataset.TIMESTAMP]), other)
    result = subprocess.run([CLI, "compare", "--reference", str(reference), "--current", str(other), "--quiet"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("no dataset drift: 0 of 6 features drifted")


def test_a_missing_file_is_a_clear_error(tmp_path: Path):
    result = subprocess.run([CLI, "compare", "--reference", str(tmp_path / "nope.parquet"), "--current",
                             str(tmp_path / "nope.csv")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3 and "does not exist" in result.stderr
