"""Endpoints for every audience: `customer_id=None` is staff (every endpoint); a
customer id scopes a question to that customer's endpoints, and an endpoint of
another customer is NotFound exactly like a missing one.

SIP passwords: one policy (sip_password_problem) and one generator
(suggest_sip_password) for customers changing their own and admins creating or
rotating one.
"""
from __future__ import annotations

import re
import secrets
import string

from .. import audit
from ..dbapi import fetch_all
from ..errors import NotFound, Refused
from ..extensions import db
from ..models import Endpoint, Settings


def _scope(customer_id: int | None) -> str:
    return "TRUE" if customer_id is None else "e.customer_id = %(c)s"


def names(conn, *, customer_id: int | None = None, limit: int | None = None) -> list[dict]:
    """id, name and auth of the endpoints, by name (choices of a filter)."""
    return fetch_all(conn, f"SELECT e.id, e.name, e.auth FROM billing.endpoints e WHERE {_scope(customer_id)} "
                           "ORDER BY e.name LIMIT %(limit)s", {"c": customer_id, "limit": limit})


def listing(conn, *, customer_id: int | None = None) -> list[dict]:
    """Endpoints with their permission and destination classes, this month's spend and
    calls in progress; SIP accounts first. Never the SIP password."""
    return fetch_all(conn, f"""
        SELECT e.id, e.customer_id, e.name, e.auth, e.ip, e.username, e.enabled, e.max_calls, e.spend_limit_month,
               e.strip_digits, e.add_prefix, p.name AS permission,
               (SELECT string_agg(w.name, ', ' ORDER BY w.name)
                  FROM billing.permission_weights pw JOIN billing.weights w ON w.id = pw.weight_id
                 WHERE pw.permission_id = e.permission_id) AS classes,
               coalesce((SELECT s.amount FROM billing.endpoint_month_spend s
                          WHERE s.endpoint_id = e.id AND s.month = date_trunc('month', now())::date), 0) AS month_spend,
               (SELECT count(*) FROM billing.call_holds h WHERE h.endpoint_id = e.id) AS calls_in_progress
          FROM billing.endpoints e JOIN billing.permissions p ON p.id = e.permission_id
         WHERE {_scope(customer_id)}
         ORDER BY e.auth DESC, e.name""", {"c": customer_id})


def sip_domain() -> str:
    """The SIP domain customers register to (settings.sip_domain)."""
    return Settings.get().sip_domain


def sip_account(endpoint_id: int, *, customer_id: int | None) -> Endpoint:
    """One SIP account; anything else (another customer's, an IP endpoint, a missing
    id) is NotFound."""
    query = db.select(Endpoint).where(Endpoint.id == endpoint_id, Endpoint.auth == "sip")
    if customer_id is not None:
        query = query.where(Endpoint.customer_id == customer_id)
    endpoint = db.session.scalar(query)
    if endpoint is None:
        raise NotFound("no such SIP account")
    return endpoint


SIP_PASSWORD_MIN = 12
SIP_PASSWORD_MAX = 128
# Characters every SIP phone's configuration screen and provisioning file accepts.
SIP_PASSWORD_SYMBOLS = "-_.!@#$%^*+=~:,?/"
_SIP_PASSWORD_CHARS = set(string.ascii_letters + string.digits + SIP_PASSWORD_SYMBOLS)


def sip_password_problem(password: str, username: str | None) -> str | None:
    """Why a SIP password is too weak, or None. SIP accounts are scanned and
    brute-forced from the internet all day, and a stolen one places calls on the
    customer's money, so the bar is higher than for the portal."""
    if len(password) < SIP_PASSWORD_MIN:
        return f"Use at least {SIP_PASSWORD_MIN} characters."
    if len(password) > SIP_PASSWORD_MAX:
        return f"Use at most {SIP_PASSWORD_MAX} characters."
    bad = sorted(set(password) - _SIP_PASSWORD_CHARS)
    if bad:
        return ("Only letters, digits and " + " ".join(SIP_PASSWORD_SYMBOLS)
                + " are allowed (not " + " ".join(repr(c) for c in bad) + ").")
    classes = sum(bool(re.search(p, password)) for p in ("[a-z]", "[A-Z]", "[0-9]", r"[^A-Za-z0-9]"))
    if classes < 3:
        return "Mix at least three of: lower-case letters, upper-case letters, digits, symbols."
    if len(set(password)) < 6:
        return "Use more different characters."
    if username and username.lower() in password.lower():
        return "The password must not contain the SIP user name."
    return None


def suggest_sip_password() -> str:
    """A random password that passes sip_password_problem (16 characters, about 95 bits)."""
    alphabet = string.ascii_letters + string.digits + "-_.+="
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(16))
        if sip_password_problem(candidate, None) is None:
            return candidate


def change_sip_password(endpoint_id: int, new_password: str, *, customer_id: int | None, actor: str) -> Endpoint:
    """Set a SIP account's password (it must pass the policy and differ from the
    current one); audited without the password, committed."""
    endpoint = sip_account(endpoint_id, customer_id=customer_id)
    problem = sip_password_problem(new_password, endpoint.username)
    if problem:
        raise Refused(problem, "password")
    if new_password == endpoint.password:
        raise Refused("This is the current password: choose a new one.", "password")
    endpoint.password = new_password
    audit.record("sip_password_changed", "endpoint", endpoint.id, actor=actor, name=endpoint.name)
    db.session.commit()
    return endpoint
