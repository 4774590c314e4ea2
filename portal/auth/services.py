"""Authentication: who may sign in, how often they may try, account recovery, and a user
changing their own password."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, render_template, url_for
from sqlalchemy import func, select

from .. import audit
from ..errors import NotFound, Refused
from ..extensions import db
from ..mail import outbox
from ..models import User
from ..security import MIN_PASSWORD_LENGTH, hash_password, needs_rehash, verify_password
from . import throttle, tokens, two_factor

# Verifying against a real hash when the user does not exist keeps the response time
# the same, so the login form does not reveal which e-mail addresses have accounts.
_DUMMY_HASH = hash_password("not-a-real-password")


def _normal(email: str) -> str:
    return (email or "").strip().lower()


def authenticate(email: str, password: str) -> User | None:
    """The active user with this e-mail and password, or None (no throttle, no audit:
    the sign-in form uses password_sign_in)."""
    user = db.session.scalar(select(User).where(User.email == _normal(email)))
    if user is None:
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password) or not user.active:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


@dataclass(frozen=True)
class SignIn:
    user: User | None
    refusal: str | None = None      # None: the password was right; else why not
    needs_second_factor: bool = False

    @property
    def throttled(self) -> bool:
        return self.refusal == "throttled"


def password_sign_in(email: str, password: str) -> SignIn:
    """First step of signing in: throttle, check the password, write the login audit."""
    email = _normal(email)
    throttle.serialise(email)
    if throttle.too_many(email):
        throttle.record("login", email=email, success=False, reason="throttled")
        db.session.commit()
        return SignIn(None, "throttled")
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        verify_password(_DUMMY_HASH, password)
        refusal = "unknown_account"
    elif not verify_password(user.password_hash, password):
        refusal = "wrong_password"
    elif not user.active:
        refusal = "disabled"
    else:
        refusal = None
    if refusal is not None:
        throttle.record("login", email=email, user=user, success=False, reason=refusal)
        db.session.commit()
        return SignIn(None, refusal)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        db.session.flush()
    second = user.two_factor_enabled
    throttle.record("login", email=email, user=user, success=True, reason="second_factor_next" if second else None)
    if not second:
        user.last_login_at = func.now()
    db.session.commit()
    return SignIn(user, None, needs_second_factor=second)


def second_factor_sign_in(user: User, code: str) -> str | None:
    """Second step: an authenticator code or a recovery code. None when accepted, else
    the refusal ('throttled', 'wrong_code')."""
    throttle.serialise(user.email)
    if throttle.second_factor_exhausted(user.email):
        throttle.record("second_factor", email=user.email, user=user, success=False, reason="throttled")
        db.session.commit()
        return "throttled"
    if two_factor.verify_totp(user, code):
        reason = None
    elif two_factor.use_recovery_code(user, code):
        reason = "recovery_code"
        audit.record("recovery_code_used", "user", user.id, actor=user.email,
                     left=two_factor.recovery_codes_left(user))
    else:
        throttle.record("second_factor", email=user.email, user=user, success=False, reason="wrong_code")
        db.session.commit()
        return "wrong_code"
    throttle.record("second_factor", email=user.email, user=user, success=True, reason=reason)
    user.last_login_at = func.now()
    db.session.commit()
    return None


def sign_out(user: User) -> None:
    """Revoke every session and remember-me cookie of the user (a copied cookie too)."""
    user.session_version += 1
    throttle.record("logout", email=user.email, user=user, success=True)
    db.session.commit()


def sign_out_everywhere(user: User, actor: str) -> None:
    user.session_version += 1
    audit.record("sign_out_everywhere", "user", user.id, actor=actor, email=user.email)
    db.session.commit()


# ----------------------------------------------------------------------------- password reset

class ResetError(Refused):
    """A password that the rules refuse (reset or change); `field` names the input."""


def request_password_reset(email: str) -> None:
    """Mail a reset link when an active account has this address. The caller answers the
    same whatever happened, so the form does not reveal which addresses have accounts."""
    email = _normal(email)
    throttle.serialise(email)
    if throttle.reset_requests_exhausted(email):
        throttle.record("password_reset_request", email=email, success=False, reason="throttled")
        db.session.commit()
        return
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None or not user.active:
        throttle.record("password_reset_request", email=email, user=user, success=True,
                        reason="unknown_account" if user is None else "disabled")
        db.session.commit()
        return
    minutes = current_app.config["PASSWORD_RESET_MINUTES"]
    token = tokens.issue(user, "password_reset", timedelta(minutes=minutes))
    url = tokens.link(url_for("auth.password_reset", token=token))
    outbox.enqueue("password_reset", user.email, "Reset your portal password",
                   render_template("mail/password_reset.txt", user=user, url=url, minutes=minutes))
    throttle.record("password_reset_request", email=email, user=user, success=True, reason="mailed")
    db.session.commit()


INVALID_LINK = ("This link is not valid any more: it was used, it expired or a newer one was sent. "
                "Ask for a new one.")


def reset_password(token: str, new_password: str) -> User:
    row = tokens.peek(token, "password_reset")
    if row is None:
        raise ResetError(INVALID_LINK)
    check_new_password(row.user, new_password)
    row = tokens.consume(token, "password_reset")
    if row is None:
        raise ResetError(INVALID_LINK)
    user = row.user
    user.password_hash = hash_password(new_password)   # revokes every session (models.py)
    throttle.record("password_reset", email=user.email, user=user, success=True)
    audit.record("password_reset", "user", user.id, actor=user.email)
    db.session.commit()
    return user


def check_new_password(user: User, new_password: str) -> None:
    if len(new_password) < MIN_PASSWORD_LENGTH:
        raise ResetError(f"Use at least {MIN_PASSWORD_LENGTH} characters.", "new_password")
    if user.email.lower() in new_password.lower():
        raise ResetError("The password must not contain your e-mail address.", "new_password")


def change_password(user_id: int, current_password: str, new_password: str) -> None:
    """A signed-in user's own password (staff's account page and self care): the current
    one is required; the new one has MIN_PASSWORD_LENGTH characters, differs from the
    current one and does not contain the e-mail address. Revokes every other session
    (models.py), audited, committed. Refusals are ResetError with the field they are about."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    if not verify_password(user.password_hash, current_password or ""):
        raise ResetError("The current password is not correct.", "current_password")
    if new_password == current_password:
        raise ResetError("The new password must differ from the current one.", "new_password")
    check_new_password(user, new_password)
    user.password_hash = hash_password(new_password)
    audit.record("password_changed", "user", user.id, actor=user.email)
    db.session.commit()
