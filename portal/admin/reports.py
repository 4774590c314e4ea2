"""Reports page: tables, charts and CSV by day, customer, provider, destination."""
from __future__ import annotations

import json
from datetime import date, timedelta

from flask import Response, render_template, request

from . import bp
from ..choices import options
from ..extensions import db
from ..localtime import local_today
from ..models import Customer
from ..reports import services
from ..reports.forms import ReportForm


def _connection():
    return db.session.connection().connection.dbapi_connection


def _today() -> date:
    return local_today()


def _report_from_args():
    form = ReportForm(request.args)
    form.customer_id.choices = options([("", "All customers")] + [(str(i), n) for i, n in db.session.execute(
        db.select(Customer.id, Customer.name).order_by(Customer.name))])
    valid = form.validate()
    date_to = form.date_to.data if valid and form.date_to.data else _today()
    date_from = form.date_from.data if valid and form.date_from.data else date_to - timedelta(days=29)
    if date_from > date_to:
        date_from = date_to - timedelta(days=29)
    dimension = form.dimension.data if form.dimension.data in services.DIMENSIONS else "day"
    customer_id = int(form.customer_id.data) if valid and (form.customer_id.data or "").isdigit() else None
    report = services.run(_connection(), dimension, date_from, date_to, customer_id)
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
    filename = f"report-{report.dimension}-{report.date_from}-{report.date_to}.csv"
    return Response(services.to_csv(report), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
