"""Calls: the customer's CDRs with filters, keyset pages, totals and a streamed CSV."""
from flask import abort, render_template, request, url_for

from .. import csvstream, dbapi
from ..cdrs import services
from ..choices import options
from ..customers.services import funds
from ..endpoints.services import names as endpoint_names
from ..replica import reads_replica
from . import bp, own_customer_id
from ._forms import CdrFilterForm
from ._views import per_page


def _filter(conn, customer_id: int):
    """The filter form bound to the query string, and the filter it describes (None
    when the form has errors). An endpoint id that is not the customer's answers 404.
    Dates are days in the database's time zone."""
    endpoints = endpoint_names(conn, customer_id=customer_id)
    form = CdrFilterForm(request.args)
    form.endpoint_id.choices = options([("", "All endpoints")] + [(str(e["id"]), e["name"]) for e in endpoints])
    raw_endpoint = request.args.get("endpoint_id", "")
    if raw_endpoint and raw_endpoint not in {str(e["id"]) for e in endpoints}:
        abort(404)
    if "date_from" not in request.args and "date_to" not in request.args:
        form.date_from.data = dbapi.today(conn).replace(day=1)  # default: this month so far
        form.date_from.raw_data = [form.date_from.data.isoformat()]
    if form.number.data and form.match.data == "contains":
        # digits anywhere are read along the date index: at most 31 days (as in the back office)
        try:
            window = services.contains_window(form.date_from.data if "date_from" in request.args else None,
                                              form.date_to.data, dbapi.today(conn))
            for field, day in zip((form.date_from, form.date_to), window):
                field.data, field.raw_data = day, [day.isoformat()]
        except services.CdrError as exc:
            form.validate()
            form.match.errors = [str(exc)]
            return form, None
    if not form.validate():
        return form, None
    return form, services.CdrFilter(
        date_from=form.date_from.data, date_to=form.date_to.data,
        endpoint_id=int(form.endpoint_id.data) if form.endpoint_id.data else None,
        prefix=(form.prefix.data or "").lstrip("+") or None, answered=form.answered.data, zone=None,
        number=form.number.data or None, number_in=form.number_in.data or "either", match=form.match.data or "prefix")


@bp.route("/cdrs")
@reads_replica
def cdrs():
    conn, customer_id = dbapi.connection(), own_customer_id()
    form, flt = _filter(conn, customer_id)
    page, totals = services.Page([]), None
    if flt is not None:
        try:
            page = services.page(conn, flt, older_than=request.args.get("before"),
                                 newer_than=request.args.get("after"), size=per_page(), customer_id=customer_id)
        except services.CdrError as exc:
            abort(400, description=str(exc))
        totals = services.totals(conn, flt, customer_id=customer_id)
    csv_args = {k: v for k, v in request.args.items() if k not in ("before", "after")}
    if form.date_from.data and "date_from" not in csv_args:
        csv_args["date_from"] = form.date_from.data.isoformat()
    return render_template("selfcare/cdrs.html", form=form, rows=page.rows,
                           older=page.older.encode() if page.older else None,
                           newer=page.newer.encode() if page.newer else None, totals=totals,
                           currency=funds(conn, customer_id).currency, csv_url=url_for(".cdrs_csv", **csv_args),
                           timezone=dbapi.timezone(conn)), 200 if flt is not None else 400


@bp.route("/cdrs.csv")
@reads_replica
def cdrs_csv():
    conn, customer_id = dbapi.connection(), own_customer_id()
    form, flt = _filter(conn, customer_id)
    if flt is None:
        errors = "; ".join(f"{form[name].label.text}: {' '.join(errs)}" for name, errs in form.errors.items())
        abort(400, description=f"The filter is not valid ({errors}).")
    return csvstream.export_response(f"calls-{dbapi.today(conn).isoformat()}.csv",
                                     services.export(flt, customer_id=customer_id))
