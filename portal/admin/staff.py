"""Staff: back-office users (admin, finance, support). Create, change the role, disable,
reset the password or the two-factor sign-in, sign out everywhere; every change audited.
Also the sign-in log (who, when, from where, success) and "sign out everywhere" for any
user, customers' portal users included."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select

from .. import audit
from ..auth import services as auth_services
from ..auth import two_factor
from ..auth.forms import ActionForm
from ..extensions import db
from ..models import AuthEvent, User
from ..security import hash_password
from . import bp
from .manage.common import arg_text, get_or_404, paginate, render_form_page, searched, sorted_by
from .manage.forms import PasswordForm, StaffCreateForm, StaffEditForm

ROLE_LABELS = {"admin": "Admin (everything)", "finance": "Finance (money, invoices, reports)",
               "support": "Support (read-only, customers' calls)"}


class StaffError(ValueError):
    pass


def _staff(user_id: int) -> User:
    user = get_or_404(User, user_id)
    if not user.is_staff:
        abort(404)
    return user


def _active_admins_besides(user: User) -> int:
    return db.session.scalar(select(func.count()).select_from(User).where(
        User.role == "admin", User.active.is_(True), User.id != user.id))


def _check_not_last_admin(user: User, role: str, active: bool) -> None:
    if user.role == "admin" and user.active and (role != "admin" or not active) and not _active_admins_besides(user):
        raise StaffError("This is the last active admin: make another admin first.")
    if user.id == current_user.id and (role != user.role or not active):
        raise StaffError("You cannot change your own role or disable yourself; ask another admin.")


@bp.route("/staff")
def staff():
    stmt = select(User).where(User.role.in_(User.STAFF_ROLES))
    stmt = searched(stmt, arg_text("q"), User.email)
    if arg_text("role") in User.STAFF_ROLES:
        stmt = stmt.where(User.role == arg_text("role"))
    if arg_text("status") in ("active", "disabled"):
        stmt = stmt.where(User.active.is_(arg_text("status") == "active"))
    stmt = sorted_by(stmt, {"email": User.email, "role": User.role, "last_login": User.last_login_at,
                            "created": User.created_at}, "email")
    return render_template("admin/staff.html", page=paginate(stmt), roles=ROLE_LABELS,
                           two_factor_required=two_factor.required_for(current_user))


@bp.route("/staff/new", methods=["GET", "POST"])
def staff_new():
    form = StaffCreateForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        if db.session.scalar(select(User.id).where(User.email == email)) is not None:
            form.email.errors = list(form.email.errors) + ["A user with this e-mail address exists already."]
        else:
            user = User(email=email, password_hash=hash_password(form.password.data), role=form.role.data, active=True)
            db.session.add(user)
            db.session.flush()
            audit.record("create", "staff", user.id, email=email, role=user.role)
            db.session.commit()
            flash(f"{email} can sign in to the back office as {user.role} now. Give them the password through a "
                  "safe channel; they change it under Your account.", "success")
            return redirect(url_for("admin.staff"))
    return render_form_page(form, "New staff member", url_for("admin.staff"), [("Staff", url_for("admin.staff"))])


@bp.route("/staff/<int:user_id>/edit", methods=["GET", "POST"])
def staff_edit(user_id: int):
    user = _staff(user_id)
    form = StaffEditForm(obj=user)
    if form.validate_on_submit():
        try:
            _check_not_last_admin(user, form.role.data, form.active.data)
        except StaffError as exc:
            form.form_errors.append(str(exc))
        else:
            before = {"role": user.role, "active": user.active}
            user.role, user.active = form.role.data, form.active.data
            after = {"role": user.role, "active": user.active}
            if before != after:
                if before["role"] != after["role"]:
                    user.session_version += 1   # the new role starts with a new sign-in
                audit.record("update", "staff", user.id, email=user.email,
                             **{k: [before[k], after[k]] for k in after if before[k] != after[k]})
            db.session.commit()
            flash(f"{user.email} saved.", "success")
            return redirect(url_for("admin.staff"))
    return render_template("admin/staff_edit.html", form=form, user=user), 400 if form.errors else 200


@bp.route("/staff/<int:user_id>/password", methods=["GET", "POST"])
def staff_password(user_id: int):
    user = _staff(user_id)
    form = PasswordForm()
    if form.validate_on_submit():
        user.password_hash = hash_password(form.password.data)   # also signs them out everywhere
        audit.record("reset_password", "staff", user.id, email=user.email)
        db.session.commit()
        flash(f"Password of {user.email} reset and their sessions signed out. Give it to them through a safe channel.",
              "success")
        return redirect(url_for("admin.staff_edit", user_id=user.id))
    return render_form_page(form, f"Reset the password of {user.email}", url_for("admin.staff_edit", user_id=user.id),
                            [("Staff", url_for("admin.staff")), (user.email, url_for("admin.staff_edit", user_id=user.id))])


@bp.route("/staff/<int:user_id>/reset-two-factor", methods=["POST"])
def staff_reset_two_factor(user_id: int):
    user = _staff(user_id)
    if not ActionForm().validate_on_submit():
        abort(400, description="The form expired: reload the page and try again.")
    if user.two_factor_enabled or user.totp_secret:
        two_factor.disable(user)
        audit.record("two_factor_reset", "staff", user.id, email=user.email)
        db.session.commit()
        flash(f"Two-factor sign-in of {user.email} is reset: they set it up again at their next sign-in.", "success")
    return redirect(url_for("admin.staff_edit", user_id=user.id))


@bp.route("/users/<int:user_id>/sign-out", methods=["POST"])
def user_sign_out(user_id: int):
    """Sign out every session of any user (staff or a customer's portal user)."""
    user = get_or_404(User, user_id)
    if not ActionForm().validate_on_submit():
        abort(400, description="The form expired: reload the page and try again.")
    auth_services.sign_out_everywhere(user, actor=current_user.email)
    flash(f"Every session of {user.email} is signed out.", "success")
    if user.id == current_user.id:
        return redirect(url_for("auth.login"))
    return redirect(url_for("admin.staff_edit", user_id=user.id) if user.is_staff
                    else url_for("admin.user_edit", user_id=user.id))


@bp.route("/sign-ins")
def sign_ins():
    """The login audit: every sign-in attempt and account event, newest first."""
    stmt = select(AuthEvent)
    q = arg_text("q")
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(or_(AuthEvent.email.ilike(pattern, escape="\\"),
                              func.host(AuthEvent.client_ip).ilike(pattern, escape="\\")))
    if arg_text("result") in ("success", "failure"):
        stmt = stmt.where(AuthEvent.success.is_(arg_text("result") == "success"))
    if arg_text("kind") in KINDS:
        stmt = stmt.where(AuthEvent.kind == arg_text("kind"))
    stmt = stmt.order_by(AuthEvent.at.desc(), AuthEvent.id.desc())
    return render_template("admin/sign_ins.html", page=paginate(stmt), kinds=KINDS)


KINDS = {"login": "Password", "second_factor": "Second factor", "logout": "Sign-out",
         "password_reset_request": "Reset asked", "password_reset": "Password reset"}
