"""Routing rules: for a customer and a prefix, only the listed providers carry the call."""
from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from sqlalchemy import select

from ..extensions import db
from ..models import Customer, Provider, RoutingRule
from . import bp
from .manage import services
from .manage.common import arg_int, arg_text, choices_of, deleted, get_or_404, paginate, prefix_searched, render_form_page, sorted_by
from .manage.forms import RoutingRuleForm


@bp.route("/routing-rules")
def routing_rules():
    stmt = select(RoutingRule, Customer).join(Customer, RoutingRule.customer_id == Customer.id)
    stmt = prefix_searched(stmt, arg_text("q"), RoutingRule.prefix)
    if arg_int("customer_id"):
        stmt = stmt.where(RoutingRule.customer_id == arg_int("customer_id"))
    stmt = sorted_by(stmt, {"customer": Customer.name, "prefix": RoutingRule.prefix}, "customer")
    customers = db.session.execute(select(Customer.id, Customer.name).order_by(Customer.name)).all()
    return render_template("admin/routing_rules.html", page=paginate(stmt), customers=customers)


def _rule_page(rule: RoutingRule, title: str):
    form = RoutingRuleForm(obj=rule)
    form.customer_id.choices = choices_of(Customer)
    form.provider_ids.choices = choices_of(Provider, lambda p: p.name + ("" if p.enabled else " (disabled)"))
    form.provider_ids.render_kw = {"size": min(max(len(form.provider_ids.choices), 3), 12)}
    if not form.is_submitted():
        form.provider_ids.data = [p.id for p in rule.providers]
        if rule.id is None and arg_int("customer_id"):
            form.customer_id.data = arg_int("customer_id")
    if form.validate_on_submit():
        try:
            services.save_routing_rule(rule, form.customer_id.data, form.prefix.data, form.provider_ids.data)
        except services.AdminError as exc:
            flash(str(exc), "danger")
        else:
            flash(f"Routing rule for prefix {rule.prefix} saved.", "success")
            return redirect(url_for("admin.customer", customer_id=rule.customer_id))
    return render_form_page(form, title, url_for("admin.routing_rules"),
                            [("Customers", url_for("admin.customers")), ("Routing rules", url_for("admin.routing_rules"))],
                            intro="Calls of this customer whose canonical destination starts with the prefix go only "
                                  "to these providers (the longest matching rule wins); other calls are unaffected.")


@bp.route("/routing-rules/new", methods=["GET", "POST"])
def routing_rule_new():
    return _rule_page(RoutingRule(), "New routing rule")


@bp.route("/routing-rules/<int:rule_id>/edit", methods=["GET", "POST"])
def routing_rule_edit(rule_id: int):
    rule = get_or_404(RoutingRule, rule_id)
    return _rule_page(rule, f"Edit routing rule {rule.prefix}")


@bp.route("/routing-rules/<int:rule_id>/delete", methods=["POST"])
def routing_rule_delete(rule_id: int):
    rule = get_or_404(RoutingRule, rule_id)
    return deleted(RoutingRule, rule, "routing_rule", f"Routing rule {rule.prefix}", url_for("admin.routing_rules"))
