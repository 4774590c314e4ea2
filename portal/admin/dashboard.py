"""Back-office dashboard: today / this month, calls in progress, unrated CDRs, low balances."""
from __future__ import annotations

import json
from datetime import timedelta

from flask import render_template

from . import bp
from .. import dbapi
from ..cdrs import services as cdr_services
from ..customers import services as customers
from ..localtime import local_today
from ..models import Settings
from ..replica import reads_replica
from ..reports import services


@bp.route("/")
@bp.route("/dashboard")
@reads_replica
def dashboard():
    conn = dbapi.connection()
    today = local_today()
    month_start = today.replace(day=1)
    # Money is never added across currencies: with customers in several, the figures are
    # those of the customers paying in the default currency (the others: Reports).
    currency = _currency()
    currencies = cdr_services.currencies_in_use(conn)
    only = currency if len(currencies) > 1 else None
    stats = {
        "today": cdr_services.totals(conn, cdr_services.CdrFilter(date_from=today, date_to=today, currency=only)),
        "month": cdr_services.totals(conn, cdr_services.CdrFilter(date_from=month_start, date_to=today, currency=only)),
    }
    trend = services.run(conn, "day", today - timedelta(days=13), today, currency=only)
    return render_template("admin/dashboard.html", stats=stats, live=_live_calls(conn),
                           unrated=cdr_services.unrated_count(conn),
                           to_review=cdr_services.review_count(conn, today - timedelta(days=30)),
                           review_from=today - timedelta(days=30),
                           low_balance=customers.low_balance(conn),
                           below_zero=customers.prepaid_below_zero(conn),
                           chart=json.dumps(services.chart_data(trend, currency)), currency=currency,
                           other_currencies=[c for c in currencies if c != currency] if only else [])


def _live_calls(conn) -> dict:
    """Calls in progress now: holds not yet past their expiry (stale ones are the sweeper's)."""
    return {**customers.holds_summary(conn, include_stale=False),
            "rows": customers.calls_in_progress(conn, limit=20, include_stale=False)}


def _currency() -> str:
    settings = Settings.get()
    return settings.currency if settings else ""
