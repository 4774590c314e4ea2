"""Single-use, expiring tokens sent by e-mail: password reset links and the link that
verifies a new e-mail address. The link carries 256 random bits; the database keeps only
their SHA-256, the purpose, the expiry and when the token was used."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import select, update

from ..extensions import db
from ..models import AccountToken, User


class LinksNotConfigured(RuntimeError):
    """PORTAL_URL is unset: a link built from the request's Host header could point anywhere."""


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def issue(user: User, purpose: str, lifetime: timedelta, email: str | None = None) -> str:
    """A new token for `user` (earlier unused ones of the same purpose stop working)."""
    now = datetime.now(timezone.utc)
    db.session.execute(update(AccountToken).where(AccountToken.user_id == user.id, AccountToken.purpose == purpose,
                                                  AccountToken.used_at.is_(None)).values(used_at=now))
    token = secrets.token_urlsafe(32)
    db.session.add(AccountToken(user_id=user.id, purpose=purpose, token_hash=_hash(token), email=email,
                                expires_at=now + lifetime))
    return token


def peek(token: str, purpose: str) -> AccountToken | None:
    """The live token (not used, not expired, its user active), or None."""
    if not token or len(token) > 100:
        return None
    row = db.session.scalar(select(AccountToken).where(AccountToken.token_hash == _hash(token),
                                                       AccountToken.purpose == purpose))
    if row is None or row.used_at is not None or row.expires_at <= datetime.now(timezone.utc) or not row.user.active:
        return None
    return row


def consume(token: str, purpose: str) -> AccountToken | None:
    """Mark the token used, atomically: of two requests racing with one link, one wins."""
    row = peek(token, purpose)
    if row is None:
        return None
    won = db.session.execute(update(AccountToken).where(AccountToken.id == row.id, AccountToken.used_at.is_(None))
                             .values(used_at=datetime.now(timezone.utc))).rowcount
    return row if won == 1 else None


def link(endpoint_path: str) -> str:
    base = current_app.config.get("PORTAL_URL")
    if not base:
        raise LinksNotConfigured("set PORTAL_URL (the portal's public address) to send links by e-mail")
    return base + endpoint_path
