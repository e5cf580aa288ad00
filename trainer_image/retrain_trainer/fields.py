"""A JSON configuration read field by field, so that every ConfigError names the field's dotted path
(`storage.bucket`) or the file: the Job fails at once (exit 2) with a message a person can act on,
instead of a KeyError('bucket') or a retried traceback."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .errors import ConfigError

T = TypeVar("T")
_REQUIRED: Any = object()


def load(text: str, source: str) -> Fields:
    """The document in `text`, which came from `source` (a file, an environment variable)."""
    try:
        document = json.loads(text)
    except ValueError as error:  # JSONDecodeError: its message says the line and column
        raise ConfigError(f"{source} is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise ConfigError(f"{source} is not a JSON object (a {_kind(document)})")
    return Fields(document)


def http_url(value: Any) -> str:
    """An S3 endpoint as boto3 takes it (http(s)://host[:port]); boto3 itself would raise a bare ValueError."""
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
    return value


def _kind(value: object) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


class Fields:
    """One JSON object of the configuration; `path` is where it sits ("" for the top)."""

    def __init__(self, raw: dict[str, Any], path: str = ""):
        self.raw, self.path = raw, path

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.name(key)}: {problem}")

    def _get(self, key: str, required: bool) -> Any:
        """The value, or None when absent or null (an error when required)."""
        value = self.raw.get(key)
        if value is None and required:
            raise ConfigError(f"{self.name(key)} is required")
        return value

    def _typed(self, key: str, required: bool, types: tuple[type, ...], kind: str) -> Any:
        value = self._get(key, required)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):  # True is no number
            raise self.error(key, f"must be {kind}, got {_kind(value)} {value!r}")
        return value

    def object(self, key: str, required: bool = True) -> Fields:
        return Fields(self._typed(key, required, (dict,), "an object") or {}, self.name(key))

    def string(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self._typed(key, default is _REQUIRED, (str,), "a string")
        if value == "" and default is _REQUIRED:
            raise ConfigError(f"{self.name(key)} is required")
        return default if value is None else value

    def number(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self._typed(key, default is _REQUIRED, (int, float), "a number")
        if value is None:
            return default
        if not math.isfinite(value):
            raise self.error(key, f"must be a finite number, got {value!r}")
        return float(value)

    def between(self, key: str, value: float, low: float, high: float, *, open_low: bool = False,
                open_high: bool = False) -> float:
        """`value` (of `key`) within low..high; the brackets say which ends are allowed."""
        if (value < low or (open_low and value == low)) or (value > high or (open_high and value == high)):
            raise self.error(key, f"must be in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
                                  f", got {value!r}")
        return value

    def integer(self, key: str, default: Any = _REQUIRED, low: int | None = None) -> Any:
        value = self._typed(key, default is _REQUIRED, (int,), "an integer")
        if value is None:
            return default
        if low is not None and value < low:
            raise self.error(key, f"must be >= {low}, got {value!r}")
        return value

    def values(self, key: str) -> tuple[Any, ...] | None:
        """A list of anything (labels); None when absent or empty."""
        return tuple(self._typed(key, False, (list,), "a list") or ()) or None

    def strings(self, key: str) -> tuple[str, ...] | None:
        """A list of strings; None when absent or empty."""
        value = self._typed(key, False, (list,), "a list of strings")
        if not value:
            return None
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise ConfigError(f"{self.name(key)}[{index}]: must be a non-empty string, got {item!r}")
        return tuple(value)

    def parsed(self, key: str, parse: Callable[[Any], T], default: Any = _REQUIRED) -> T:
        """A value another parser checks (a duration, an S3 URI): its ValueError names the field."""
        value = self._get(key, default is _REQUIRED)
        if value is None or value == "":  # an empty URI or duration is an absent one
            if default is _REQUIRED:
                raise ConfigError(f"{self.name(key)} is required")
            return default
        try:
            return parse(value)
        except (ValueError, TypeError) as error:
            raise self.error(key, str(error)) from error
