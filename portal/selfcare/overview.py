"""Overview: balance, available funds, calls in progress, this month, recent calls."""
from flask import render_template

from .. import dbapi
from ..cdrs import services as cdrs
from ..customers import services as customers
from . import bp, own_customer_id


@bp.route("/")
def overview():
    conn, customer_id = dbapi.connection(), own_customer_id()
    month_start = dbapi.today(conn).replace(day=1)
    return render_template(
        "selfcare/overview.html",
        funds=customers.funds(conn, customer_id),
        live=customers.calls_in_progress(conn, customer_id=customer_id),
        month_start=month_start,
        month=cdrs.totals(conn, cdrs.CdrFilter(date_from=month_start, zone=None), customer_id=customer_id),
        recent=cdrs.recent(conn, customer_id=customer_id),
    )
