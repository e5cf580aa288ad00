"""Resource quantities as the API server parses them, and the CEL quantity functions the operator's validation uses."""

from __future__ import annotations

import re
from fractions import Fraction

import celpy
import pytest

from retrain_contract.api.schema import QUANTITY
from retrain_operator.api.quantity import CEL_FUNCTIONS, parse


@pytest.mark.parametrize(("text", "value"), [
    ("1", 1), ("0", 0), ("+2", 2), ("-1", -1), ("500m", Fraction(1, 2)), ("1.5", Fraction(3, 2)),
    (".5", Fraction(1, 2)), ("1.", 1), ("1Ki", 1024), ("1Gi", 2 ** 30), ("1k", 1000), ("2M", 2_000_000),
    ("1E", 10 ** 18), ("1Ei", 2 ** 60), ("100n", Fraction(1, 10 ** 7)), ("3u", Fraction(3, 10 ** 6)), ("1e3", 1000),
    ("1E-2", Fraction(1, 100)), ("1.5e+1", 15),
])
def test_quantities_parse_to_their_exact_value(text: str, value: Fraction):
    assert parse(text) == value


@pytest.mark.parametrize("text", ["", "1K", "1 Gi", "Gi", "1e1.5", "1e", "1.2.3", "0x10", "1GiB", "--1"])
def test_what_the_server_refuses_is_not_a_quantity(text: str):
    with pytest.raises(ValueError):
        parse(text)


@pytest.mark.parametrize("text", ["1", "+2", "500m", ".5", "1Ki", "1e3", "1E-2", "100n"])
def test_the_schema_pattern_admits_non_negative_quantities(text: str):
    assert re.search(QUANTITY, text) and parse(text) >= 0


@pytest.mark.parametrize("text", ["-1", "-500m", "1e1.5", "1K", "1 Gi"])
def test_the_schema_pattern_refuses_negative_and_malformed_quantities(text: str):
    assert not re.search(QUANTITY, text)


def _cel(rule: str) -> object:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule), functions=CEL_FUNCTIONS).evaluate({})


def test_the_cel_functions_compare_across_units():
    assert _cel("quantity('1Gi').compareTo(quantity('1024Mi')) == 0")
    assert _cel("quantity('1500m').compareTo(quantity('1')) == 1")
    assert _cel("quantity('999Mi').compareTo(quantity('1Gi')) == -1")
    assert _cel("quantity(string(1)).isLessThan(quantity('1.5'))")
    assert _cel("quantity('2k').isGreaterThan(quantity('1999'))")
    assert _cel("isQuantity('1Gi') && !isQuantity('1GiB')")
    assert _cel("quantity('0').sign() == 0 && quantity('-1').sign() == -1")
