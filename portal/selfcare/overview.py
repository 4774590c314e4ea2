"""Overview: balance, available funds, calls in progress, this month, recent calls."""
from flask import render_template

from . import _services as services
from . import bp, own_customer_id


@bp.route("/")
def overview():
    customer_id = own_customer_id()
    return render_template(
        "selfcare/overview.html",
        funds=services.funds(customer_id),
        live=services.calls_in_progress(customer_id),
        month=services.month_summary(customer_id),
        recent=services.recent_calls(customer_id),
    )
