"""`retrain-trainer compare`: drift between two local files (or a saved profile and a file), no cluster.

Exit 0: no dataset drift, 1: dataset drift (so that a script can gate on it), 2: a wrong option (an
output path that cannot be written, as argparse's usage errors), 3: bad input (a file missing or unreadable,
a profile that is not one).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    compare = sub.add_parser("compare", help="compare two local Parquet/CSV files for drift, no cluster needed; "
                                             "exit 0: no dataset drift, 1: dataset drift, 2: bad option, 3: bad input")
    compare.add_argument("--reference", required=True, help="reference data (.parquet/.csv) or a profile.json")
    compare.add_argument("--current", required=True, help="current data (.parquet/.csv)")
    compare.add_argument("--report", help="write the HTML report here")
    compare.add_argument("--json", help="write the drift.json result here")
    compare.add_argument("--save-profile", help="write the reference profile here (reuse it with --reference)")
    compare.add_argument("--columns", nargs="+", help="only these columns")
    compare.add_argument("--key-feature", action="append", help="a feature whose drift alone means dataset drift")
    compare.add_argument("--quiet", action="store_true", help="no progress bar")
    compare.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compare two local files (or a stored profile and a file) without any cluster."""
    from retrain_contract.artifacts.errors import DataError

    from .drift.engine import DriftCheck, Thresholds, to_json
    from .drift.files import iter_file_batches
    from .drift.profile import build_profile
    from .drift.report import render_html

    reference, current = Path(args.reference), Path(args.current)
    progress = not args.quiet and sys.stderr.isatty()
    outputs = {"--json": args.json, "--report": args.report, "--save-profile": args.save_profile}
    for option, path in outputs.items():
        if path and not Path(path).parent.is_dir():  # found before a long comparison, not after it
            return _usage_error(f"{option} {path}: the directory {Path(path).parent} does not exist")
    try:
        if reference.suffix == ".json":
            profile = _saved_profile(reference)
        else:
            profile = build_profile(iter_file_batches(reference, progress, "reference"), columns=args.columns)
        thresholds = Thresholds(key_features=tuple(args.key_feature or ()))
        check = DriftCheck(profile, thresholds, columns=args.columns)
        check.add_all(iter_file_batches(current, progress, "current"))
    except DataError as error:
        print(f"retrain-trainer compare: error: {error}", file=sys.stderr)
        return 3
    result = to_json({"reference": str(reference), "current": str(current), **check.result()})
    result["drift"] = result["datasetDrift"]
    writers = {"--json": lambda: json.dumps(result, indent=2), "--report": lambda: render_html(result, profile, check),
               "--save-profile": lambda: json.dumps(to_json(profile))}
    for option, path in outputs.items():
        if path:
            try:
                Path(path).write_text(writers[option]())
            except OSError as error:
                return _usage_error(f"{option} {path}: cannot write it: {error.strerror or error}")
    drifted = result["driftedFeatures"]
    verdict = "DATASET DRIFT" if result["drift"] else "no dataset drift"
    print(f"{verdict}: {len(drifted)} of {len(result['features'])} features "
          f"drifted{': ' + ', '.join(drifted) if drifted else ''} ({result['rows']} current rows)")
    if result["missingColumns"]:
        print(f"missing from the current data: {', '.join(result['missingColumns'])}")
    return 1 if result["drift"] else 0  # so that a script can gate on it


def _saved_profile(path: Path) -> dict:
    """A profile.json saved by --save-profile (or stored next to a model); DataError naming the file."""
    from retrain_contract.artifacts.errors import DataError

    try:
        profile = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DataError(f"{path} cannot be read: {error.strerror or error}") from error
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise DataError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(profile, dict) or not isinstance(profile.get("features"), dict):
        raise DataError(f"{path} is not a drift profile (no \"features\" object): save one with --save-profile")
    return profile


def _usage_error(message: str) -> int:
    print(f"retrain-trainer compare: error: {message}", file=sys.stderr)
    return 2  # as argparse's own usage errors: not 1, which means drift
