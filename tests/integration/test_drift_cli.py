"""`retrain-trainer compare` on two local files: no cluster, no S3; one exit status per outcome."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from retrain_sandbox import dataset

# The module, not the console script: the interpreter's sys.path decides which code runs.
CLI = [sys.executable, "-m", "retrain_trainer.cli"]
NO_DRIFT, DRIFT, BAD_INPUT, DATA_ERROR, INSUFFICIENT_DATA = 0, 1, 2, 3, 6


def compare(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "compare", *map(str, args)], capture_output=True, text=True, timeout=120)


def table(rows: int, seed: int) -> pa.Table:
    return dataset.churn_table(rows, seed).drop_columns([dataset.TIMESTAMP])


def write(tmp_path: Path) -> tuple[Path, Path]:
    reference = table(20000, 1)
    current = table(20000, 2)
    index = current.schema.get_field_index("monthly_spend")
    current = current.set_column(index, "monthly_spend", pa.array(current["monthly_spend"].to_numpy() * 1.5))
    pq.write_table(reference, tmp_path / "reference.parquet")
    pacsv.write_csv(current, tmp_path / "current.csv")
    return tmp_path / "reference.parquet", tmp_path / "current.csv"


@pytest.fixture()
def reference(tmp_path: Path) -> Path:
    pq.write_table(table(5000, 1), tmp_path / "reference.parquet")
    return tmp_path / "reference.parquet"


def csv(tmp_path: Path, name: str, data: pa.Table) -> Path:
    pacsv.write_csv(data, tmp_path / name)
    return tmp_path / name


def test_the_drift_command_writes_a_result_and_a_self_contained_report(tmp_path: Path):
    reference, current = write(tmp_path)
    result = compare("--reference", reference, "--current", current, "--report", tmp_path / "report.html",
                     "--json", tmp_path / "drift.json", "--save-profile", tmp_path / "profile.json",
                     "--key-feature", "monthly_spend", "--target", dataset.TARGET)
    assert result.returncode == DRIFT, result.stderr  # 1: dataset drift, so that scripts can gate on it
    assert result.stdout.startswith("DATASET DRIFT: 1 of 5 features drifted: monthly_spend")  # the label is none
    document = json.loads((tmp_path / "drift.json").read_text())
    assert document["driftedFeatures"] == ["monthly_spend"] and document["drift"] is True
    assert document["verdict"] == "drift" and document["target"] == dataset.TARGET
    page = (tmp_path / "report.html").read_text()
    assert len(re.findall(r"src='data:image/png;base64,", page)) == 5
    assert not re.search(r"(src|href)=['\"]https?://", page)  # nothing loaded from the network

    # The saved profile remembers the target: no --target needed the second time.
    again = compare("--reference", tmp_path / "profile.json", "--current", current,
                    "--json", tmp_path / "again.json", "--key-feature", "monthly_spend")
    assert again.returncode == DRIFT, again.stderr
    assert json.loads((tmp_path / "again.json").read_text())["features"] == document["features"]


def test_the_same_distribution_is_no_drift_and_exits_0(tmp_path: Path):
    reference, _ = write(tmp_path)
    other = tmp_path / "other.parquet"
    pq.write_table(table(20000, 3), other)
    result = compare("--reference", reference, "--current", other, "--quiet", "--target", dataset.TARGET,
                     "--json", tmp_path / "drift.json")
    assert result.returncode == NO_DRIFT, result.stdout + result.stderr
    assert result.stdout.startswith("no dataset drift: 0 of 5 features drifted")
    assert json.loads((tmp_path / "drift.json").read_text())["verdict"] == "no-drift"


def test_a_missing_file_is_a_clear_error(tmp_path: Path):
    result = compare("--reference", tmp_path / "nope.parquet", "--current", tmp_path / "nope.csv")
    assert result.returncode == DATA_ERROR and "does not exist" in result.stderr


@pytest.mark.parametrize("rows", [0, 3, 150])
def test_a_few_rows_are_insufficient_data_never_drift_nor_no_drift(tmp_path: Path, reference: Path, rows: int):
    few = table(max(rows, 1), 2).slice(0, rows)  # 0: a CSV with only its header
    few = few.set_column(few.schema.get_field_index("monthly_spend"), "monthly_spend",
                         pa.array(few["monthly_spend"].to_numpy() * 3, pa.float64()))  # far off, but few
    result = compare("--reference", reference, "--current", csv(tmp_path, "few.csv", few),
                     "--json", tmp_path / "drift.json", "--report", tmp_path / "report.html")
    assert result.returncode == INSUFFICIENT_DATA, result.stdout + result.stderr
    assert result.stdout.startswith(f"INSUFFICIENT DATA: {rows} current rows, at least 200 needed")
    document = json.loads((tmp_path / "drift.json").read_text())
    assert document["verdict"] == "insufficient-data" and document["drift"] is False
    assert document["datasetDrift"] is False and document["driftedFeatures"] == []
    assert "Insufficient data" in (tmp_path / "report.html").read_text()


def test_the_minimum_is_a_flag(tmp_path: Path, reference: Path):
    current = csv(tmp_path, "current.csv", table(300, 2))
    assert compare("--reference", reference, "--current", current, "--min-rows", "500").returncode == \
        INSUFFICIENT_DATA
    assert compare("--reference", reference, "--current", current, "--min-rows", "100",
                   "--target", dataset.TARGET).returncode == NO_DRIFT
    bad = compare("--reference", reference, "--current", current, "--min-rows", "0")
    assert bad.returncode == BAD_INPUT and "--min-rows" in bad.stderr


def test_a_column_gone_mostly_null_is_drift_however_few_its_values(tmp_path: Path, reference: Path):
    current = table(1000, 2)
    index = current.schema.get_field_index("support_calls")
    sparse = pa.array([v if i % 10 == 0 else None for i, v in enumerate(current["support_calls"].to_pylist())])
    current = current.set_column(index, "support_calls", sparse)  # 100 values, fewer than the minimum
    result = compare("--reference", reference, "--current", csv(tmp_path, "c.csv", current), "--json",
                     tmp_path / "drift.json", "--target", dataset.TARGET, "--key-feature", "support_calls")
    assert result.returncode == DRIFT, result.stdout + result.stderr
    document = json.loads((tmp_path / "drift.json").read_text())
    # Its null share rose from 0 to 0.9, judged on all of its 1,000 rows: not "insufficient".
    assert document["features"]["support_calls"]["drifted"] and document["insufficientFeatures"] == []


def test_missing_and_renamed_columns_are_data_errors_naming_them(tmp_path: Path, reference: Path):
    missing = compare("--reference", reference, "--current",
                      csv(tmp_path, "missing.csv", table(1000, 2).drop_columns(["plan", "region"])))
    assert missing.returncode == DATA_ERROR, missing.stdout + missing.stderr
    assert "column(s) plan, region missing from the current data" in missing.stderr
    renamed = compare("--reference", reference, "--current",
                      csv(tmp_path, "renamed.csv", table(1000, 2).rename_columns(
                          ["tenure_months", "spend", "support_calls", "plan", "region", dataset.TARGET])))
    assert renamed.returncode == DATA_ERROR
    assert "column(s) monthly_spend missing" in renamed.stderr and "it has spend" in renamed.stderr
    header_only = compare("--reference", reference, "--current",
                          csv(tmp_path, "header.csv", table(1, 2).drop_columns(["plan"]).slice(0, 0)))
    assert header_only.returncode == DATA_ERROR and "plan" in header_only.stderr  # not "insufficient data"


def test_an_extra_column_is_reported_not_refused(tmp_path: Path, reference: Path):
    current = table(1000, 2)
    current = current.append_column("coupon", pa.array(["c"] * 1000))
    result = compare("--reference", reference, "--current", csv(tmp_path, "extra.csv", current),
                     "--target", dataset.TARGET, "--json", tmp_path / "drift.json")
    assert result.returncode == NO_DRIFT, result.stdout + result.stderr
    assert "not in the reference, not checked: coupon" in result.stdout
    assert json.loads((tmp_path / "drift.json").read_text())["extraColumns"] == ["coupon"]


def test_text_in_a_numeric_column_is_named_all_of_it_an_error_some_of_it_counted(tmp_path: Path, reference: Path):
    current = table(1000, 2)
    index = current.schema.get_field_index("monthly_spend")
    words = current.set_column(index, "monthly_spend", pa.array(["unknown"] * 1000))
    result = compare("--reference", reference, "--current", csv(tmp_path, "words.csv", words))
    assert result.returncode == DATA_ERROR, result.stdout + result.stderr
    assert "monthly_spend (1000 of 1000 values)" in result.stderr and "is a number" in result.stderr

    spend = [str(v) for v in current["monthly_spend"].to_pylist()]
    spend[:7] = ["oops"] * 7
    partly = current.set_column(index, "monthly_spend", pa.array(spend))
    result = compare("--reference", reference, "--current", csv(tmp_path, "partly.csv", partly),
                     "--target", dataset.TARGET, "--json", tmp_path / "drift.json")
    assert result.returncode == NO_DRIFT, result.stdout + result.stderr
    assert "monthly_spend: 7 of 1000 values are not numbers" in result.stdout
    assert json.loads((tmp_path / "drift.json").read_text())["nonNumericValues"] == {"monthly_spend": 7}


@pytest.mark.parametrize("args, message", [
    (["--columns", "nosuch"], "--columns: nosuch not in the reference"),
    (["--key-feature", "nosuch"], "--key-feature: nosuch not among the checked features"),
    (["--target", "nosuch"], "--target nosuch: not a column"),
    (["--columns", "plan", dataset.TARGET, "--target", dataset.TARGET], "is the target"),
    (["--no-such-flag"], "unrecognized arguments"),
])
def test_names_the_reference_does_not_have_are_bad_input_without_a_traceback(tmp_path: Path, reference: Path,
                                                                            args: list[str], message: str):
    result = compare("--reference", reference, "--current", csv(tmp_path, "c.csv", table(300, 2)), *args)
    assert result.returncode == BAD_INPUT, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("text, message", [
    ("{not json", "not JSON"),
    ('{"profileVersion": 1, "rows": 10}', "the profile has no features"),
    ('{"features": {"x": {"kind": "numeric", "count": 3}}}', "'x' has no nulls"),
])
def test_a_profile_that_is_not_one_is_bad_input(tmp_path: Path, text: str, message: str):
    (tmp_path / "profile.json").write_text(text)
    result = compare("--reference", tmp_path / "profile.json", "--current", csv(tmp_path, "c.csv", table(300, 2)))
    assert result.returncode == BAD_INPUT, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_the_target_is_read_from_the_manifest_beside_an_older_profile(tmp_path: Path, reference: Path):
    assert compare("--reference", reference, "--current", reference, "--save-profile",
                   tmp_path / "profile.json").returncode == NO_DRIFT
    profile = json.loads((tmp_path / "profile.json").read_text())
    del profile["target"]  # as trainers before issue 16 wrote it, with the label among the features
    model = tmp_path / "model"
    model.mkdir()
    (model / "profile.json").write_text(json.dumps(profile))
    (model / "manifest.json").write_text(json.dumps({"model": {"target": dataset.TARGET}}))
    result = compare("--reference", model / "profile.json", "--current", reference, "--json", tmp_path / "d.json")
    assert result.returncode == NO_DRIFT, result.stderr
    assert dataset.TARGET not in json.loads((tmp_path / "d.json").read_text())["features"]


def test_help_documents_every_exit_status():
    result = subprocess.run([*CLI, "compare", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for code, outcome in [(0, "no drift"), (1, "drift"), (2, "bad input"), (3, "data error"),
                          (6, "insufficient data"), (70, "internal error")]:
        assert re.search(rf"^\s+{code}\s+{outcome}", result.stdout, flags=re.M), (code, result.stdout)
