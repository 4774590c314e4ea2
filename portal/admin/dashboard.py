"""Back-office dashboard: today / this month, calls in progress, unrated CDRs, low balances."""
from __future__ import annotations

import json
from datetime import timedelta

from flask import render_template

from . import bp
from ..cdrs import services as cdr_services
from ..extensions import db
from ..localtime import local_today
from ..models import Settings
from ..reports import services


@bp.route("/")
@bp.route("/dashboard")
def dashboard():
    conn = db.session.connection().connection.dbapi_connection
    today = local_today()
    month_start = today.replace(day=1)
    stats = {
        "today": cdr_services.totals(conn, cdr_services.CdrFilter(date_from=today, date_to=today)),
        "month": cdr_services.totals(conn, cdr_services.CdrFilter(date_from=month_start, date_to=today)),
    }
    trend = services.run(conn, "day", today - timedelta(days=13), today)
    return render_template("admin/dashboard.html", stats=stats, live=services.live_calls(conn),
                           unrated=cdr_services.unrated_count(conn),
                           low_balance=services.low_balance_customers(conn),
                           chart=json.dumps(services.chart_data(trend, _currency())), currency=_currency())


def _currency() -> str:
    settings = Settings.get()
    return settings.currency if settings else ""
