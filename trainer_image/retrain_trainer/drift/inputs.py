"""What a drift check is given, checked before (or while) it reads: the profile, the features, the columns.

Each problem is raised as the class that gives it its exit code (docs/drift.md#exit-codes):
ConfigError for names the caller asked for that do not exist, DataError for data that does not fit
the reference (a feature missing, values that are not numbers), ProfileError for a reference profile
that cannot be used (bad input to `compare`; to the drift Job, a data error of the model).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from retrain_contract.artifacts.errors import DataError
from retrain_contract.failures import ConfigError

_KEYS = {"numeric": {"count": int, "nulls": int, "sample": list, "edges": list, "binProportions": list},
         "categorical": {"count": int, "nulls": int, "frequencies": dict}}


class ProfileError(ValueError):
    """A reference profile that is not one (not JSON, no features, a feature without its statistics)."""


def _problems(name: str, feature: Any) -> list[str]:
    kind = feature.get("kind") if isinstance(feature, dict) else None
    if kind not in _KEYS:
        return [f"feature {name!r} has no kind numeric or categorical"]
    problems = [f"feature {name!r} has no {key} ({expected.__name__})" for key, expected in _KEYS[kind].items()
                if not isinstance(feature.get(key), expected) or isinstance(feature.get(key), bool)]
    if problems:
        return problems
    if kind == "numeric":
        numbers = [*feature["sample"], *feature["edges"], *feature["binProportions"]]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
            problems.append(f"feature {name!r}: sample, edges and binProportions must be numbers")
        elif len(feature["binProportions"]) != len(feature["edges"]) + 1:
            problems.append(f"feature {name!r}: binProportions must have one entry more than edges")
        if feature.get("std") is not None and not isinstance(feature["std"], int | float):
            problems.append(f"feature {name!r}: std must be a number")
    elif not all(isinstance(v, int) and not isinstance(v, bool) for v in feature["frequencies"].values()):
        problems.append(f"feature {name!r}: frequencies must be counts")
    return problems


def check_profile(profile: Any) -> dict[str, Any]:
    """The profile, if a DriftCheck can use it; else a ProfileError saying what is wrong."""
    if not isinstance(profile, dict):
        raise ProfileError("a profile is a JSON object with 'features'")
    features = profile.get("features")
    if not isinstance(features, dict) or not features:
        raise ProfileError("the profile has no features")
    problems = [problem for name, feature in features.items() for problem in _problems(name, feature)]
    if problems:
        raise ProfileError("; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
    return profile


@dataclass(frozen=True)
class Names:
    """How the caller spells the settings, for messages: the CLI's flags or the drift config's fields."""

    columns: str = "--columns"
    key_features: str = "--key-feature"
    target: str = "--target"


def _listed(names: Iterable[str], limit: int = 20) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (f" ... ({len(names)} in all)" if len(names) > limit else "")


def select_features(available: list[str], columns: Iterable[str] | None, target: str | None,
                    key_features: Iterable[str], names: Names = Names()) -> list[str]:
    """The features to check: `columns`, or every column of the reference but the target. A name that is
    not a column, the target asked for as a feature, or a key feature that is not checked: ConfigError."""
    if columns:
        asked = list(dict.fromkeys(columns))
        unknown = [name for name in asked if name not in available]
        if unknown:
            raise ConfigError(f"{names.columns}: {_listed(unknown)} not in the reference "
                              f"(its columns: {_listed(available)})")
        if target in asked:
            raise ConfigError(f"{names.columns}: {target} is the target ({names.target}), not a feature")
        features = asked
    else:
        features = [name for name in available if name != target]
    if not features:
        raise ConfigError(f"no features to check: the reference has only {_listed(available) or 'no columns'}")
    stray = [name for name in dict.fromkeys(key_features) if name not in features]
    if stray:
        raise ConfigError(f"{names.key_features}: {_listed(stray)} not among the checked features "
                          f"({_listed(features)})")
    return features


@dataclass
class CurrentColumns:
    """Watches the current data go by: a feature missing from a batch is a DataError at once (naming every
    one that batch lacks); columns the reference does not know are collected, reported, not refused.
    Event times (temporal columns) are never features, so they are not reported either."""

    features: list[str]
    known: set[str]
    extra: list[str] = field(default_factory=list)

    def watch(self, batches: Iterable[pa.RecordBatch], where: str) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            present = set(batch.schema.names)
            missing = [name for name in self.features if name not in present]
            unknown = [f.name for f in batch.schema if f.name not in self.known and not pa.types.is_temporal(f.type)]
            if missing:
                hint = f" (it has {_listed(unknown)}, which the reference does not: renamed?)" if unknown else ""
                raise DataError(f"column(s) {_listed(missing)} missing from {where}{hint}")
            self.extra.extend(name for name in unknown if name not in self.extra)
            yield batch


def unreadable(features: dict[str, dict[str, Any]]) -> tuple[dict[str, int], dict[str, int]]:
    """Numeric features with values that are not numbers: (none of whose values is one, some of whose are not)."""
    none, some = {}, {}
    for name, feature in features.items():
        count = int(feature.get("nonNumeric") or 0)
        if count:
            (some if feature.get("rows") else none)[name] = count
    return none, some


def unreadable_message(counts: dict[str, int], features: dict[str, dict[str, Any]]) -> str:
    return ", ".join(f"{name} ({count} of {count + int(features[name].get('rows') or 0)} values)"
                     for name, count in sorted(counts.items()))
