"""Rates: the customer's sell rates, the one that applies per prefix, search, CSV."""
from flask import abort, render_template, request

from .. import csvstream, dbapi
from ..rates import services
from . import bp, own_customer_id
from ._forms import RateSearchForm
from ._views import page_arg, per_page


@bp.route("/rates")
def rates():
    conn, customer_id = dbapi.connection(), own_customer_id()
    form = RateSearchForm(request.args)
    page = page_arg()
    rows, total, lookup = [], 0, None
    valid = form.validate()
    if valid:
        rows, total = services.applied(conn, customer_id, form.q.data, page=page, per_page=per_page())
        q = (form.q.data or "").strip().lstrip("+")
        if q.isdigit():
            lookup = services.for_number(conn, customer_id, q)
    return render_template("selfcare/rates.html", form=form, rows=rows, total=total, page=page, per_page=per_page(),
                           lookup=lookup, ratecards=services.ratecards(conn, customer_id)), \
        200 if valid else 400


@bp.route("/rates.csv")
def rates_csv():
    conn, customer_id = dbapi.connection(), own_customer_id()
    form = RateSearchForm(request.args)
    if not form.validate():
        abort(400, description="The search is not valid: " + " ".join(form.q.errors))
    return csvstream.export_response(f"rates-{dbapi.today(conn).isoformat()}.csv",
                                     services.export(customer_id, form.q.data))
