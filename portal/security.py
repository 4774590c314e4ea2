"""Password hashing (argon2id) and role guards for views."""
from __future__ import annotations

from functools import wraps

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import abort
from flask_login import current_user

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def admin_required(view):
    """Back-office views: a logged-in admin, else 401 (login) or 403."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            from .extensions import login_manager

            return login_manager.unauthorized()
        if current_user.role != "admin":
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def customer_required(view):
    """Self-care views: a logged-in customer user bound to a customer, else 401/403."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            from .extensions import login_manager

            return login_manager.unauthorized()
        if current_user.role != "customer" or current_user.customer_id is None:
            abort(403)
        return view(*args, **kwargs)

    return wrapped
