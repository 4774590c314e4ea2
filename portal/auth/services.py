"""Authentication: who may sign in."""
from __future__ import annotations

from sqlalchemy import func, select

from ..extensions import db
from ..models import User
from ..security import hash_password, needs_rehash, verify_password

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
