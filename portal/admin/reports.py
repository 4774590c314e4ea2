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
from ..localtime import local_today
from ..models import Customer
from ..reports import services
from ._forms import ReportForm


def _today() -> date:
    return local_today()


def _report_from_args():
    form = ReportForm(request.args)
    form.customer_id.choices = options([("", "All customers")] + [(str(i), n) for i, n in db.session.execute(
        db.select(Customer.id, Customer.name).order_by(Customer.name))])
    if not form.validate():
        abort(400, description="The report's filter is not valid: " + "; ".join(
            f"{form[name].label.text}: {' '.join(errors)}" for name, errors in form.errors.items()) + ".")
    date_to = form.date_to.data or _today()
    date_from = form.date_from.data or date_to - timedelta(days=29)
    if date_from > date_to:
        date_from = date_to - timedelta(days=29)
    dimension = form.dimension.data if form.dimension.data in services.DIMENSIONS else "day"
    customer_id = int(form.customer_id.data) if (form.customer_id.data or "").isdigit() else None
    try:
        report = services.run(_connection(), dimension, date_from, date_to, customer_id)
    except services.ReportError as exc:
        abort(400, description=f"{str(exc).capitalize()}: choose a shorter period.")
    report.currency = services.currency_of(_connection(), customer_id)
    return form, report


@bp.route("/reports")
def reports():
    form, report = _report_from_args()
    form.date_from.data, form.date_to.data = report.date_from, report.date_to
    args = {k: v for k, v in request.args.items() if v}
    args.update(dimension=report.dimension, date_from=report.date_from.isoformat(), date_to=report.date_to.isoformat())
    return render_template("admin/reports.html", form=form, report=report, columns=services.COLUMNS,
                           dimensions=services.DIMENSIONS, args=args, currency=report.currency,
                           chart=json.dumps(services.chart_data(report)))


@bp.route("/reports.csv")
def reports_csv():
    _, report = _report_from_args()
    return csvstream.response(f"report-{report.dimension}-{report.date_from}-{report.date_to}.csv",
                              services.csv_header(report), lambda: [services.csv_rows(report)])
