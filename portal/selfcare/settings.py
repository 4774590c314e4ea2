"""Account settings (low-balance alert, e-mail, daily balance) and the portal password."""
from flask import render_template, request, url_for
from flask_login import current_user

from ..auth.routes import stay_signed_in
from ..auth.services import change_password
from ..customers import services
from ..extensions import db
from ..models import Customer
from . import bp, email_verification, own_customer_id
from ._forms import AlertSettingsForm, PasswordForm
from ._views import submit


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    customer = db.session.get(Customer, own_customer_id())
    posted = request.method == "POST"
    form = AlertSettingsForm(obj=None if posted else customer)
    if not posted and customer.low_balance_alert is not None:
        form.low_balance_alert.data = _plain(customer.low_balance_alert)
    typed = (form.email.data or "").strip() if posted else ""
    message = "Your settings are saved."
    if typed and typed != (customer.email or ""):
        message += (f" We sent a link to {typed}: open it to confirm the address. Until then mail goes to "
                    f"{customer.email or 'no address'}.")
    done = submit(form, lambda: services.update_alert_settings(
        customer.id, low_balance_alert=services.parse_threshold(form.low_balance_alert.data),
        email=form.email.data, daily_balance_email=form.daily_balance_email.data, actor=current_user.email,
        verify_address=email_verification.request_change),
        message, url_for(".settings"))
    return done or render_template("selfcare/settings.html", form=form, customer=customer,
                                   pending=email_verification.pending(customer.id))


@bp.route("/settings/password", methods=["GET", "POST"])
def settings_password():
    form = PasswordForm()
    done = submit(form, lambda: change_password(
        current_user.id, form.current_password.data, form.new_password.data),
        "Your password is changed. Every other browser signed in to your account is signed out.",
        url_for(".settings"))
    if done is not None:
        stay_signed_in(current_user._get_current_object())   # the change revoked this session too
    return done or render_template("selfcare/password.html", form=form)


def _plain(amount) -> str:
    """An amount as a person writes it: at least two decimals, no trailing zeros beyond."""
    text = format(amount.normalize(), "f")
    if "." not in text:
        return text + ".00"
    whole, frac = text.split(".")
    return f"{whole}.{frac.ljust(2, '0')}"
