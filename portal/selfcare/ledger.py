"""Ledger: charges, payments, credit notes and adjustments with the running balance."""
from flask import render_template, request

from . import _services as services
from . import bp, own_customer_id
from ._forms import LedgerFilterForm
from ._views import page_arg, per_page


@bp.route("/ledger")
def ledger():
    customer_id = own_customer_id()
    form = LedgerFilterForm(request.args)
    page = page_arg()
    rows, total, days, period = [], 0, [], None
    valid = form.validate()
    if valid:
        dates = dict(date_from=form.date_from.data, date_to=form.date_to.data)
        if form.view.data == "days":
            days, total = services.ledger_days(customer_id, page=page, per_page=per_page(), **dates)
        else:
            rows, total = services.ledger_page(customer_id, group=form.kind.data or None, page=page,
                                               per_page=per_page(), **dates)
        if form.date_from.data or form.date_to.data:
            period = services.ledger_period(customer_id, **dates)
    return render_template("selfcare/ledger.html", form=form, rows=rows, days=days, total=total, page=page,
                           per_page=per_page(), period=period, funds=services.funds(customer_id),
                           kinds=services.LEDGER_KINDS, timezone=services.db_timezone()), \
        200 if valid else 400
