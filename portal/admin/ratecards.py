"""Ratecards (sell side) and their rates. CSV import/export of rate decks lives elsewhere."""
from __future__ import annotations

from flask import render_template, url_for
from sqlalchemy import func, select

from ..extensions import db
from ..models import Customer, CustomerRatecard, Ratecard, SellRate, Settings
from . import bp
from .manage.common import arg_text, deleted, get_or_404, paginate, render_form_page, saved, searched, sorted_by
from ..rateversions import services as rate_versions
from .manage.rates import STATES, add_rate_routes, rates_page
from .manage.forms import RatecardForm, form_data


@bp.route("/ratecards")
def ratecards():
    n_rates = select(func.count()).where(SellRate.ratecard_id == Ratecard.id).correlate(Ratecard).scalar_subquery()
    n_customers = (select(func.count()).where(CustomerRatecard.ratecard_id == Ratecard.id)
                   .correlate(Ratecard).scalar_subquery())
    stmt = select(Ratecard, n_rates.label("rates"), n_customers.label("customers"))
    stmt = searched(stmt, arg_text("q"), Ratecard.name)
    stmt = sorted_by(stmt, {"name": Ratecard.name, "currency": Ratecard.currency, "rates": n_rates}, "name")
    return render_template("admin/ratecards.html", page=paginate(stmt))


@bp.route("/ratecards/new", methods=["GET", "POST"])
def ratecard_new():
    form = RatecardForm()
    if not form.is_submitted():
        form.currency.data = Settings.get().currency
    if form.validate_on_submit():
        response = saved(Ratecard(), form_data(form), "ratecard", f"Ratecard {form.name.data}", url_for("admin.ratecards"))
        if response:
            return response
    return render_form_page(form, "New ratecard", url_for("admin.ratecards"), [("Ratecards", url_for("admin.ratecards"))])


@bp.route("/ratecards/<int:ratecard_id>/edit", methods=["GET", "POST"])
def ratecard_edit(ratecard_id: int):
    ratecard = get_or_404(Ratecard, ratecard_id)
    form = RatecardForm(obj=ratecard)
    form.customer_currencies = dict(db.session.execute(
        select(Customer.name, Customer.currency).join(CustomerRatecard, CustomerRatecard.customer_id == Customer.id)
        .where(CustomerRatecard.ratecard_id == ratecard.id)).all())
    back = url_for("admin.ratecard", ratecard_id=ratecard.id)
    if form.validate_on_submit():
        response = saved(ratecard, form_data(form), "ratecard", f"Ratecard {form.name.data}", back)
        if response:
            return response
    return render_form_page(form, f"Edit ratecard {ratecard.name}", back,
                            [("Ratecards", url_for("admin.ratecards")), (ratecard.name, back)])


@bp.route("/ratecards/<int:ratecard_id>/delete", methods=["POST"])
def ratecard_delete(ratecard_id: int):
    ratecard = get_or_404(Ratecard, ratecard_id)
    return deleted(Ratecard, ratecard, "ratecard", f"Ratecard {ratecard.name}", url_for("admin.ratecards"),
                   url_for("admin.ratecard", ratecard_id=ratecard_id))


@bp.route("/ratecards/<int:ratecard_id>")
def ratecard(ratecard_id: int):
    ratecard = get_or_404(Ratecard, ratecard_id)
    customers = db.session.scalars(
        select(Customer).join(CustomerRatecard, CustomerRatecard.customer_id == Customer.id)
        .where(CustomerRatecard.ratecard_id == ratecard.id).order_by(Customer.name)).all()
    return render_template("admin/ratecard_detail.html", ratecard=ratecard, customers=customers, states=STATES,
                           page=rates_page(SellRate, SellRate.ratecard_id, ratecard.id), now=rate_versions.now())


add_rate_routes(SellRate, Ratecard, owner_field="ratecard_id", entity="rate", noun="rate",
                new_rule="/ratecards/<int:ratecard_id>/rates/new", rule_prefix="/rates",
                endpoint_prefix="", list_view="admin.ratecards", list_label="Ratecards",
               history_rule="/ratecards/<int:ratecard_id>/prefixes/<prefix>")
