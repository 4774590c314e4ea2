"""Two-factor sign-in with an authenticator app (TOTP, RFC 6238, through pyotp) and
one-time recovery codes.

A code is accepted within one 30-second step either side of now (phone clocks drift)
and only once: the step of the last accepted code is stored, so a code seen over a
shoulder or in a proxy log cannot be replayed. Recovery codes are stored as SHA-256
(they are random, so a slow hash adds nothing) and each works once.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timezone

import pyotp
import segno
from sqlalchemy import delete, select, update

from ..extensions import db
from ..models import RecoveryCode, Settings, User

RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def new_secret() -> str:
    return pyotp.random_base32(32)


def provisioning_uri(user: User, secret: str) -> str:
    issuer = (Settings.get().company_name or "VoIP Billing").strip()
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=issuer)


def qr_data_uri(uri: str) -> str:
    """The otpauth:// URI as an SVG QR code in a data: URI (the CSP allows data: images)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2, dark="#000", light="#fff")


def _clean(code: str) -> str:
    return "".join(ch for ch in (code or "") if not ch.isspace() and ch != "-").lower()


def code_matches(secret: str, code: str, after_step: int | None = None, now: datetime | None = None) -> int | None:
    """The time step `code` belongs to (now, or one step either side), or None. Steps at
    or before `after_step` are refused: that code was used already."""
    code = _clean(code)
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now or datetime.now(timezone.utc))
    for step in (current - 1, current, current + 1):
        if after_step is not None and step <= after_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def verify_totp(user: User, code: str) -> bool:
    """Check an authenticator code of a user with two-factor sign-in, and burn it."""
    if not user.totp_secret:
        return False
    step = code_matches(user.totp_secret, code, after_step=user.totp_last_step)
    if step is None:
        return False
    user.totp_last_step = step
    return True


def _hash(code: str) -> bytes:
    return hashlib.sha256(_clean(code).encode()).digest()


def new_recovery_codes(user: User) -> list[str]:
    """Replace the user's recovery codes with fresh ones; returns them in clear (shown once)."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=_hash(c)) for c in codes)
    return codes


def use_recovery_code(user: User, code: str) -> bool:
    cleaned = _clean(code)
    if len(cleaned) != 10:
        return False
    result = db.session.execute(
        update(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _hash(cleaned),
                                   RecoveryCode.used_at.is_(None)).values(used_at=db.func.now()))
    return result.rowcount == 1


def recovery_codes_left(user: User) -> int:
    return len(db.session.scalars(select(RecoveryCode.id).where(RecoveryCode.user_id == user.id,
                                                                 RecoveryCode.used_at.is_(None))).all())


def enable(user: User, secret: str) -> list[str]:
    """Switch two-factor sign-in on with a confirmed secret; returns the recovery codes."""
    user.totp_secret = secret
    user.totp_last_step = None
    user.totp_enabled_at = datetime.now(timezone.utc)
    return new_recovery_codes(user)


def disable(user: User) -> None:
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


def required_for(user: User) -> bool:
    """The operator's setting: staff must sign in with a second factor."""
    return user.is_staff and bool(Settings.get().staff_two_factor_required)
