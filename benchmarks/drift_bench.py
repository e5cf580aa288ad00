"""Drift engine against Evidently, Alibi Detect and a per-column SciPy baseline, on one synthetic table.

One run: writes reference and current Parquet files (20 numeric + 5 categorical features, six of
them shifted on purpose), then runs every method in a process of its own (median of --repeat
timed runs after loading the data; peak RSS of that process) and prints wall time, memory, the
ratio of each method to this engine, and the drifted features each one finds. Then this engine
alone, streamed from Parquet at --scaling sizes (time and peak memory against size).

Evidently and Alibi Detect need numpy<2 and pandas<3, so they run in a separate virtualenv that
this script creates on first use (--compare-venv, outside the project's dependencies). Alibi
Detect's licence is source-available (Business Source License), not open source.

Run: .venv/bin/python benchmarks/drift_bench.py [--rows 1000000] [--scaling 100000,1000000,10000000]
     [--skip-libraries] [--report drift-bench.html]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

NUMERIC = [f"num_{i}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
# What the current data does differently; every other feature keeps its distribution.
SHIFTED = {
    "num_0": "mean + 0.1 std (the small shift a normed-Wasserstein threshold of 0.1 flips a coin on)",
    "num_1": "mean + 0.5 std",
    "num_2": "std x 1.5, same mean",
    "num_3": "integer-valued, Poisson mean 3.0 -> 3.3 (rarely crosses a quantile bin edge)",
    "cat_0": "category shares 50/30/20 -> 40/40/20",
    "cat_1": "a category never seen in the reference takes 5%",
}
CHUNK_ROWS = 1_000_000
ROW_GROUP = 262_144
COMPARE_PACKAGES = ["evidently==0.7.23", "alibi-detect==0.13.0", "numpy<2", "pandas<3", "scipy", "pyarrow<19"]
KS_MIN_EFFECT, JS_MIN_EFFECT, ALPHA = 0.025, 0.05, 0.05  # this engine's defaults (docs/drift.md)


# --- data -------------------------------------------------------------------------------------------------------

def _chunk(rows: int, current: bool, rng: np.random.Generator) -> pa.Table:
    columns: dict[str, Any] = {}
    for i, name in enumerate(NUMERIC):
        if i == 0:
            values = rng.normal(0.1 if current else 0.0, 1.0, rows)
        elif i == 1:
            values = rng.normal(0.5 if current else 0.0, 1.0, rows)
        elif i == 2:
            values = rng.normal(0.0, 1.5 if current else 1.0, rows)
        elif i == 3:
            values = rng.poisson(3.3 if current else 3.0, rows).astype(np.int64)
        elif i < 8:
            values = rng.lognormal(0.0, 1.0, rows)
        elif i < 12:
            values = rng.uniform(-5, 5, rows)
        elif i < 16:
            values = rng.integers(0, 100, rows)
        else:
            values = rng.normal(100.0 * i, 10.0, rows)
        columns[name] = values
    for i, name in enumerate(CATEGORICAL):
        if i == 0:
            columns[name] = rng.choice(["a", "b", "c"], rows, p=[0.4, 0.4, 0.2] if current else [0.5, 0.3, 0.2])
        elif i == 1:
            choices, shares = list("pqrs"), [0.25] * 4
            if current:
                choices, shares = [*choices, "new"], [0.2375] * 4 + [0.05]
            columns[name] = rng.choice(choices, rows, p=shares)
        else:
            columns[name] = rng.choice([f"v{k}" for k in range(4 + 6 * i)], rows)
    return pa.table(columns)


def write_table(path: Path, rows: int, current: bool, seed: int) -> Path:
    """Written a million rows at a time, so even 10M rows never sit in this process's memory."""
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return path
    rng = np.random.default_rng(seed)
    writer = None
    for start in range(0, rows, CHUNK_ROWS):
        chunk = _chunk(min(CHUNK_ROWS, rows - start), current, rng)
        writer = writer or pq.ParquetWriter(path, chunk.schema)
        writer.write_table(chunk, row_group_size=ROW_GROUP)
    assert writer is not None
    writer.close()
    return path


# --- methods: each runs in its own process (`--method NAME`) -----------------------------------------------------

def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _frames(reference: Path, current: Path) -> tuple[Any, Any]:
    return pq.read_table(reference).to_pandas(), pq.read_table(current).to_pandas()


def run_engine(reference: Path, current: Path, repeat: int) -> dict[str, Any]:
    """In memory, like the others: build the reference profile, then fold the current batches in."""
    from retrain_trainer.drift.engine import DriftCheck
    from retrain_trainer.drift.profile import build_profile

    ref, cur = pq.read_table(reference), pq.read_table(current)
    loaded = _peak_rss_mb()
    times, check_times, result = [], [], {}
    for _ in range(repeat):
        started = time.perf_counter()
        profile = build_profile(ref.to_batches(max_chunksize=ROW_GROUP))
        profiled = time.perf_counter()
        result = DriftCheck(profile).add_all(cur.to_batches(max_chunksize=ROW_GROUP)).result()
        times.append(time.perf_counter() - started)
        check_times.append(time.perf_counter() - profiled)
    return {"seconds": times, "checkSeconds": check_times, "loadedMb": loaded,
            "drifted": result["driftedFeatures"],
            "ks": {name: [f["ksStatistic"], f["ksPValue"]] for name, f in result["features"].items()
                   if f["kind"] == "numeric"}}


def run_engine_streamed(reference: Path, current: Path, repeat: int) -> dict[str, Any]:
    """As the drift Job runs: both files streamed from Parquet, reading included in the time."""
    from retrain_trainer.drift.engine import DriftCheck
    from retrain_trainer.drift.files import iter_file_batches
    from retrain_trainer.drift.profile import build_profile

    loaded = _peak_rss_mb()
    times, result = [], {}
    for _ in range(repeat):
        started = time.perf_counter()
        profile = build_profile(iter_file_batches(reference))
        result = DriftCheck(profile).add_all(iter_file_batches(current)).result()
        times.append(time.perf_counter() - started)
    return {"seconds": times, "loadedMb": loaded, "drifted": result["driftedFeatures"]}


def run_scipy(reference: Path, current: Path, repeat: int) -> dict[str, Any]:
    """What a user writes by hand: ks_2samp per numeric column, chi2_contingency per categorical one."""
    import pandas as pd
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    ref, cur = _frames(reference, current)
    loaded = _peak_rss_mb()
    times, drifted, significant, ks = [], [], [], {}
    for _ in range(repeat):
        started = time.perf_counter()
        drifted, significant = [], []
        for name in NUMERIC:
            test = stats.ks_2samp(ref[name].dropna().to_numpy(), cur[name].dropna().to_numpy())
            ks[name] = [float(test.statistic), float(test.pvalue)]
            significant += [name] if test.pvalue < ALPHA else []
            drifted += [name] if test.pvalue < ALPHA and test.statistic >= KS_MIN_EFFECT else []
        for name in CATEGORICAL:
            table = pd.concat([ref[name].value_counts(), cur[name].value_counts()], axis=1).fillna(0).T.to_numpy()
            test = stats.chi2_contingency(table, correction=False)
            distance = jensenshannon(table[0] / table[0].sum(), table[1] / table[1].sum(), base=2)
            significant += [name] if test.pvalue < ALPHA else []
            drifted += [name] if test.pvalue < ALPHA and distance >= JS_MIN_EFFECT else []
        times.append(time.perf_counter() - started)
    return {"seconds": times, "loadedMb": loaded, "drifted": drifted, "significant": significant, "ks": ks}


def run_evidently(reference: Path, current: Path, repeat: int) -> dict[str, Any]:
    """Evidently's DataDriftPreset with its defaults, results only (no HTML rendering)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    ref, cur = _frames(reference, current)
    loaded = _peak_rss_mb()
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    times, drifted, methods = [], [], set()
    for _ in range(repeat):
        started = time.perf_counter()
        snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=definition),
                                                   Dataset.from_pandas(ref, data_definition=definition))
        metrics = snapshot.dict()["metrics"]
        times.append(time.perf_counter() - started)
        drifted = []
        for metric in metrics:
            config = metric["config"]
            if not config["type"].endswith("ValueDrift"):
                continue
            method, threshold, value = config["method"], config["threshold"], metric["value"]
            methods.add(f"{method} (threshold {threshold})")
            is_pvalue = "p_value" in method.lower()
            if (value < threshold) if is_pvalue else (value >= threshold):
                drifted.append(config["column"])
    return {"seconds": times, "loadedMb": loaded, "drifted": drifted, "methods": sorted(methods)}


def run_alibi(reference: Path, current: Path, repeat: int) -> dict[str, Any]:
    """Alibi Detect's TabularDrift (KS per numeric feature, chi2 per categorical, Bonferroni)."""
    from alibi_detect.cd import TabularDrift

    ref, cur = _frames(reference, current)
    codes = {name: {value: code for code, value in enumerate(sorted(set(ref[name]) | set(cur[name])))}
             for name in CATEGORICAL}
    columns = NUMERIC + CATEGORICAL

    def matrix(frame: Any) -> np.ndarray:
        encoded = frame[columns].copy()
        for name in CATEGORICAL:
            encoded[name] = encoded[name].map(codes[name])
        return encoded.to_numpy(dtype=np.float32)

    x_ref, x_cur = matrix(ref), matrix(cur)
    del ref, cur
    loaded = _peak_rss_mb()
    categories = {columns.index(name): len(codes[name]) for name in CATEGORICAL}
    times, drifted = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        detector = TabularDrift(x_ref, p_val=ALPHA, categories_per_feature=categories)
        prediction = detector.predict(x_cur, drift_type="feature")
        times.append(time.perf_counter() - started)
        drifted = [columns[i] for i, flag in enumerate(prediction["data"]["is_drift"]) if flag]
    return {"seconds": times, "loadedMb": loaded, "drifted": drifted}


METHODS = {"engine": run_engine, "engine-streamed": run_engine_streamed, "scipy": run_scipy,
           "evidently": run_evidently, "alibi": run_alibi}


def _child(method: str, reference: Path, current: Path, repeat: int) -> None:
    result = METHODS[method](reference, current, repeat)
    result["peakMb"] = _peak_rss_mb()
    print(json.dumps(result))


# --- the driver ------------------------------------------------------------------------------------------------

def ensure_compare_venv(path: Path) -> Path:
    python = path / "bin" / "python"
    marker = path / ".ready"
    if not marker.exists():
        print(f"creating {path} for Evidently and Alibi Detect (once)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *COMPARE_PACKAGES], check=True)
        marker.write_text("\n".join(COMPARE_PACKAGES))
    return python


def measure(python: str, method: str, reference: Path, current: Path, repeat: int,
            threads: int | None = None) -> dict[str, Any]:
    environment = {**os.environ, "PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "3"}
    if threads:
        environment["RETRAIN_DRIFT_THREADS"] = str(threads)
    done = subprocess.run([python, __file__, "--method", method, "--reference", str(reference),
                           "--current", str(current), "--repeat", str(repeat)],
                          capture_output=True, text=True, env=environment, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{method} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    memory = next((int(line.split()[1]) // 1024 // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)
    return f"{model}, {os.cpu_count()} CPUs, {memory} GiB RAM, Python {sys.version.split()[0]}, NumPy {np.__version__}"


def _row(name: str, result: dict[str, Any], engine_seconds: float) -> str:
    seconds = statistics.median(result["seconds"])
    return (f"{name:<34} {seconds:>9.2f} s {result['peakMb']:>8.0f} MB {result['peakMb'] - result['loadedMb']:>8.0f} MB"
            f" {seconds / engine_seconds:>8.1f}x")


def compare(workdir: Path, rows: int, repeat: int, skip_libraries: bool, venv: Path, report: str | None) -> None:
    reference = write_table(workdir / f"reference-{rows}.parquet", rows, current=False, seed=1)
    current = write_table(workdir / f"current-{rows}.parquet", rows, current=True, seed=2)
    expected = sorted(SHIFTED)
    print(f"\n{rows:,} reference rows vs {rows:,} current rows, {len(NUMERIC)} numeric + {len(CATEGORICAL)} "
          f"categorical features; shifted on purpose: {', '.join(expected)}")
    from retrain_trainer.drift import parallel

    print(f"this engine runs columns on {parallel.threads()} thread(s) (RETRAIN_DRIFT_THREADS); the row "
          "'one thread' is the same engine on one")
    results = {"this engine (profile + check)": measure(sys.executable, "engine", reference, current, repeat),
               "this engine, one thread": measure(sys.executable, "engine", reference, current, repeat, threads=1),
               "SciPy per column": measure(sys.executable, "scipy", reference, current, repeat)}
    if not skip_libraries:
        python = str(ensure_compare_venv(venv))
        results["Alibi Detect TabularDrift"] = measure(python, "alibi", reference, current, repeat)
        results["Evidently DataDriftPreset"] = measure(python, "evidently", reference, current, 1)
    engine = results["this engine (profile + check)"]
    engine_seconds = statistics.median(engine["seconds"])
    print(f"\n{'method':<34} {'median':>11} {'peak RSS':>11} {'- data':>11} {'/ engine':>9}")
    for name, result in results.items():
        print(_row(name, result, engine_seconds))
    print(f"{'  of which the check alone':<34} {statistics.median(engine['checkSeconds']):>9.2f} s "
          "(the profile is built once, at training time)")
    print("\ndrifted features found:")
    for name, result in results.items():
        found = sorted(result["drifted"])
        verdict = "= the shifted ones" if found == expected else \
            f"missed {sorted(set(expected) - set(found))}, extra {sorted(set(found) - set(expected))}"
        print(f"  {name:<32} {', '.join(found) or '-'}  ({verdict})")
    scipy = results["SciPy per column"]
    print(f"  SciPy, p < {ALPHA} alone (no effect size): {', '.join(sorted(scipy['significant']))}")
    agree = sorted(engine["drifted"]) == sorted(scipy["drifted"])
    worst = max(abs(engine["ks"][name][0] - scipy["ks"][name][0]) for name in NUMERIC)
    print(f"  engine and SciPy verdicts (same rule: p < {ALPHA} and KS D >= {KS_MIN_EFFECT} / JS >= {JS_MIN_EFFECT}): "
          f"{'agree' if agree else 'DISAGREE'}; largest KS statistic difference {worst:.4f} "
          "(the engine compares with a 20,000-point reference sample)")
    if "Evidently DataDriftPreset" in results:
        print(f"  Evidently's per-column methods: {'; '.join(results['Evidently DataDriftPreset']['methods'])}")
    if report:
        _write_report(reference, current, Path(report))
        print(f"\nHTML report of this engine on the same data: {report}")


def scaling(workdir: Path, sizes: list[int]) -> None:
    print(f"\nthis engine streamed from Parquet (reading included), {len(NUMERIC) + len(CATEGORICAL)} features:")
    print(f"{'rows (each side)':>18} {'time':>10} {'peak RSS':>10} {'s per M rows':>13}")
    first: tuple[int, float] | None = None
    for rows in sizes:
        reference = write_table(workdir / f"reference-{rows}.parquet", rows, current=False, seed=1)
        current = write_table(workdir / f"current-{rows}.parquet", rows, current=True, seed=2)
        result = measure(sys.executable, "engine-streamed", reference, current, 1)
        seconds = statistics.median(result["seconds"])
        first = first or (rows, seconds)
        print(f"{rows:>18,} {seconds:>8.2f} s {result['peakMb']:>7.0f} MB {seconds / rows * 1e6:>13.2f}")
    if first and len(sizes) > 1:
        rows, seconds = sizes[-1], statistics.median(result["seconds"])
        print(f"growth {first[0]:,} -> {rows:,} rows: time x{seconds / first[1]:.1f} for data x{rows / first[0]:.0f}")


def _write_report(reference: Path, current: Path, path: Path) -> None:
    from retrain_trainer.drift.engine import DriftCheck, to_json
    from retrain_trainer.drift.files import iter_file_batches
    from retrain_trainer.drift.profile import build_profile
    from retrain_trainer.drift.report import render_html

    profile = build_profile(iter_file_batches(reference))
    check = DriftCheck(profile).add_all(iter_file_batches(current))
    document = to_json({"reference": str(reference), "current": str(current), **check.result()})
    document["drift"] = document["datasetDrift"]
    path.write_text(render_html(document, profile, check))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per method (Evidently: 1)")
    parser.add_argument("--scaling", default="100000,1000000,10000000", help="sizes for this engine alone; '' skips")
    parser.add_argument("--skip-libraries", action="store_true", help="no Evidently / Alibi Detect")
    parser.add_argument("--compare-venv", default=str(Path(__file__).parent / ".venv-compare"))
    parser.add_argument("--workdir", help="keep the generated Parquet files here (default: a temporary directory)")
    parser.add_argument("--report", help="also write this engine's HTML report on the compared data")
    parser.add_argument("--method", choices=sorted(METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    parser.add_argument("--current", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        _child(args.method, Path(args.reference), Path(args.current), args.repeat)
        return
    print(f"machine: {_machine()}")
    with tempfile.TemporaryDirectory() as temporary:
        workdir = Path(args.workdir or temporary)
        workdir.mkdir(parents=True, exist_ok=True)
        compare(workdir, args.rows, args.repeat, args.skip_libraries, Path(args.compare_venv), args.report)
        sizes = [int(size) for size in args.scaling.split(",") if size]
        if sizes:
            scaling(workdir, sizes)


if __name__ == "__main__":
    main()
