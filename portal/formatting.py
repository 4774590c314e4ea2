"""Jinja filters. Money is shown from Decimal, never through float."""
from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from urllib.parse import urlencode

from flask import request


def money(value, currency: str | None = None, places: int = 2) -> str:
    """Display an amount: half-up to `places` (2 by default), thousands separated.

    Display rounding only; stored amounts keep 6 decimals (see docs/rounding.md).
    """
    if value is None:
        return "—"
    quantum = Decimal(1).scaleb(-places)
    text = f"{Decimal(value).quantize(quantum, rounding=ROUND_HALF_UP):,.{places}f}"
    return f"{text} {currency}" if currency else text


def rate(value, currency: str | None = None) -> str:
    """Per-minute rates keep their significant decimals (at least 4)."""
    if value is None:
        return "—"
    d = Decimal(value).normalize()
    exponent = d.as_tuple().exponent
    places = max(4, -exponent if isinstance(exponent, int) else 4)
    return money(value, currency, places)


def datetime_short(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M:%S")


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
