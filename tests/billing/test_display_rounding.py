"""Display rounding (docs/rounding.md): half-up to 2 decimals, rates keep their digits."""
from decimal import Decimal

import pytest

from portal.formatting import money, rate


@pytest.mark.parametrize("value,expected", [
    ("9.995", "10.00"),
    ("9.994999", "9.99"),
    ("0.000583", "0.00"),
    ("0.005", "0.01"),
    ("-0.005", "-0.01"),          # ROUND_HALF_UP rounds halves away from zero
    ("1234567.5", "1,234,567.50"),
])
def test_money_half_up_two_places(value, expected):
    assert money(Decimal(value)) == expected


def test_money_with_currency_and_none():
    assert money(Decimal("2"), "EUR") == "2.00 EUR"
    assert money(None) == "—"


@pytest.mark.parametrize("value,expected", [("0.080000", "0.0800"), ("0.005083", "0.005083"), ("1", "1.0000")])
def test_rate_keeps_significant_decimals(value, expected):
    assert rate(Decimal(value)) == expected
