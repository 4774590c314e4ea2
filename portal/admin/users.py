"""Self-care portal users of the customers: create (password hashed), edit, reset the
password, disable, delete. Back-office admins are created with `flask create-admin`."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from sqlalchemy import select

from ..models import Customer, User
from . import bp
from .manage import services
from .manage.common import (arg_int, arg_text, choices_of, deleted, get_or_404, paginate, render_form_page, searched, sorted_by,
                      toggled)
from .manage.forms import PasswordForm, UserCreateForm, UserEditForm


def _customer_user(user_id: int) -> User:
    user = get_or_404(User, user_id)
    if user.role != "customer":
        abort(404)
    return user


@bp.route("/users")
def users():
    stmt = select(User).join(Customer, User.customer_id == Customer.id).where(User.role == "customer")
    stmt = searched(stmt, arg_text("q"), User.email, Customer.name)
    if arg_text("status") in ("active", "disabled"):
        stmt = stmt.where(User.active.is_(arg_text("status") == "active"))
    if arg_int("customer_id"):
        stmt = stmt.where(User.customer_id == arg_int("customer_id"))
    stmt = sorted_by(stmt, {"email": User.email, "customer": Customer.name, "last_login": User.last_login_at,
                            "created": User.created_at}, "email")
    return render_template("admin/users.html", page=paginate(stmt))


@bp.route("/users/new", methods=["GET", "POST"])
def user_new():
    form = UserCreateForm()
    form.customer_id.choices = choices_of(Customer)
    if not form.is_submitted() and arg_int("customer_id"):
        form.customer_id.data = arg_int("customer_id")
    if form.validate_on_submit():
        try:
            user = services.create_user(form.customer_id.data, form.email.data, form.password.data)
        except services.AdminError as exc:
            flash(str(exc), "danger")
        else:
            flash(f"Portal user {user.email} created: they can sign in now.", "success")
            return redirect(url_for("admin.customer", customer_id=user.customer_id))
    return render_form_page(form, "New portal user", url_for("admin.users"),
                            [("Customers", url_for("admin.customers")), ("Portal users", url_for("admin.users"))])


@bp.route("/users/<int:user_id>/edit", methods=["GET", "POST"])
def user_edit(user_id: int):
    user = _customer_user(user_id)
    form = UserEditForm(obj=user)
    if form.validate_on_submit():
        try:
            services.update_user(user, form.email.data, form.active.data)
        except services.AdminError as exc:
            flash(str(exc), "danger")
        else:
            flash(f"Portal user {user.email} saved.", "success")
            return redirect(url_for("admin.users"))
    return render_template("admin/user_edit.html", form=form, user=user), 400 if form.errors else 200


@bp.route("/users/<int:user_id>/password", methods=["GET", "POST"])
def user_password(user_id: int):
    user = _customer_user(user_id)
    form = PasswordForm()
    if form.validate_on_submit():
        services.reset_password(user, form.password.data)
        flash(f"Password of {user.email} reset. Give it to them through a safe channel.", "success")
        return redirect(url_for("admin.user_edit", user_id=user.id))
    return render_form_page(form, f"Reset the password of {user.email}", url_for("admin.user_edit", user_id=user.id),
                            [("Portal users", url_for("admin.users")), (user.email, url_for("admin.user_edit", user_id=user.id))])


@bp.route("/users/<int:user_id>/toggle", methods=["POST"])
def user_toggle(user_id: int):
    user = _customer_user(user_id)
    return toggled(user, "user", f"Portal user {user.email}", url_for("admin.users"), attribute="active",
                   when_off=": they can no longer sign in")


@bp.route("/users/<int:user_id>/delete", methods=["POST"])
def user_delete(user_id: int):
    user = _customer_user(user_id)
    return deleted(User, user, "user", f"Portal user {user.email}", url_for("admin.users"))
