"""The signed-in user's own account: password, two-factor sign-in, recovery codes and
signing out every other browser. For staff and customers alike."""
from flask import flash, redirect, render_template, url_for
from flask_login import current_user, login_required, logout_user

from .. import audit
from ..extensions import db
from ..security import verify_password
from . import bp, services, two_factor
from .forms import ActionForm, ChangePasswordForm, RecoveryCodesForm, TwoFactorConfirmForm, TwoFactorDisableForm
from .routes import stay_signed_in


def _me():
    return current_user._get_current_object()


@bp.route("/account")
@login_required
def account():
    user = _me()
    return render_template("auth/account.html", user=user, action=ActionForm(),
                           codes_left=two_factor.recovery_codes_left(user) if user.two_factor_enabled else None,
                           required=two_factor.required_for(user))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def account_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            services.change_password(_me().id, form.current_password.data, form.new_password.data)
        except services.ResetError as exc:
            db.session.rollback()
            field = getattr(form, exc.field or "new_password", form.new_password)
            field.errors = list(field.errors) + [str(exc)]
        else:
            stay_signed_in(_me())
            flash("Your password is changed. Every other browser signed in to your account is signed out.", "success")
            return redirect(url_for("auth.account"))
    return render_template("auth/account_form.html", form=form, title="Change your password"), 400 if form.errors else 200


@bp.route("/account/two-factor", methods=["GET", "POST"])
@login_required
def two_factor_setup():
    user = _me()
    if user.two_factor_enabled:
        return redirect(url_for("auth.account"))
    if not user.totp_secret:
        user.totp_secret = two_factor.new_secret()   # pending until a first code confirms it
        db.session.commit()
    form = TwoFactorConfirmForm()
    if form.validate_on_submit():
        if two_factor.code_matches(user.totp_secret, form.code.data) is None:
            form.code.errors = list(form.code.errors) + ["This code does not match: check the phone's clock and "
                                                         "type the code the app shows now."]
        else:
            codes = two_factor.enable(user, user.totp_secret)
            audit.record("two_factor_enabled", "user", user.id, actor=user.email)
            db.session.commit()
            stay_signed_in(user)
            return render_template("auth/recovery_codes.html", codes=codes, first=True)
    uri = two_factor.provisioning_uri(user, user.totp_secret)
    return render_template("auth/two_factor_setup.html", form=form, secret=user.totp_secret, uri=uri,
                           qr=two_factor.qr_data_uri(uri), required=two_factor.required_for(user)), \
        400 if form.errors else 200


@bp.route("/account/two-factor/disable", methods=["GET", "POST"])
@login_required
def two_factor_disable():
    user = _me()
    if not user.two_factor_enabled:
        return redirect(url_for("auth.account"))
    if two_factor.required_for(user):
        flash("The operator requires two-factor sign-in for staff: it cannot be turned off. "
              "An admin can reset it if you lost your phone.", "warning")
        return redirect(url_for("auth.account"))
    form = TwoFactorDisableForm()
    if form.validate_on_submit():
        if not verify_password(user.password_hash, form.password.data):
            form.password.errors = list(form.password.errors) + ["The password is not correct."]
        elif not (two_factor.verify_totp(user, form.code.data) or two_factor.use_recovery_code(user, form.code.data)):
            form.code.errors = list(form.code.errors) + ["This code is not right."]
        else:
            two_factor.disable(user)
            audit.record("two_factor_disabled", "user", user.id, actor=user.email)
            db.session.commit()
            stay_signed_in(user)
            flash("Two-factor sign-in is off.", "success")
            return redirect(url_for("auth.account"))
        db.session.commit()  # a burnt code stays burnt
    return render_template("auth/account_form.html", form=form, title="Turn off two-factor sign-in"), \
        400 if form.errors else 200


@bp.route("/account/recovery-codes", methods=["GET", "POST"])
@login_required
def recovery_codes():
    user = _me()
    if not user.two_factor_enabled:
        return redirect(url_for("auth.account"))
    form = RecoveryCodesForm()
    if form.validate_on_submit():
        if not verify_password(user.password_hash, form.password.data):
            form.password.errors = list(form.password.errors) + ["The password is not correct."]
        else:
            codes = two_factor.new_recovery_codes(user)
            audit.record("recovery_codes_renewed", "user", user.id, actor=user.email)
            db.session.commit()
            return render_template("auth/recovery_codes.html", codes=codes, first=False)
    return render_template("auth/account_form.html", form=form, title="New recovery codes",
                           intro="The codes you have now stop working."), 400 if form.errors else 200


@bp.route("/account/sign-out-everywhere", methods=["POST"])
@login_required
def sign_out_everywhere():
    form = ActionForm()
    if form.validate_on_submit():
        services.sign_out_everywhere(_me(), actor=current_user.email)
        logout_user()
        flash("Every browser signed in to your account is signed out, this one too.", "info")
    return redirect(url_for("auth.login"))
