"""The part of Kubernetes' CEL quantity library the CRD's rules use, for the operator's own validation.

The API server evaluates `quantity(...)` with its own library; the operator's validation
(`validation.py`, with cel-python) gets the same functions from here so a rule means the same
in both places. Parsing is the Kubernetes client's `parse_quantity` (exact decimals, as
apimachinery's `ParseQuantity`).
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import total_ordering
from typing import Any

from celpy import celtypes
from kubernetes.utils.quantity import parse_quantity

# apimachinery's grammar: the client's parser also takes some strings the server refuses ("1K", "1 Gi").
_SYNTAX = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?")


def parse(text: str) -> Decimal:
    """The exact value of a quantity string; ValueError when the API server would refuse it."""
    if _SYNTAX.fullmatch(text) is None:
        raise ValueError(f"{text!r} is not a quantity")
    return Decimal(parse_quantity(text))


@total_ordering
class Quantity:
    """A parsed quantity as CEL sees it (an opaque value with methods)."""

    def __init__(self, value: Decimal):
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantity) and self.value == other.value

    def __lt__(self, other: Quantity) -> bool:
        return self.value < other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"Quantity({self.value})"


def _quantity(text: Any) -> Quantity:
    return Quantity(parse(str(text)))


def _is_quantity(text: Any) -> celtypes.BoolType:
    try:
        parse(str(text))
    except ValueError:
        return celtypes.BoolType(False)
    return celtypes.BoolType(True)


def _compare_to(left: Quantity, right: Quantity) -> celtypes.IntType:
    return celtypes.IntType((left.value > right.value) - (left.value < right.value))


# name -> implementation, for `celpy.Environment.program(..., functions=CEL_FUNCTIONS)`.
CEL_FUNCTIONS: dict[str, Any] = {
    "quantity": _quantity,
    "isQuantity": _is_quantity,
    "compareTo": _compare_to,
    "isLessThan": lambda left, right: celtypes.BoolType(left.value < right.value),
    "isGreaterThan": lambda left, right: celtypes.BoolType(left.value > right.value),
    "sign": lambda q: celtypes.IntType((q.value > 0) - (q.value < 0)),
}
