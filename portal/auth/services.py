"""Authentication: who may sign in, and a user changing their own password."""
from __future__ import annotations

from sqlalchemy import func, select

from .. import audit
from ..errors import NotFound, Refused
from ..extensions import db
from ..models import User
from ..security import MIN_PASSWORD_LENGTH, hash_password, needs_rehash, verify_password

# Verifying against a real hash when the user does not exist keeps the response time
# the same, so the login form does not reveal which e-mail addresses have accounts.
_DUMMY_HASH = hash_password("not-a-real-password")


def authenticate(email: str, password: str) -> User | None:
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password) or not user.active:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = func.now()
    db.session.commit()
    return user


def change_password(user_id: int, current_password: str, new_password: str) -> None:
    """A signed-in user's own password: the current one is required; the new one has
    MIN_PASSWORD_LENGTH characters, differs from the current one and does not contain
    the e-mail address. Audited, committed."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    if not verify_password(user.password_hash, current_password or ""):
        raise Refused("The current password is not correct.", "current_password")
    if len(new_password) < MIN_PASSWORD_LENGTH:
        raise Refused(f"Use at least {MIN_PASSWORD_LENGTH} characters.", "new_password")
    if new_password == current_password:
        raise Refused("The new password must differ from the current one.", "new_password")
    if user.email.lower() in new_password.lower():
        raise Refused("The password must not contain your e-mail address.", "new_password")
    user.password_hash = hash_password(new_password)
    audit.record("password_changed", "user", user.id, actor=user.email)
    db.session.commit()
