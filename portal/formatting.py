"""Jinja filters: money, rates, dates. Money is shown from Decimal, never through float.

The display rule (docs/rounding.md): an amount is shown half-up at the precision of its
currency (ISO 4217 minor units: 2 for EUR, USD, SEK...), always with its currency code;
its exact stored value is in the element's `title` when the display rounded it, or in
full on detail pages (`|money(cur, exact=True)`). CSV files keep the exact values.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlencode

from flask import request
from jinja2 import pass_eval_context
from markupsafe import Markup, escape

from .localtime import local_tz

# ISO 4217 minor units of the currencies whose precision is not 2 (2 is the default:
# EUR, USD, GBP, SEK, NOK, DKK, CHF, PLN, CZK, HUF, ...). An unknown code shows 2.
MINOR_UNITS = {
    # no minor unit
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    # thousandths
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    # ten-thousandths
    "CLF": 4, "UYW": 4,
}
DEFAULT_MINOR_UNITS = 2


def minor_units(currency: str | None) -> int:
    """Decimal places an amount of `currency` is displayed with."""
    return MINOR_UNITS.get((currency or "").upper(), DEFAULT_MINOR_UNITS)


def _quantized(value: Decimal, places: int) -> Decimal:
    shown = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return shown.copy_abs() if shown.is_zero() else shown   # never "-0.00"


def _grouped(value: Decimal, places: int) -> str:
    return f"{value:,.{places}f}"


def exact_text(value, currency: str | None = None) -> str:
    """The stored amount with every significant decimal (at least the currency's)."""
    value = Decimal(value)
    exponent = value.normalize().as_tuple().exponent
    places = max(minor_units(currency), -exponent if isinstance(exponent, int) else 0)
    text = _grouped(value, places)
    return f"{text} {currency}" if currency else text


def money(value, currency: str | None = None, places: int | None = None) -> str:
    """An amount as text: half-up at the currency's precision, thousands separated,
    followed by the currency code. Display rounding only: stored amounts keep 6
    decimals and pages sum exact values before they round (docs/rounding.md)."""
    if value is None:
        return "—"
    places = minor_units(currency) if places is None else places
    text = _grouped(_quantized(Decimal(value), places), places)
    return f"{text} {currency}" if currency else text


@pass_eval_context
def money_filter(eval_ctx, value, currency: str | None = None, exact: bool = False):
    """`{{ amount|money(currency) }}`; `exact=True` on detail pages shows every decimal.

    In HTML the amount is a <span class="money"> whose title holds the exact value when
    the display rounded it; in text (e-mails) it is the plain text of money()."""
    if value is None:
        return "—"
    shown = exact_text(value, currency) if exact else money(value, currency)
    if not eval_ctx.autoescape:
        return shown
    full = exact_text(value, currency)
    title = f' title="exact: {escape(full)}"' if full != shown else ""
    css = "money money-exact" if exact else "money"
    return Markup(f'<span class="{css}" data-currency="{escape(currency or "")}"{title}>{escape(shown)}</span>')


@pass_eval_context
def money_exact_filter(eval_ctx, value, currency: str | None = None):
    """`|money_exact(cur)`: the name templates used before the rule; the same filter, exact."""
    return money_filter(eval_ctx, value, currency, exact=True)


def rate(value, currency: str | None = None) -> str:
    """Per-minute rates are prices, not amounts: every significant decimal (at least 4)."""
    if value is None:
        return "—"
    d = Decimal(value).normalize()
    exponent = d.as_tuple().exponent
    places = max(4, -exponent if isinstance(exponent, int) else 4)
    return money(value, currency, places)


@pass_eval_context
def rate_filter(eval_ctx, value, currency: str | None = None):
    shown = rate(value, currency)
    if value is None or not eval_ctx.autoescape:
        return shown
    return Markup(f'<span class="rate">{escape(shown)}</span>')


# ----------------------------------------------------------------------------- time

def datetime_short(value: datetime | None, seconds: bool = True) -> str:
    """ISO date and 24-hour time in the operator's time zone (naive values are UTC)."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(local_tz())
        return value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


# A browser draws <input type="date"> in its own locale (11/07/2026 in en-US) and
# type="datetime-local" with a 12-hour clock there: dates are typed as ISO text instead.
_TYPED = {
    "DateField": {"type": "text", "placeholder": "YYYY-MM-DD", "pattern": r"\d{4}-\d{2}-\d{2}",
                  "inputmode": "numeric", "autocomplete": "off"},
    "DateTimeLocalField": {"type": "text", "placeholder": "YYYY-MM-DD HH:MM",
                           "pattern": r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2})?", "autocomplete": "off"},
}
_TYPED["LocalDateTimeField"] = _TYPED["DateTimeLocalField"]


def input_attrs(field) -> dict:
    """Extra attributes of a form control: ISO text entry for dates and date-times."""
    return dict(_TYPED.get(field.type, {}))


def timezone_name() -> str:
    return str(local_tz().key)


def moment_text(value: datetime | None) -> str:
    """A moment in a sentence: date and time in the operator's time zone, named."""
    return f"{datetime_short(value, seconds=False)} ({timezone_name()})"


def duration(seconds) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def url_with(**changes) -> str:
    """The current URL with some query arguments replaced (None removes one)."""
    args = request.args.to_dict()
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value
    # Built from the path, not url_for: a query argument may be called `endpoint`.
    query = urlencode(args)
    return request.path + ("?" + query if query else "")
