"""Calls: the customer's CDRs with filters, keyset pages, totals and a streamed CSV."""
from flask import abort, render_template, request, url_for

from . import _services as services
from . import bp, own_customer_id
from ..cdrs.services import CdrError, contains_window
from ..choices import options
from ._forms import CdrFilterForm
from ._views import csv_response, per_page


def _filter(customer_id: int):
    """The filter form bound to the query string, and the filter it describes (None
    when the form has errors). An endpoint id that is not the customer's answers 404."""
    endpoints = services.own_endpoints(customer_id)
    form = CdrFilterForm(request.args)
    form.endpoint_id.choices = options([("", "All endpoints")] + [(str(e["id"]), e["name"]) for e in endpoints])
    raw_endpoint = request.args.get("endpoint_id", "")
    if raw_endpoint and raw_endpoint not in {str(e["id"]) for e in endpoints}:
        abort(404)
    if "date_from" not in request.args and "date_to" not in request.args:
        form.date_from.data = services.today().replace(day=1)  # default: this month so far
        form.date_from.raw_data = [form.date_from.data.isoformat()]
    if form.number.data and form.match.data == "contains":
        # digits anywhere are read along the date index: at most 31 days (as in the back office)
        try:
            window = contains_window(form.date_from.data if "date_from" in request.args else None,
                                     form.date_to.data, services.today())
            for field, day in zip((form.date_from, form.date_to), window):
                field.data, field.raw_data = day, [day.isoformat()]
        except CdrError as exc:
            form.validate()
            form.match.errors = [str(exc)]
            return form, None
    if not form.validate():
        return form, None
    return form, services.CdrFilter(
        date_from=form.date_from.data, date_to=form.date_to.data,
        endpoint_id=int(form.endpoint_id.data) if form.endpoint_id.data else None,
        prefix=(form.prefix.data or "").lstrip("+") or None,
        answered={"yes": True, "no": False}.get(form.answered.data),
        number=form.number.data or None, number_in=form.number_in.data or "either", match=form.match.data or "prefix")


@bp.route("/cdrs")
def cdrs():
    customer_id = own_customer_id()
    form, flt = _filter(customer_id)
    rows, older, newer, totals = [], None, None, None
    if flt is not None:
        try:
            rows, older, newer = services.cdr_page(customer_id, flt, before=request.args.get("before"),
                                                   after=request.args.get("after"), per_page=per_page())
            totals = services.cdr_totals(customer_id, flt)
        except services.SelfcareError as exc:
            abort(400, description=str(exc))
    csv_args = {k: v for k, v in request.args.items() if k not in ("before", "after")}
    if form.date_from.data and "date_from" not in csv_args:
        csv_args["date_from"] = form.date_from.data.isoformat()
    return render_template("selfcare/cdrs.html", form=form, rows=rows, older=older, newer=newer, totals=totals,
                           currency=services.funds(customer_id).currency, csv_url=url_for(".cdrs_csv", **csv_args),
                           timezone=services.db_timezone())


@bp.route("/cdrs.csv")
def cdrs_csv():
    customer_id = own_customer_id()
    form, flt = _filter(customer_id)
    if flt is None:
        errors = "; ".join(f"{form[name].label.text}: {' '.join(errs)}" for name, errs in form.errors.items())
        abort(400, description=f"The filter is not valid ({errors}).")
    return csv_response(f"calls-{services.today().isoformat()}.csv", services.CDR_CSV_COLUMNS,
                        services.iter_cdrs(customer_id, flt))
