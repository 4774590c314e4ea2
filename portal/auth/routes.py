"""Signing in (password, then a second factor when the user has one), signing out,
password reset by e-mail."""
import time
from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from ..extensions import db
from ..models import User
from . import bp, services, tokens, two_factor
from .forms import ForgotPasswordForm, LoginForm, LogoutForm, ResetPasswordForm, SecondFactorForm

# Between the password and the second factor: who, for how long, and where to go next.
PENDING = "pending_sign_in"
PENDING_SECONDS = 300


def _safe_next(target: str | None) -> str | None:
    """Only same-site relative paths: no open redirect through ?next=."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def stay_signed_in(user: User) -> None:
    """After a change that revoked the user's sessions (new password, two-factor on or
    off), sign this browser in again under the new session version; a remember-me
    cookie is renewed when the browser had one."""
    name = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
    login_user(user, remember=bool(request.cookies.get(name)))


def _finish(user: User, remember: bool, next_url: str | None):
    session.pop(PENDING, None)
    login_user(user, remember=remember)
    if two_factor.required_for(user) and not user.two_factor_enabled:
        flash("The operator requires two-factor sign-in for staff: set it up to continue.", "warning")
        return redirect(url_for("auth.two_factor_setup"))
    return redirect(_safe_next(next_url) or url_for("home.index"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        result = services.password_sign_in(form.email.data, form.password.data)
        if result.throttled:
            flash("Too many failed sign-ins for this account. Wait a quarter of an hour and try again, "
                  "or reset your password.", "danger")
            status = 429
        elif result.user is None:
            flash("Wrong e-mail or password.", "danger")
        elif result.needs_second_factor:
            session[PENDING] = {"user": result.user.get_id(), "remember": bool(form.remember.data),
                                "next": _safe_next(request.args.get("next")), "at": int(time.time())}
            return redirect(url_for("auth.second_factor"))
        else:
            return _finish(result.user, form.remember.data, request.args.get("next"))
    return render_template("auth/login.html", form=form,
                           reset_enabled=bool(current_app.config.get("PORTAL_URL"))), status


def _pending_user() -> User | None:
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        return None
    ident, _, version = str(pending.get("user", "")).partition(".")
    if not ident.isdigit() or not version.isdigit():
        return None
    user = db.session.get(User, int(ident))
    if user is None or not user.active or user.session_version != int(version) or not user.two_factor_enabled:
        return None
    return user


@bp.route("/login/code", methods=["GET", "POST"])
def second_factor():
    user = _pending_user()
    if user is None:
        session.pop(PENDING, None)
        flash("Sign in with your password first.", "warning")
        return redirect(url_for("auth.login"))
    form = SecondFactorForm()
    status = 200
    if form.validate_on_submit():
        refusal = services.second_factor_sign_in(user, form.code.data)
        if refusal is None:
            pending = session[PENDING]
            return _finish(user, pending.get("remember", False), pending.get("next"))
        if refusal == "throttled":
            session.pop(PENDING, None)
            flash("Too many wrong codes for this account. Wait a quarter of an hour and sign in again.", "danger")
            return redirect(url_for("auth.login"))
        form.code.errors.append("This code is not right (or was used already). Type the code the app shows now.")
        status = 400
    return render_template("auth/second_factor.html", form=form, user=user), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    form = LogoutForm()
    if form.validate_on_submit():
        services.sign_out(current_user._get_current_object())
        logout_user()
        flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/password/forgot", methods=["GET", "POST"])
def password_forgot():
    form = ForgotPasswordForm()
    enabled = bool(current_app.config.get("PORTAL_URL"))
    if enabled and form.validate_on_submit():
        services.request_password_reset(form.email.data)
        minutes = current_app.config["PASSWORD_RESET_MINUTES"]
        flash(f"If an account uses {form.email.data.strip().lower()}, we sent it a link to choose a new password. "
              f"The link works once, within {minutes} minutes.", "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/password_forgot.html", form=form, enabled=enabled), 400 if form.errors else 200


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def password_reset(token: str):
    if tokens.peek(token, "password_reset") is None:
        return render_template("errors/error.html", code=400, title="This link is not valid any more",
                               message="It was used, it expired, or a newer link was sent. Ask for a new one from "
                                       "the sign-in page."), 400
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            services.reset_password(token, form.new_password.data)
        except services.ResetError as exc:
            db.session.rollback()
            form.new_password.errors = list(form.new_password.errors) + [str(exc)]
        else:
            if current_user.is_authenticated:
                logout_user()
            flash("Your password is changed and every session of your account is signed out. "
                  "Sign in with the new password.", "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/password_reset.html", form=form), 400 if form.errors else 200


