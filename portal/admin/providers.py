"""Providers (carriers), their gateways and their rates (cost side)."""
from __future__ import annotations

from flask import redirect, render_template, url_for
from sqlalchemy import func, select

from ..models import Gateway, Provider, ProviderRate, Settings
from . import bp
from .manage.common import arg_text, deleted, get_or_404, paginate, render_form_page, saved, searched, sorted_by, toggled
from ..rateversions import services as rate_versions
from .manage.rates import STATES, add_rate_routes, rates_page
from .manage.forms import GatewayForm, ProviderForm, form_data


@bp.route("/providers")
def providers():
    n_gateways = select(func.count()).where(Gateway.provider_id == Provider.id).correlate(Provider).scalar_subquery()
    n_rates = select(func.count()).where(ProviderRate.provider_id == Provider.id).correlate(Provider).scalar_subquery()
    stmt = select(Provider, n_gateways.label("gateways"), n_rates.label("rates"))
    stmt = searched(stmt, arg_text("q"), Provider.name)
    if arg_text("status") in ("enabled", "disabled"):
        stmt = stmt.where(Provider.enabled.is_(arg_text("status") == "enabled"))
    stmt = sorted_by(stmt, {"name": Provider.name, "priority": Provider.priority, "rates": n_rates}, "name")
    return render_template("admin/providers.html", page=paginate(stmt))


@bp.route("/providers/new", methods=["GET", "POST"])
def provider_new():
    form = ProviderForm()
    if not form.is_submitted():
        form.currency.data = Settings.get().currency
    if form.validate_on_submit():
        provider = Provider()
        response = saved(provider, form_data(form), "provider", f"Provider {form.name.data}", url_for("admin.providers"))
        if response:
            return redirect(url_for("admin.provider", provider_id=provider.id))
    return render_form_page(form, "New provider", url_for("admin.providers"), [("Providers", url_for("admin.providers"))])


@bp.route("/providers/<int:provider_id>/edit", methods=["GET", "POST"])
def provider_edit(provider_id: int):
    provider = get_or_404(Provider, provider_id)
    form = ProviderForm(obj=provider)
    back = url_for("admin.provider", provider_id=provider.id)
    if form.validate_on_submit():
        response = saved(provider, form_data(form), "provider", f"Provider {form.name.data}", back)
        if response:
            return response
    return render_form_page(form, f"Edit provider {provider.name}", back,
                            [("Providers", url_for("admin.providers")), (provider.name, back)])


@bp.route("/providers/<int:provider_id>/toggle", methods=["POST"])
def provider_toggle(provider_id: int):
    provider = get_or_404(Provider, provider_id)
    return toggled(provider, "provider", f"Provider {provider.name}", url_for("admin.provider", provider_id=provider.id),
                   when_off=": no call is routed to it")


@bp.route("/providers/<int:provider_id>/delete", methods=["POST"])
def provider_delete(provider_id: int):
    provider = get_or_404(Provider, provider_id)
    return deleted(Provider, provider, "provider", f"Provider {provider.name}", url_for("admin.providers"),
                   url_for("admin.provider", provider_id=provider_id))


@bp.route("/providers/<int:provider_id>")
def provider(provider_id: int):
    provider = get_or_404(Provider, provider_id)
    return render_template("admin/provider_detail.html", provider=provider, states=STATES,
                           page=rates_page(ProviderRate, ProviderRate.provider_id, provider.id), now=rate_versions.now())


# ------------------------------------------------------------------ gateways

def _gateway_page(provider: Provider, gateway: Gateway, title: str):
    form = GatewayForm(obj=gateway if gateway.id is not None else None)
    back = url_for("admin.provider", provider_id=provider.id)
    if form.validate_on_submit():
        data = form_data(form)
        data["provider_id"] = provider.id
        response = saved(gateway, data, "gateway", f"Gateway {data['name']}", back)
        if response:
            return response
    return render_form_page(form, title, back, [("Providers", url_for("admin.providers")), (provider.name, back)])


@bp.route("/providers/<int:provider_id>/gateways/new", methods=["GET", "POST"])
def gateway_new(provider_id: int):
    provider = get_or_404(Provider, provider_id)
    return _gateway_page(provider, Gateway(), f"New gateway of {provider.name}")


@bp.route("/gateways/<int:gateway_id>/edit", methods=["GET", "POST"])
def gateway_edit(gateway_id: int):
    gateway = get_or_404(Gateway, gateway_id)
    return _gateway_page(gateway.provider, gateway, f"Edit gateway {gateway.name}")


@bp.route("/gateways/<int:gateway_id>/toggle", methods=["POST"])
def gateway_toggle(gateway_id: int):
    gateway = get_or_404(Gateway, gateway_id)
    return toggled(gateway, "gateway", f"Gateway {gateway.name}", url_for("admin.provider", provider_id=gateway.provider_id))


@bp.route("/gateways/<int:gateway_id>/delete", methods=["POST"])
def gateway_delete(gateway_id: int):
    gateway = get_or_404(Gateway, gateway_id)
    return deleted(Gateway, gateway, "gateway", f"Gateway {gateway.name}",
                   url_for("admin.provider", provider_id=gateway.provider_id))


# ------------------------------------------------------------------ provider rates

add_rate_routes(ProviderRate, Provider, owner_field="provider_id", entity="provider_rate", noun="cost rate",
                new_rule="/providers/<int:provider_id>/rates/new", rule_prefix="/provider-rates",
                endpoint_prefix="provider_", list_view="admin.providers", list_label="Providers",
               history_rule="/providers/<int:provider_id>/prefixes/<prefix>")
