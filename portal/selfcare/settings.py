"""Account settings (low-balance alert, e-mail, daily balance) and the portal password."""
from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..extensions import db
from ..models import Customer
from . import _services as services
from . import bp, own_customer_id
from ._forms import AlertSettingsForm, PasswordForm
from ._views import field_error


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    customer = db.session.get(Customer, own_customer_id())
    form = AlertSettingsForm(obj=None if _posted() else customer)
    if form.validate_on_submit():
        try:
            services.update_alert_settings(customer.id, low_balance_alert=services.parse_threshold(form.low_balance_alert.data),
                                           email=form.email.data, daily_balance_email=form.daily_balance_email.data,
                                           actor=current_user.email)
        except services.SelfcareError as exc:
            db.session.rollback()
            field_error(form, exc)
        else:
            flash("Your settings are saved.", "success")
            return redirect(url_for(".settings"))
    elif not _posted() and customer.low_balance_alert is not None:
        form.low_balance_alert.data = _plain(customer.low_balance_alert)
    return render_template("selfcare/settings.html", form=form, customer=customer)


@bp.route("/settings/password", methods=["GET", "POST"])
def settings_password():
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            services.change_portal_password(current_user.id, form.current_password.data, form.new_password.data)
        except services.SelfcareError as exc:
            db.session.rollback()
            field_error(form, exc)
        else:
            flash("Your password is changed.", "success")
            return redirect(url_for(".settings"))
    return render_template("selfcare/password.html", form=form)


def _posted() -> bool:
    return request.method == "POST"


def _plain(amount) -> str:
    """An amount as the customer typed it: no trailing zeros beyond two decimals."""
    text = format(amount.normalize(), "f")
    if "." not in text:
        return text + ".00"
    whole, frac = text.split(".")
    return f"{whole}.{frac.ljust(2, '0')}"
