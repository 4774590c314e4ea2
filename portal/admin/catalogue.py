"""The destination catalogue: weights (destination classes), permissions (sets of
weights an endpoint may call) and destinations (prefix -> name and weight)."""
from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from sqlalchemy import func, select

from ..extensions import db
from ..models import Destination, Endpoint, Permission, PermissionWeight, Weight
from . import bp
from .manage import services
from .manage.common import (arg_int, arg_text, choices_of, deleted, get_or_404, paginate, prefix_searched, render_form_page, saved,
                      searched, sorted_by)
from .manage.forms import DestinationForm, PermissionForm, WeightForm, form_data

CATALOGUE = ("Destinations", "admin.destinations")


def _crumbs(*extra):
    return [(CATALOGUE[0], url_for(CATALOGUE[1])), *extra]


# ------------------------------------------------------------------ destinations

@bp.route("/destinations")
def destinations():
    stmt = select(Destination).join(Weight, Destination.weight_id == Weight.id)
    q = arg_text("q")
    stmt = prefix_searched(stmt, q, Destination.prefix) if q.lstrip("+").isdigit() else searched(stmt, q, Destination.name)
    if arg_int("weight_id"):
        stmt = stmt.where(Destination.weight_id == arg_int("weight_id"))
    stmt = sorted_by(stmt, {"prefix": Destination.prefix, "name": Destination.name, "weight": Weight.name}, "prefix")
    weights = db.session.scalars(select(Weight).order_by(Weight.name)).all()
    return render_template("admin/destinations.html", page=paginate(stmt), weights=weights)


def _destination_form(destination=None) -> DestinationForm:
    form = DestinationForm(obj=destination)
    form.weight_id.choices = choices_of(Weight)
    return form


@bp.route("/destinations/new", methods=["GET", "POST"])
def destination_new():
    form = _destination_form()
    if not form.weight_id.choices and not form.is_submitted():
        flash("Create a weight (destination class) first: every destination needs one.", "warning")
    if form.validate_on_submit():
        response = saved(Destination(), form_data(form), "destination", f"Destination {form.prefix.data}", url_for("admin.destinations"))
        if response:
            return response
    return render_form_page(form, "New destination", url_for("admin.destinations"), _crumbs())


@bp.route("/destinations/<int:destination_id>/edit", methods=["GET", "POST"])
def destination_edit(destination_id: int):
    destination = get_or_404(Destination, destination_id)
    form = _destination_form(destination)
    if form.validate_on_submit():
        response = saved(destination, form_data(form), "destination", f"Destination {form.prefix.data}", url_for("admin.destinations"))
        if response:
            return response
    return render_form_page(form, f"Edit destination {destination.prefix}", url_for("admin.destinations"), _crumbs())


@bp.route("/destinations/<int:destination_id>/delete", methods=["POST"])
def destination_delete(destination_id: int):
    destination = get_or_404(Destination, destination_id)
    return deleted(Destination, destination, "destination", f"Destination {destination.prefix}", url_for("admin.destinations"))


# ------------------------------------------------------------------ weights

@bp.route("/weights")
def weights():
    used_by_destinations = (select(func.count()).where(Destination.weight_id == Weight.id)
                            .correlate(Weight).scalar_subquery())
    used_by_permissions = (select(func.count()).where(PermissionWeight.weight_id == Weight.id)
                           .correlate(Weight).scalar_subquery())
    stmt = select(Weight, used_by_destinations.label("destinations"), used_by_permissions.label("permissions"))
    stmt = sorted_by(searched(stmt, arg_text("q"), Weight.name), {"name": Weight.name}, "name")
    return render_template("admin/weights.html", page=paginate(stmt))


@bp.route("/weights/new", methods=["GET", "POST"])
def weight_new():
    form = WeightForm()
    if form.validate_on_submit():
        response = saved(Weight(), form_data(form), "weight", f"Weight {form.name.data}", url_for("admin.weights"))
        if response:
            return response
    return render_form_page(form, "New weight", url_for("admin.weights"), _crumbs(("Weights", url_for("admin.weights"))))


@bp.route("/weights/<int:weight_id>/edit", methods=["GET", "POST"])
def weight_edit(weight_id: int):
    weight = get_or_404(Weight, weight_id)
    form = WeightForm(obj=weight)
    if form.validate_on_submit():
        response = saved(weight, form_data(form), "weight", f"Weight {form.name.data}", url_for("admin.weights"))
        if response:
            return response
    return render_form_page(form, f"Edit weight {weight.name}", url_for("admin.weights"),
                            _crumbs(("Weights", url_for("admin.weights"))))


@bp.route("/weights/<int:weight_id>/delete", methods=["POST"])
def weight_delete(weight_id: int):
    weight = get_or_404(Weight, weight_id)
    return deleted(Weight, weight, "weight", f"Weight {weight.name}", url_for("admin.weights"))


# ------------------------------------------------------------------ permissions

@bp.route("/permissions")
def permissions():
    used_by = select(func.count()).where(Endpoint.permission_id == Permission.id).correlate(Permission).scalar_subquery()
    stmt = select(Permission, used_by.label("endpoints"))
    stmt = sorted_by(searched(stmt, arg_text("q"), Permission.name), {"name": Permission.name}, "name")
    return render_template("admin/permissions.html", page=paginate(stmt))


def _permission_form(permission=None) -> PermissionForm:
    form = PermissionForm(obj=permission)
    form.weight_ids.choices = choices_of(Weight)
    form.weight_ids.render_kw = {"size": min(max(len(form.weight_ids.choices), 3), 12)}
    if permission is not None and not form.is_submitted():
        form.weight_ids.data = [w.id for w in permission.weights]
    return form


def _save_permission(permission: Permission, form: PermissionForm):
    try:
        services.save_permission(permission, form.name.data, form.weight_ids.data or [])
    except services.AdminError as exc:
        flash(str(exc), "danger")
        return None
    flash(f"Permission {permission.name} saved.", "success")
    return redirect(url_for("admin.permissions"))


@bp.route("/permissions/new", methods=["GET", "POST"])
def permission_new():
    form = _permission_form()
    if form.validate_on_submit():
        response = _save_permission(Permission(), form)
        if response:
            return response
    return render_form_page(form, "New permission", url_for("admin.permissions"),
                            _crumbs(("Permissions", url_for("admin.permissions"))))


@bp.route("/permissions/<int:permission_id>/edit", methods=["GET", "POST"])
def permission_edit(permission_id: int):
    permission = get_or_404(Permission, permission_id)
    form = _permission_form(permission)
    if form.validate_on_submit():
        response = _save_permission(permission, form)
        if response:
            return response
    return render_form_page(form, f"Edit permission {permission.name}", url_for("admin.permissions"),
                            _crumbs(("Permissions", url_for("admin.permissions"))))


@bp.route("/permissions/<int:permission_id>/delete", methods=["POST"])
def permission_delete(permission_id: int):
    permission = get_or_404(Permission, permission_id)
    return deleted(Permission, permission, "permission", f"Permission {permission.name}", url_for("admin.permissions"))
