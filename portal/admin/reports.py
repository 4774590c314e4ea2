"""Reports page: tables, charts and CSV by day, customer, provider, destination."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

from flask import Response, render_template, request

from . import bp
from ..choices import options
from ..extensions import db
from ..cdrs import services as cdr_services
from ..models import Customer, Settings
from ..reports import services
from ..reports.forms import ReportForm


def _connection():
    return db.session.connection().connection.dbapi_connection


def _today() -> date:
    return datetime.now(timezone.utc).date()


def report_currency(requested: str | None, customer_id: int | None) -> tuple[str, bool, list[str]]:
    """(the currency of the amounts, whether to keep only its customers, the currencies in use)."""
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
    currencies = cdr_services.currencies_in_use(_connection())
    form.currency.choices = options([(c, c) for c in currencies] or [("", "—")])
    valid = form.validate()
    date_to = form.date_to.data if valid and form.date_to.data else _today()
    date_from = form.date_from.data if valid and form.date_from.data else date_to - timedelta(days=29)
    if date_from > date_to:
        date_from = date_to - timedelta(days=29)
    dimension = form.dimension.data if form.dimension.data in services.DIMENSIONS else "day"
    customer_id = int(form.customer_id.data) if valid and (form.customer_id.data or "").isdigit() else None
    currency, only_currency, currencies = report_currency(form.currency.data, customer_id)
    report = services.run(_connection(), dimension, date_from, date_to, customer_id, currency, only_currency)
    form.currency.data = currency
    if len(currencies) <= 1 or customer_id is not None:
        del form.currency
    return form, report


@bp.route("/reports")
def reports():
    form, report = _report_from_args()
    form.date_from.data, form.date_to.data = report.date_from, report.date_to
    args = {k: v for k, v in request.args.items() if v}
    args.update(dimension=report.dimension, date_from=report.date_from.isoformat(), date_to=report.date_to.isoformat())
    return render_template("admin/reports.html", form=form, report=report, columns=services.COLUMNS,
                           dimensions=services.DIMENSIONS, args=args,
                           chart=json.dumps(services.chart_data(report)))


@bp.route("/reports.csv")
def reports_csv():
    _, report = _report_from_args()
    filename = f"report-{report.dimension}-{report.date_from}-{report.date_to}.csv"
    return Response(services.to_csv(report), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
