"""Kubernetes resource quantities, and the part of Kubernetes' CEL quantity library the CRD's rules use.

The API server evaluates `quantity(...)` with its own library; the operator's validation
(`validation.py`, with cel-python) gets the same functions from here so a rule means the same
in both places. Parsing follows apimachinery's `ParseQuantity`: an optional sign, a decimal
number, then a binary suffix (Ki..Ei), a decimal suffix (n, u, m, k, M, G, T, P, E) or an
integer exponent (e3, E-2). Values are exact fractions, never floats.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import total_ordering
from typing import Any

from celpy import celtypes

_SYNTAX = re.compile(r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
                     r"(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?")
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def parse(text: str) -> Fraction:
    """The exact value of a quantity string; ValueError when the API server would refuse it."""
    match = _SYNTAX.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a quantity")
    value = Fraction(match["number"]) * (-1 if match["sign"] == "-" else 1)
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return value * 2 ** _BINARY[suffix]
    if suffix in _DECIMAL:
        return value * Fraction(10) ** _DECIMAL[suffix]
    return value * Fraction(10) ** int(suffix[1:])


@total_ordering
class Quantity:
    """A parsed quantity as CEL sees it (an opaque value with methods)."""

    def __init__(self, value: Fraction):
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
