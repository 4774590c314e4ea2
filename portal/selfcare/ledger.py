"""Ledger: charges, payments, credit notes and adjustments with the running balance."""
from flask import render_template, request

from .. import dbapi
from ..customers.services import funds
from ..ledger import services
from . import bp, own_customer_id
from ._forms import LedgerFilterForm
from ._views import page_arg, per_page


@bp.route("/ledger")
def ledger():
    conn, customer_id = dbapi.connection(), own_customer_id()
    form = LedgerFilterForm(request.args)
    page = page_arg()
    rows, total, days, period = [], 0, [], None
    valid = form.validate()
    if valid:
        flt = services.LedgerFilter(form.date_from.data, form.date_to.data, form.kind.data or None)
        if form.view.data == "days":
            days, total = services.days(conn, customer_id, flt, page=page, per_page=per_page())
        else:
            rows, total = services.entries(conn, customer_id, flt, page=page, per_page=per_page())
        if flt.date_from or flt.date_to:
            period = services.period(conn, customer_id, flt)
    return render_template("selfcare/ledger.html", form=form, rows=rows, days=days, total=total, page=page,
                           per_page=per_page(), period=period, funds=funds(conn, customer_id),
                           kinds=services.LABELS, timezone=dbapi.timezone(conn)), \
        200 if valid else 400
