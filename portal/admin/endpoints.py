"""Endpoints: how a customer's calls are recognised (source IP or SIP user), with their
permission, limits, media options and number manipulation."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import Text, cast, select

from .. import ipranges
from ..models import Customer, Endpoint, Permission
from . import bp
from .manage import services
from .manage.common import (arg_int, arg_text, choices_of, deleted, get_or_404, paginate, render_form_page, searched, sorted_by,
                      toggled)
from .manage.forms import EndpointForm, form_data


@bp.route("/endpoints")
def endpoints():
    stmt = select(Endpoint).join(Customer, Endpoint.customer_id == Customer.id)
    stmt = searched(stmt, arg_text("q"), Endpoint.name, Endpoint.username, cast(Endpoint.ip, Text), Customer.name)
    if arg_text("auth") in ("ip", "sip"):
        stmt = stmt.where(Endpoint.auth == arg_text("auth"))
    if arg_text("status") in ("enabled", "disabled"):
        stmt = stmt.where(Endpoint.enabled.is_(arg_text("status") == "enabled"))
    if arg_int("customer_id"):
        stmt = stmt.where(Endpoint.customer_id == arg_int("customer_id"))
    stmt = sorted_by(stmt, {"name": Endpoint.name, "customer": Customer.name, "auth": Endpoint.auth}, "name")
    page = paginate(stmt)
    return render_template("admin/endpoints.html", page=page, enclosing=ipranges.enclosing(e.id for e in page.items))


def _endpoint_form(endpoint: Endpoint | None = None) -> EndpointForm:
    form = EndpointForm(obj=endpoint)
    form.customer_id.choices = choices_of(Customer)
    form.permission_id.choices = choices_of(Permission)
    if endpoint is None and not form.is_submitted() and arg_int("customer_id"):
        form.customer_id.data = arg_int("customer_id")
    return form


def _back(endpoint_or_customer_id) -> str:
    return url_for("admin.customer", customer_id=endpoint_or_customer_id) if endpoint_or_customer_id \
        else url_for("admin.endpoints")


def _save(endpoint: Endpoint, form: EndpointForm):
    try:
        password = services.save_endpoint(endpoint, form_data(form, "new_password"), form.new_password.data)
    except services.FieldError as exc:
        form[exc.field].errors.append(str(exc))
        return None
    except services.AdminError as exc:
        flash(str(exc), "danger")
        return None
    if password:
        flash(f"Endpoint {endpoint.name} saved. Its SIP password is {password} — give it to the customer now.", "success")
    else:
        flash(f"Endpoint {endpoint.name} saved.", "success")
    return redirect(_back(endpoint.customer_id))


@bp.route("/endpoints/new", methods=["GET", "POST"])
def endpoint_new():
    form = _endpoint_form()
    if not form.permission_id.choices and not form.is_submitted():
        flash("Create a permission first: every endpoint needs one.", "warning")
    if form.validate_on_submit():
        response = _save(Endpoint(), form)
        if response:
            return response
    return render_form_page(form, "New endpoint", _back(arg_int("customer_id")),
                            [("Customers", url_for("admin.customers")), ("Endpoints", url_for("admin.endpoints"))])


@bp.route("/endpoints/<int:endpoint_id>/edit", methods=["GET", "POST"])
def endpoint_edit(endpoint_id: int):
    endpoint = get_or_404(Endpoint, endpoint_id)
    form = _endpoint_form(endpoint)
    if form.validate_on_submit():
        response = _save(endpoint, form)
        if response:
            return response
    return render_template("admin/endpoint_edit.html", form=form, endpoint=endpoint, intro=_nesting_note(endpoint),
                           cancel_url=_back(endpoint.customer_id)), 400 if form.errors else 200


def _nesting_note(endpoint: Endpoint) -> str | None:
    """Say which wider ranges of the customer contain this one: its own range wins."""
    outer = ipranges.enclosing([endpoint.id]).get(endpoint.id) if endpoint.auth == "ip" else None
    if not outer:
        return None
    names = ", ".join(f"{name} ({cidr})" for name, cidr in outer)
    return (f"{endpoint.ip} lies inside {names} of the same customer. The longest match takes the call, so calls "
            f"from {endpoint.ip} are this endpoint's (while it is enabled).")


@bp.route("/endpoints/<int:endpoint_id>/password", methods=["POST"])
def endpoint_rotate_password(endpoint_id: int):
    endpoint = get_or_404(Endpoint, endpoint_id)
    try:
        password = services.rotate_sip_password(endpoint)
    except services.AdminError as exc:
        flash(str(exc), "danger")
    else:
        flash(f"New SIP password of {endpoint.username}: {password} — the old one no longer works.", "success")
    return redirect(url_for("admin.endpoint_edit", endpoint_id=endpoint.id))


@bp.route("/endpoints/<int:endpoint_id>/toggle", methods=["POST"])
def endpoint_toggle(endpoint_id: int):
    endpoint = get_or_404(Endpoint, endpoint_id)
    back = request.referrer if _same_site(request.referrer) else _back(endpoint.customer_id)
    return toggled(endpoint, "endpoint", f"Endpoint {endpoint.name}", back)


@bp.route("/endpoints/<int:endpoint_id>/delete", methods=["POST"])
def endpoint_delete(endpoint_id: int):
    endpoint = get_or_404(Endpoint, endpoint_id)
    return deleted(Endpoint, endpoint, "endpoint", f"Endpoint {endpoint.name}", _back(endpoint.customer_id))


def _same_site(url: str | None) -> bool:
    return bool(url) and url.startswith(request.host_url)
