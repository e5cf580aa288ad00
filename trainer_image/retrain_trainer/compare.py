"""`retrain-trainer compare`: drift between two local files (or a saved profile and a file), no cluster.

One exit status per outcome (EPILOG, docs/drift.md#exit-codes), so that a script can gate on it:
a crash or a bad argument never exits 1, the status of "drift found".
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from retrain_contract.artifacts.errors import DataError

from .drift.sufficiency import DEFAULT_MIN_ROWS, DRIFT, INSUFFICIENT_DATA, NO_DRIFT
from .errors import EXIT_CONFIG, EXIT_DATA, ConfigError

EXIT_NO_DRIFT = 0
EXIT_DRIFT = 1
EXIT_BAD_INPUT = EXIT_CONFIG  # 2, the trainer contract's configuration error (and argparse's usage error)
EXIT_DATA_ERROR = EXIT_DATA  # 3, the trainer contract's data error
EXIT_INSUFFICIENT_DATA = 6  # 4 and 5 are the contract's storage and version-conflict codes: not reused
EXIT_INTERNAL = 70  # sysexits' EX_SOFTWARE; Python's own 1 for an uncaught error would read as drift
EXIT_INTERRUPTED = 130
VERDICT_EXIT = {NO_DRIFT: EXIT_NO_DRIFT, DRIFT: EXIT_DRIFT, INSUFFICIENT_DATA: EXIT_INSUFFICIENT_DATA}

EPILOG = f"""exit status (one per outcome):
  0   no drift
  1   drift
  2   bad input: usage, an unusable profile (not JSON, no features), a column name
      (--columns, --key-feature, --target) the reference does not have
  3   data error: a file missing or unreadable, a feature missing from the current
      data, a numeric column none of whose values is a number
  6   insufficient data: fewer than --min-rows rows (default {DEFAULT_MIN_ROWS}), or no feature
      (or a key feature) with that many values: neither drift nor no drift
  70  internal error (a bug; the traceback is on stderr)
"""


def _min_rows(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    compare = sub.add_parser("compare", help="compare two local Parquet/CSV files for drift, no cluster needed; "
                                             "exit 0: no drift, 1: drift, 6: insufficient data, 2/3: bad input/data",
                             epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    compare.add_argument("--reference", required=True, help="reference data (.parquet/.csv) or a profile.json")
    compare.add_argument("--current", required=True, help="current data (.parquet/.csv)")
    compare.add_argument("--report", help="write the HTML report here")
    compare.add_argument("--json", help="write the drift.json result here")
    compare.add_argument("--save-profile", help="write the reference profile here (reuse it with --reference)")
    compare.add_argument("--columns", nargs="+", help="only these columns (default: every column but the target)")
    compare.add_argument("--target", help="the label column: not a feature (default: the one the profile, or the "
                                          "manifest.json beside it, records)")
    compare.add_argument("--key-feature", action="append", help="a feature whose drift alone means dataset drift")
    compare.add_argument("--min-rows", type=_min_rows, default=DEFAULT_MIN_ROWS,
                         help="fewer current rows, or values of a feature (now or in the reference), are "
                              f"insufficient for a verdict (default: {DEFAULT_MIN_ROWS})")
    compare.add_argument("--quiet", action="store_true", help="no progress bar")
    compare.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compare, and turn every way it can end into its exit status."""
    try:
        return _compare(args)
    except ConfigError as error:
        _error(f"bad input: {error}")
        return EXIT_BAD_INPUT
    except DataError as error:
        _error(f"data error: {error}")
        return EXIT_DATA_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:
        traceback.print_exc()
        _error(f"internal error: {type(error).__name__}: {error}")
        return EXIT_INTERNAL


def _error(message: str) -> None:
    print(f"retrain-trainer compare: {message}", file=sys.stderr)


def read_profile(path: Path) -> dict[str, Any]:
    """A saved profile.json: a missing file is missing data; one that is not a profile is bad input."""
    from .drift.inputs import ProfileError, check_profile

    if not path.exists():
        raise DataError(f"{path} does not exist")
    try:
        return check_profile(json.loads(path.read_text()))
    except (ValueError, UnicodeDecodeError) as error:  # ProfileError and JSONDecodeError are ValueErrors
        detail = str(error) if isinstance(error, ProfileError) else f"not JSON ({error})"
        raise ConfigError(f"{path} is not a usable drift profile: {detail}") from error
    except OSError as error:
        raise DataError(f"{path} cannot be read: {error.strerror or error}") from error


def recorded_target(profile: dict[str, Any], path: Path) -> str | None:
    """The label column a profile was made with: in the profile (trainers since issue 16), else in the
    manifest.json a model folder keeps beside it."""
    if isinstance(profile.get("target"), str):
        return profile["target"]
    try:
        manifest = json.loads((path.parent / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    target = (manifest.get("model") or {}).get("target") if isinstance(manifest, dict) else None
    return target if isinstance(target, str) else None


def _reference(args: argparse.Namespace, path: Path) -> tuple[dict[str, Any] | None, list[str], set[str], str | None]:
    """(the saved profile or None for data, the candidate features, every column it knows, the target)."""
    import pyarrow as pa

    from .drift.files import file_schema

    if path.suffix == ".json":
        profile = read_profile(path)
        known = set(profile["features"])
        target = recorded_target(profile, path)
        known |= {target} if target else set()
        if args.target and args.target not in known:
            raise ConfigError(f"--target {args.target}: not a column of the profile (its columns: "
                              f"{', '.join(sorted(known))})")
        return profile, list(profile["features"]), known, args.target or target
    schema = file_schema(path)
    if args.target and args.target not in schema.names:
        raise ConfigError(f"--target {args.target}: not a column of {path} (its columns: {', '.join(schema.names)})")
    features = [field.name for field in schema if not pa.types.is_temporal(field.type)]  # times are not features
    return None, features, set(schema.names), args.target


def _compare(args: argparse.Namespace) -> int:
    from .drift.engine import DriftCheck, Thresholds, to_json
    from .drift.files import iter_file_batches
    from .drift.inputs import CurrentColumns, select_features, unreadable, unreadable_message
    from .drift.profile import build_profile
    from .drift.sufficiency import summary

    reference, current = Path(args.reference), Path(args.current)
    progress = not args.quiet and sys.stderr.isatty()
    outputs = {"--json": args.json, "--report": args.report, "--save-profile": args.save_profile}
    for option, path in outputs.items():
        if path and not Path(path).parent.is_dir():  # found before a long comparison, not after it
            raise ConfigError(f"{option} {path}: the directory {Path(path).parent} does not exist")
    profile, available, known, target = _reference(args, reference)
    features = select_features(available, args.columns, target, args.key_feature or ())
    if profile is None:
        profile = build_profile(iter_file_batches(reference, progress, "reference"), columns=features)
        profile["target"] = target
    check = DriftCheck(profile, Thresholds(key_features=tuple(args.key_feature or ())), columns=features,
                       min_rows=args.min_rows)
    columns = CurrentColumns(features, known | ({target} if target else set()))
    check.add_all(columns.watch(iter_file_batches(current, progress, "current"), f"the current data ({current})"))
    result = check.result()
    none, some = unreadable(result["features"])
    if none:
        raise DataError("no value of numeric column(s) " + unreadable_message(none, result["features"]) +
                        f" in {current} is a number")
    result = to_json({"reference": str(reference), "current": str(current), "target": target, **result,
                      "extraColumns": columns.extra, "nonNumericValues": some})
    result["drift"] = result["verdict"] == DRIFT
    if result["verdict"] == INSUFFICIENT_DATA:
        result["verdictReason"] = summary(result)
    from .drift.report import render_html

    writers = {"--json": lambda: json.dumps(result, indent=2), "--report": lambda: render_html(result, profile, check),
               "--save-profile": lambda: json.dumps(to_json(profile))}
    for option, path in outputs.items():
        if path:
            try:
                Path(path).write_text(writers[option]())
            except OSError as error:
                raise ConfigError(f"{option} {path}: cannot write it: {error.strerror or error}") from error
    print_summary(result)
    return VERDICT_EXIT[result["verdict"]]


def print_summary(result: dict[str, Any]) -> None:
    from .drift.sufficiency import summary

    drifted, features = result["driftedFeatures"], result["features"]
    if result["verdict"] == INSUFFICIENT_DATA:
        print(f"INSUFFICIENT DATA: {summary(result)}; no verdict")
    else:
        print(f"{'DATASET DRIFT' if result['drift'] else 'no dataset drift'}: {len(drifted)} of "
              f"{len(features) - len(result['insufficientFeatures'])} features drifted"
              f"{': ' + ', '.join(drifted) if drifted else ''} ({result['rows']} current rows)")
        if result["insufficientFeatures"]:
            print(f"not judged: {summary(result)}")
    for name, count in result["nonNumericValues"].items():
        total = count + int(features[name].get("rows") or 0)
        print(f"{name}: {count} of {total} values are not numbers, left out of the statistics")
    if result["extraColumns"]:
        print(f"not in the reference, not checked: {', '.join(result['extraColumns'])}")
