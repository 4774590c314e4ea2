"""Customers: list, create, edit, enable/disable, delete; detail page with funds, calls in
progress and the ledger (top-up, payment, credit note, adjustment)."""
from __future__ import annotations

from decimal import Decimal

from flask import flash, redirect, render_template, url_for
from sqlalchemy import func, select

from ..extensions import db
from ..formatting import exact_text, money
from ..models import CallHold, Customer, Endpoint, Ratecard, RoutingRule, Settings, User
from . import bp
from .manage import services
from .manage.common import arg_text, deleted, get_or_404, paginate, render_form_page, searched, sorted_by, toggled
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


def _detail(customer: Customer, ledger_form: LedgerForm):
    holds = list(db.session.scalars(select(CallHold).where(CallHold.customer_id == customer.id)
                                    .order_by(CallHold.created_at)))
    held = sum((h.amount for h in holds), start=Decimal(0))
    context = dict(
        customer=customer, holds=holds, held=held, available=services.available_funds(customer, held),
        endpoints=db.session.scalars(select(Endpoint).where(Endpoint.customer_id == customer.id)
                                     .order_by(Endpoint.name)).all(),
        users=db.session.scalars(select(User).where(User.customer_id == customer.id).order_by(User.email)).all(),
        rules=db.session.scalars(select(RoutingRule).where(RoutingRule.customer_id == customer.id)
                                 .order_by(RoutingRule.prefix)).all(),
        ledger=paginate(services.ledger_with_running_balance(customer.id), per_page=25),
        form=ledger_form,
    )
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
            return redirect(url_for("admin.customer", customer_id=customer.id))
    return _detail(customer, form)


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
