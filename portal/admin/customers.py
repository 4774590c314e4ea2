"""Customers: list, create, edit, enable/disable, delete; the customer page: a summary
(balance, reserved, available, calls in progress, calls today, margin this month), then
tabs for the account, endpoints, portal users, routing rules, the ledger (a line per
day, its entries on demand; top-up, payment, credit note, adjustment), invoices, calls
and reports. Each tab runs only its own queries."""
from __future__ import annotations

from decimal import Decimal

import json
from datetime import date, timedelta

from flask import abort, flash, redirect, render_template, url_for
from sqlalchemy import func, select

from .. import dbapi
from ..cdrs import services as cdr_services
from ..customers.services import calls_in_progress, funds
from ..extensions import db
from ..formatting import exact_text, money
from ..ledger import services as ledger
from ..localtime import local_today
from ..models import CallHold, Customer, Endpoint, Invoice, Ratecard, RoutingRule, Settings, User
from ..reports import services as report_services
from . import bp
from .manage import services
from .manage.common import (arg_text, deleted, get_or_404, page_number, paginate, render_form_page, searched,
                            sorted_by, toggled)
from .manage.forms import CustomerForm, LedgerForm, form_data


def _holds_by_customer():
    return (select(CallHold.customer_id, func.sum(CallHold.amount).label("holds"), func.count().label("calls"))
            .group_by(CallHold.customer_id).subquery())


@bp.route("/customers")
def customers():
    holds = _holds_by_customer()
    held = func.coalesce(holds.c.holds, 0)
    available = Customer.balance + Customer.credit_limit - held
    stmt = (select(Customer, held.label("holds"), func.coalesce(holds.c.calls, 0).label("calls"),
                   available.label("available"))
            .outerjoin(holds, holds.c.customer_id == Customer.id))
    stmt = searched(stmt, arg_text("q"), Customer.name, Customer.email)
    if arg_text("billing") in ("prepaid", "postpaid"):
        stmt = stmt.where(Customer.billing_type == arg_text("billing"))
    if arg_text("status") in ("enabled", "disabled"):
        stmt = stmt.where(Customer.enabled.is_(arg_text("status") == "enabled"))
    stmt = sorted_by(stmt, {"name": Customer.name, "balance": Customer.balance, "available": available,
                            "created": Customer.created_at, "calls": func.coalesce(holds.c.calls, 0)}, "name")
    return render_template("admin/customers.html", page=paginate(stmt))


def _customer_form(customer: Customer | None = None) -> CustomerForm:
    form = CustomerForm(obj=customer)
    form.set_ratecard_choices(db.session.scalars(select(Ratecard).order_by(Ratecard.name)))
    if customer is not None:
        del form.opening_balance
        if not form.is_submitted():
            for name, link in zip(form.RATECARD_FIELDS, customer.ratecard_links):
                form[name].data = link.ratecard_id
    elif not form.is_submitted():
        settings = Settings.get()
        form.currency.data = settings.currency
    return form


@bp.route("/customers/new", methods=["GET", "POST"])
def customer_new():
    form = _customer_form()
    if form.validate_on_submit():
        data = form_data(form, "opening_balance", *form.RATECARD_FIELDS)
        data["credit_limit"] = data["credit_limit"] or 0
        try:
            customer = services.save_customer(Customer(), data, form.ratecard_ids(), form.opening_balance.data)
        except services.AdminError as exc:
            flash(str(exc), "danger")
        else:
            flash(f"Customer {customer.name} created. Next: add an endpoint so its calls are recognised.", "success")
            return redirect(url_for("admin.customer", customer_id=customer.id))
    return render_form_page(form, "New customer", url_for("admin.customers"),
                            [("Customers", url_for("admin.customers"))])


@bp.route("/customers/<int:customer_id>/edit", methods=["GET", "POST"])
def customer_edit(customer_id: int):
    customer = get_or_404(Customer, customer_id)
    form = _customer_form(customer)
    if form.validate_on_submit():
        data = form_data(form, *form.RATECARD_FIELDS)
        data["credit_limit"] = data["credit_limit"] or 0
        try:
            services.save_customer(customer, data, form.ratecard_ids())
        except services.AdminError as exc:
            flash(str(exc), "danger")
        else:
            flash(f"Customer {customer.name} saved.", "success")
            return redirect(url_for("admin.customer", customer_id=customer.id))
    return render_form_page(form, f"Edit {customer.name}", url_for("admin.customer", customer_id=customer.id),
                            [("Customers", url_for("admin.customers")),
                             (customer.name, url_for("admin.customer", customer_id=customer.id))])


TABS = [("overview", "Overview"), ("endpoints", "Endpoints"), ("users", "Portal users"),
        ("rules", "Routing rules"), ("ledger", "Ledger"), ("invoices", "Invoices"), ("calls", "Calls"),
        ("reports", "Reports")]


def _summary(customer: Customer) -> dict:
    """The figures above the tabs: the customer's funds (customers.funds: balance, credit
    and holds in one statement) and two indexed aggregates of its calls
    (ix_cdr_customer_id_start_stamp_id)."""
    conn, today = dbapi.connection(), local_today()
    money_now = funds(conn, customer.id)
    month = cdr_services.totals(conn, cdr_services.CdrFilter(customer_id=customer.id, date_from=today.replace(day=1),
                                                             date_to=today))
    return {"held": money_now.holds, "available": money_now.available, "calls_live": money_now.calls_in_progress,
            "today": cdr_services.totals(conn, cdr_services.CdrFilter(customer_id=customer.id, date_from=today,
                                                                      date_to=today)),
            "month": month, "month_start": today.replace(day=1),
            "margin_percent": (month["margin"] * 100 / month["revenue"]).quantize(Decimal("0.1"))
            if month["revenue"] else None}


def _tab_data(customer: Customer, tab: str) -> dict:
    cid = customer.id
    if tab == "overview":
        return {"holds": calls_in_progress(dbapi.connection(), customer_id=cid)}
    if tab == "endpoints":
        return {"endpoints": db.session.scalars(select(Endpoint).where(Endpoint.customer_id == cid)
                                                .order_by(Endpoint.name)).all()}
    if tab == "users":
        return {"users": db.session.scalars(select(User).where(User.customer_id == cid).order_by(User.email)).all()}
    if tab == "rules":
        return {"rules": db.session.scalars(select(RoutingRule).where(RoutingRule.customer_id == cid)
                                            .order_by(RoutingRule.prefix)).all()}
    if tab == "ledger":
        return _ledger_tab(cid)
    if tab == "invoices":
        return {"invoices": paginate(select(Invoice).where(Invoice.customer_id == cid)
                                     .order_by(Invoice.period_start.desc(), Invoice.id.desc()), per_page=25)}
    if tab == "calls":
        calls = cdr_services.page(dbapi.connection(), cdr_services.CdrFilter(customer_id=cid), size=25)
        return {"calls": calls.rows}
    if tab == "reports":
        today = local_today()
        report = report_services.run(dbapi.connection(), "day", today - timedelta(days=29), today, cid)
        report.currency = customer.currency
        return {"report": report, "report_columns": report_services.COLUMNS,
                "chart": json.dumps(report_services.chart_data(report))}
    return {}


def _ledger_tab(customer_id: int) -> dict:
    """A line per day (calls summed, other entries counted in), newest first; `?day=`
    opens that day's entries with the balance after each; `?view=entries` lists every
    entry. Both from the ledger domain (portal/ledger), as in self care, with the author
    of each entry (staff only)."""
    conn, per_page, page = dbapi.connection(), 25, page_number()
    if arg_text("view") == "entries":
        rows, total = ledger.entries(conn, customer_id, page=page, per_page=per_page, with_author=True)
        return {"view": "entries", "entries": rows, "page": page, "per_page": per_page, "total": total}
    days, total = ledger.days(conn, customer_id, page=page, per_page=per_page)
    opened, opened_rows, opened_total = None, [], 0
    day_arg = arg_text("day")
    if day_arg:
        try:
            opened = date.fromisoformat(day_arg)
        except ValueError:
            abort(400, f"{day_arg!r} is not a date (YYYY-MM-DD)")
        opened_rows, opened_total = ledger.entries(conn, customer_id, ledger.LedgerFilter(opened, opened),
                                                   per_page=DAY_ENTRIES, with_author=True)
    return {"view": "days", "days": days, "page": page, "per_page": per_page, "total": total, "opened": opened,
            "opened_rows": opened_rows, "opened_total": opened_total}


DAY_ENTRIES = 200   # entries shown when a day is opened; the CDR browser has the rest


def _detail(customer: Customer, ledger_form: LedgerForm, tab: str | None = None):
    tab = tab or arg_text("tab") or "overview"
    if tab not in dict(TABS):
        abort(404)
    counts = {name: db.session.scalar(select(func.count()).select_from(model).where(model.customer_id == customer.id))
              for name, model in (("endpoints", Endpoint), ("users", User), ("rules", RoutingRule))}
    context = dict(customer=customer, summary=_summary(customer), tabs=TABS, tab=tab, holds=[],
                   counts=counts, form=ledger_form)
    context.update(_tab_data(customer, tab))
    return render_template("admin/customer_detail.html", **context), 400 if ledger_form.errors else 200


@bp.route("/customers/<int:customer_id>")
def customer(customer_id: int):
    return _detail(get_or_404(Customer, customer_id), LedgerForm(formdata=None))


@bp.route("/customers/<int:customer_id>/ledger", methods=["POST"])
def customer_ledger(customer_id: int):
    customer = get_or_404(Customer, customer_id)
    form = LedgerForm()
    if form.validate_on_submit():
        try:
            entry = services.post_ledger(customer, form.kind.data, form.amount.data, form.reference.data, form.note.data)
        except services.AdminError as exc:
            flash(str(exc), "danger")
        else:
            label = form.LABELS[entry.kind]
            # The amount as it was typed (exact), the balance by the display rule.
            flash(f"{label} of {exact_text(entry.amount, customer.currency)} posted; "
                  f"the balance is now {money(customer.balance, customer.currency)}.", "success")
            return redirect(url_for("admin.customer", customer_id=customer.id, tab="ledger"))
    return _detail(customer, form, "ledger")


@bp.route("/customers/<int:customer_id>/toggle", methods=["POST"])
def customer_toggle(customer_id: int):
    customer = get_or_404(Customer, customer_id)
    return toggled(customer, "customer", f"Customer {customer.name}", url_for("admin.customer", customer_id=customer.id),
                   when_off=": its calls are refused")


@bp.route("/customers/<int:customer_id>/delete", methods=["POST"])
def customer_delete(customer_id: int):
    customer = get_or_404(Customer, customer_id)
    return deleted(Customer, customer, "customer", f"Customer {customer.name}", url_for("admin.customers"),
                   url_for("admin.customer", customer_id=customer_id))
