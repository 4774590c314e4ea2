"""Sign-in throttling and the login audit, both over billing.auth_events.

The counts live in PostgreSQL, so every portal process (and every server) sees the same
ones, and they survive a restart. Failures are counted per account *and client*, per
account and per client: ten wrong passwords typed for one account lock that account out
from that address, but never the other users behind the same address (a reverse proxy,
an office NAT), and a guesser spreading one account's attempts over many addresses, or
many accounts over one address, still meets a limit.

The client is `request.remote_addr`: the peer's address, or the one a trusted reverse
proxy put in X-Forwarded-For when TRUSTED_PROXIES names that proxy (portal/proxy.py).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from flask import current_app, has_request_context, request
from sqlalchemy import text

from ..extensions import db
from ..models import AuthEvent

# Failures that count against a sign-in (a password, then a second factor).
SIGN_IN_KINDS = ("login", "second_factor")


def client_ip() -> str | None:
    if not has_request_context():
        return None
    try:
        return str(ipaddress.ip_address(request.remote_addr or ""))
    except ValueError:
        return None


def record(kind: str, *, email: str | None, success: bool, user=None, reason: str | None = None) -> None:
    """Add an event to the current transaction (committed by the caller)."""
    agent = request.headers.get("User-Agent", "")[:300] if has_request_context() else None
    db.session.add(AuthEvent(kind=kind, email=(email or "")[:320] or None, user_id=getattr(user, "id", None),
                             client_ip=client_ip(), success=success, reason=reason, user_agent=agent or None))


def serialise(email: str) -> None:
    """Attempts for one account run one at a time (until the transaction ends), so
    parallel requests cannot all slip under the limit together."""
    db.session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('auth_events:' || :e, 0))"), {"e": email})


@dataclass(frozen=True)
class Limits:
    window_minutes: int
    per_account_and_client: int
    per_account: int
    per_client: int


def sign_in_limits() -> Limits:
    cfg = current_app.config
    return Limits(cfg["LOGIN_WINDOW_MINUTES"], cfg["LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_CLIENT"],
                  cfg["LOGIN_MAX_FAILURES_PER_ACCOUNT"], cfg["LOGIN_MAX_FAILURES_PER_CLIENT"])


def too_many(email: str, kinds: tuple[str, ...] = SIGN_IN_KINDS, limits: Limits | None = None,
             failures_only: bool = True) -> bool:
    """Whether a new attempt for `email` from this client is over one of the limits.
    Refusals for being throttled are not counted, so a lock ends when the window passes."""
    limits = limits or sign_in_limits()
    row = db.session.execute(text("""
        SELECT count(*) FILTER (WHERE email = :e AND client_ip = CAST(:ip AS inet)) AS pair,
               count(*) FILTER (WHERE email = :e) AS account,
               count(*) FILTER (WHERE client_ip = CAST(:ip AS inet)) AS client
          FROM billing.auth_events
         WHERE (email = :e OR client_ip = CAST(:ip AS inet))
           AND (NOT success OR NOT :failures_only)
           AND reason IS DISTINCT FROM 'throttled'
           AND kind = ANY(:kinds)
           AND at > now() - make_interval(mins => :minutes)"""),
        {"e": email, "ip": client_ip(), "kinds": list(kinds), "minutes": limits.window_minutes,
         "failures_only": failures_only}).one()
    return (row.pair >= limits.per_account_and_client or row.account >= limits.per_account
            or row.client >= limits.per_client)


def second_factor_exhausted(email: str) -> bool:
    """Wrong codes for one account, from any client: a 6-digit code must not be guessable."""
    cfg = current_app.config
    return db.session.execute(text("""
        SELECT count(*) FROM billing.auth_events
         WHERE email = :e AND kind = 'second_factor' AND NOT success AND reason IS DISTINCT FROM 'throttled'
           AND at > now() - make_interval(mins => :minutes)"""),
        {"e": email, "minutes": cfg["LOGIN_WINDOW_MINUTES"]}).scalar_one() >= cfg["SECOND_FACTOR_MAX_FAILURES"]


def reset_requests_exhausted(email: str) -> bool:
    """Password reset mails: a few per address and hour, so the form cannot flood a mailbox."""
    cfg = current_app.config
    return too_many(email, ("password_reset_request",), Limits(60, cfg["RESET_MAX_PER_ADDRESS_AND_HOUR"],
                                                                cfg["RESET_MAX_PER_ADDRESS_AND_HOUR"],
                                                                cfg["RESET_MAX_PER_CLIENT_AND_HOUR"]),
                    failures_only=False)
