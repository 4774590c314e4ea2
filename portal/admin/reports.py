"""Reports page: tables, charts and CSV by day, customer, provider, destination."""
from __future__ import annotations

import json
from datetime import date, timedelta

from flask import abort, render_template, request

from . import bp
from .. import csvstream
from ..choices import options
from ..dbapi import connection as _connection
from ..extensions import db
from ..cdrs import services as cdr_services
from ..localtime import local_today
from ..models import Customer, Settings
from ..replica import reads_replica
from ..reports import services
from ._forms import ReportForm


def _today() -> date:
    return local_today()


def report_currency(requested: str | None, customer_id: int | None) -> tuple[str, bool, list[str]]:
    """(the currency of the amounts, whether to keep only its customers, the currencies in
    use): money of customers paying in different currencies is never added."""
    currencies = cdr_services.currencies_in_use(_connection())
    default = Settings.get().currency
    if customer_id is not None:
        chosen = db.session.get(Customer, customer_id)
        return (chosen.currency if chosen else default), False, currencies
    if len(currencies) <= 1:
        return (currencies[0] if currencies else default), False, currencies
    if requested in currencies:
        return requested, True, currencies
    return (default if default in currencies else currencies[0]), True, currencies


def _report_from_args():
    form = ReportForm(request.args)
    form.customer_id.choices = options([("", "All customers")] + [(str(i), n) for i, n in db.session.execute(
        db.select(Customer.id, Customer.name).order_by(Customer.name))])
    form.currency.choices = options([(c, c) for c in cdr_services.currencies_in_use(_connection())] or [("", "—")])
    if not form.validate():
        abort(400, description="The report's filter is not valid: " + "; ".join(
            f"{form[name].label.text}: {' '.join(errors)}" for name, errors in form.errors.items()) + ".")
    date_to = form.date_to.data or _today()
    date_from = form.date_from.data or date_to - timedelta(days=29)
    if date_from > date_to:
        date_from = date_to - timedelta(days=29)
    dimension = form.dimension.data if form.dimension.data in services.DIMENSIONS else "day"
    customer_id = int(form.customer_id.data) if (form.customer_id.data or "").isdigit() else None
    currency, only_currency, currencies = report_currency(form.currency.data, customer_id)
    try:
        report = services.run(_connection(), dimension, date_from, date_to, customer_id, currency, only_currency)
    except services.ReportError as exc:
        abort(400, description=f"{str(exc).capitalize()}: choose a shorter period.")
    form.currency.data = currency
    if len(currencies) <= 1 or customer_id is not None:
        del form.currency
    return form, report


@bp.route("/reports")
@reads_replica
def reports():
    form, report = _report_from_args()
    form.date_from.data, form.date_to.data = report.date_from, report.date_to
    args = {k: v for k, v in request.args.items() if v}
    args.update(dimension=report.dimension, date_from=report.date_from.isoformat(), date_to=report.date_to.isoformat())
    return render_template("admin/reports.html", form=form, report=report, columns=services.COLUMNS,
                           dimensions=services.DIMENSIONS, args=args, currency=report.currency,
                           chart=json.dumps(services.chart_data(report)))


@bp.route("/reports.csv")
@reads_replica
def reports_csv():
    _, report = _report_from_args()
    return csvstream.response(f"report-{report.dimension}-{report.date_from}-{report.date_to}.csv",
                              services.csv_header(report), lambda: [services.csv_rows(report)])
