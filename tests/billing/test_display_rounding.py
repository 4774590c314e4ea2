"""Display rounding (docs/rounding.md): half-up at the currency's precision with its code,
exact value in the title; rates keep their digits."""
from decimal import Decimal

import pytest
from jinja2 import Environment

from portal.formatting import exact_text, minor_units, money, money_filter, rate


@pytest.mark.parametrize("value,expected", [
    ("9.995", "10.00"),
    ("9.994999", "9.99"),
    ("0.000583", "0.00"),
    ("0.005", "0.01"),
    ("-0.005", "-0.01"),          # ROUND_HALF_UP rounds halves away from zero
    ("-0.004", "0.00"),           # never "-0.00"
    ("1234567.5", "1,234,567.50"),
])
def test_money_half_up_two_places(value, expected):
    assert money(Decimal(value)) == expected


def test_money_with_currency_and_none():
    assert money(Decimal("2"), "EUR") == "2.00 EUR"
    assert money(Decimal("96.87035"), "EUR") == "96.87 EUR"
    assert money(None) == "—"


@pytest.mark.parametrize("currency,value,expected", [
    ("SEK", "40.4749", "40.47 SEK"), ("USD", "-0.07175", "-0.07 USD"),
    ("JPY", "1234.5", "1,235 JPY"), ("KWD", "1.23456", "1.235 KWD"), ("CLF", "1.234567", "1.2346 CLF"),
    ("XXZ", "1.239", "1.24 XXZ"),             # unknown code: 2 decimals
])
def test_money_at_iso_4217_minor_units(currency, value, expected):
    assert money(Decimal(value), currency) == expected


def test_minor_units_table():
    assert [minor_units(c) for c in ("EUR", "usd", "SEK", "JPY", "BHD", None)] == [2, 2, 2, 0, 3, 2]


def test_exact_text_keeps_every_decimal_and_at_least_the_currencys():
    assert exact_text(Decimal("96.870350"), "EUR") == "96.87035 EUR"
    assert exact_text(Decimal("2.000000"), "EUR") == "2.00 EUR"
    assert exact_text(Decimal("1200.5"), "JPY") == "1,200.5 JPY"


def _render(source: str, autoescape: bool, **context) -> str:
    env = Environment(autoescape=autoescape)
    env.filters["money"] = money_filter
    return env.from_string(source).render(**context)


def test_filter_in_html_puts_the_exact_value_in_the_title():
    html = _render("{{ v|money('EUR') }}", True, v=Decimal("96.870350"))
    assert html == '<span class="money" data-currency="EUR" title="exact: 96.87035 EUR">96.87 EUR</span>'
    # no title when nothing was rounded away
    assert 'title' not in _render("{{ v|money('EUR') }}", True, v=Decimal("12.300000"))
    exact = _render("{{ v|money('EUR', exact=True) }}", True, v=Decimal("0.000583"))
    assert exact == '<span class="money money-exact" data-currency="EUR">0.000583 EUR</span>'


def test_filter_in_text_is_plain():
    assert _render("{{ v|money('SEK') }}", False, v=Decimal("40.4749")) == "40.47 SEK"


@pytest.mark.parametrize("value,expected", [("0.080000", "0.0800"), ("0.005083", "0.005083"), ("1", "1.0000")])
def test_rate_keeps_significant_decimals(value, expected):
    assert rate(Decimal(value)) == expected
