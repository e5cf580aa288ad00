"""`retrain-trainer compare`: drift between two local files (or a saved profile and a file), no cluster.

Exit 0: no dataset drift, 1: dataset drift (so that a script can gate on it), 3: bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    compare = sub.add_parser("compare", help="compare two local Parquet/CSV files for drift, no cluster needed; "
                                             "exit 0: no dataset drift, 1: dataset drift, 3: bad input")
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
    try:
        if reference.suffix == ".json":
            profile = json.loads(reference.read_text())
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
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if args.report:
        Path(args.report).write_text(render_html(result, profile, check))
    if args.save_profile:
        Path(args.save_profile).write_text(json.dumps(to_json(profile)))
    drifted = result["driftedFeatures"]
    verdict = "DATASET DRIFT" if result["drift"] else "no dataset drift"
    print(f"{verdict}: {len(drifted)} of {len(result['features'])} features "
          f"drifted{': ' + ', '.join(drifted) if drifted else ''} ({result['rows']} current rows)")
    if result["missingColumns"]:
        print(f"missing from the current data: {', '.join(result['missingColumns'])}")
    return 1 if result["drift"] else 0  # so that a script can gate on it
