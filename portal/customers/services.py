"""Customers' money and calls in progress, for every audience, and their alert settings.

Calls in progress are the holds route_call places and the CDR trigger releases
(billing.call_holds). `customer_id=None` is staff (every customer); a customer id
scopes a question to that customer. Money stays Decimal (psycopg2 returns numeric as
Decimal); display rounding happens only in the templates.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from .. import audit
from ..dbapi import fetch_all, fetch_one
from ..errors import NotFound, Refused
from ..extensions import db
from ..ledger.services import LedgerError, parse_amount
from ..models import Customer


# An address is exactly one mailbox (no lists such as `me@x.example,attacker@y.example`):
# the same rule as the database's domain billing.customer_email (0102).
ONE_MAILBOX = re.compile(r'[^@\s,;<>"()\[\]]+@[^@\s,;<>"()\[\]]+')


def is_one_mailbox(address: str) -> bool:
    return bool(ONE_MAILBOX.fullmatch(address or "")) and len(address) <= 254


@dataclass(frozen=True)
class Funds:
    name: str
    billing_type: str
    currency: str
    balance: Decimal
    credit_limit: Decimal
    holds: Decimal
    calls_in_progress: int
    low_balance_alert: Decimal | None

    @property
    def available(self) -> Decimal:
        """What new calls may spend: balance + credit limit - holds of calls in progress
        (every hold of the customer: the figure route_call decides with)."""
        return self.balance + self.credit_limit - self.holds

    @property
    def below_alert(self) -> bool:
        """The balance is under the customer's own alert threshold (the alert rule)."""
        return self.low_balance_alert is not None and self.balance < self.low_balance_alert


def funds(conn, customer_id: int) -> Funds:
    """Balance, credit and holds read in one statement, so they agree with each other.
    Cost: the customer's pk and ix_call_holds_customer_id."""
    row = fetch_one(conn, """
        SELECT c.name, c.billing_type, c.currency, c.balance, c.credit_limit, c.low_balance_alert,
               coalesce(h.amount, 0) AS holds, coalesce(h.calls, 0) AS calls_in_progress
          FROM billing.customers c
          LEFT JOIN LATERAL (SELECT sum(amount) AS amount, count(*) AS calls
                               FROM billing.call_holds WHERE customer_id = c.id) h ON true
         WHERE c.id = %(c)s""", {"c": customer_id})
    if row is None:
        raise NotFound("no such customer")
    return Funds(**row)


def _holds_where(customer_id: int | None, include_stale: bool) -> str:
    clauses = ["TRUE"]
    if customer_id is not None:
        clauses.append("h.customer_id = %(c)s")
    if not include_stale:
        clauses.append("h.expires_at > now()")
    return " AND ".join(clauses)


def calls_in_progress(conn, *, customer_id: int | None = None, limit: int = 100,
                      include_stale: bool = True) -> list[dict]:
    """Holds of calls in progress, newest first, with what each has been granted so far
    (credit in quotas, CONTRACT 1b): `granted_seconds` since the answer (the whole
    `max_duration` for holds without quotas), in `grants` grants, the last at
    `granted_at`; `amount` is what that grant reserves. `include_stale=False` leaves out
    holds past their expiry (a switch that crashed mid-call; the sweeper job removes
    them), which still reserve money until then."""
    return fetch_all(conn, f"""
        SELECT h.call_uuid, h.created_at, h.destination, h.sell_rate, h.amount, h.max_duration, h.expires_at,
               coalesce(h.granted_seconds, h.max_duration) AS granted_seconds, h.grants, h.granted_at,
               h.customer_id, cu.name AS customer, cu.currency, e.name AS endpoint
          FROM billing.call_holds h
          JOIN billing.customers cu ON cu.id = h.customer_id
          JOIN billing.endpoints e ON e.id = h.endpoint_id
         WHERE {_holds_where(customer_id, include_stale)}
         ORDER BY h.created_at DESC
         LIMIT %(limit)s""", {"c": customer_id, "limit": limit})


def holds_summary(conn, *, customer_id: int | None = None, include_stale: bool = True) -> dict:
    """How many calls are in progress and how much money their holds reserve."""
    return fetch_one(conn, f"""
        SELECT count(*) AS count, coalesce(sum(h.amount), 0) AS held
          FROM billing.call_holds h WHERE {_holds_where(customer_id, include_stale)}""", {"c": customer_id})


def low_balance(conn, limit: int = 10) -> list[dict]:
    """Enabled customers whose available funds (balance + credit limit) are below their
    alert threshold (or the default threshold of the settings), lowest first (staff)."""
    return fetch_all(conn, """
        SELECT cu.id, cu.name, cu.currency, cu.balance, cu.credit_limit, cu.balance + cu.credit_limit AS available,
               coalesce(cu.low_balance_alert, s.low_balance_default) AS threshold
          FROM billing.customers cu CROSS JOIN billing.settings s
         WHERE cu.enabled AND coalesce(cu.low_balance_alert, s.low_balance_default) IS NOT NULL
           AND cu.balance + cu.credit_limit < coalesce(cu.low_balance_alert, s.low_balance_default)
         ORDER BY cu.balance + cu.credit_limit, cu.name LIMIT %(limit)s""", {"limit": limit})


def prepaid_below_zero(conn, limit: int = 10) -> list[dict]:
    """Prepaid customers whose balance is below zero (staff): only a re-rate or a CDR
    without a hold can take them there (docs/billing.md); new calls are refused until a
    top-up. Lowest first. Cost: a scan of customers (few rows)."""
    return fetch_all(conn, """
        SELECT cu.id, cu.name, cu.currency, cu.balance
          FROM billing.customers cu
         WHERE cu.billing_type = 'prepaid' AND cu.balance < 0
         ORDER BY cu.balance, cu.name LIMIT %(limit)s""", {"limit": limit})


# ----------------------------------------------------------------------------- alert settings

def parse_threshold(value: str | None) -> Decimal | None:
    """A low-balance threshold: empty for none, else an amount with at most 6 decimals.
    Negative thresholds are allowed (postpaid customers run below zero)."""
    if value is None or not str(value).strip():
        return None
    try:
        return parse_amount(str(value).replace(",", "").strip())
    except LedgerError as exc:
        raise Refused(str(exc).capitalize() + ".", "low_balance_alert") from None


def update_alert_settings(customer_id: int, *, low_balance_alert: Decimal | None, email: str | None,
                          daily_balance_email: bool, actor: str,
                          verify_address: Callable[[Customer, str, str], None]) -> Customer:
    """The low-balance alert threshold, the alert address and the daily balance e-mail;
    audited with old and new values, committed. A new address is not stored: the audience
    passes `verify_address(customer, address, actor)`, which sends it a verification link
    in this transaction (self care: selfcare.email_verification.request_change), and the
    address changes when the link is opened. Clearing the address takes effect at once."""
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("no such customer")
    email = (email or "").strip() or None
    if email and not is_one_mailbox(email):
        raise Refused("Enter one e-mail address like billing@example.com.", "email")
    if email is None and (low_balance_alert is not None or daily_balance_email):
        raise Refused("Alerts and the daily balance are sent by e-mail: enter an address.", "email")
    before = {"low_balance_alert": customer.low_balance_alert, "email": customer.email,
              "daily_balance_email": customer.daily_balance_email}
    customer.low_balance_alert = low_balance_alert
    if email is None:
        customer.email = None
    customer.daily_balance_email = bool(daily_balance_email)
    after = {"low_balance_alert": low_balance_alert, "email": customer.email,
             "daily_balance_email": bool(daily_balance_email)}
    audit.record("selfcare_settings_changed", "customer", customer.id, actor=actor,
                 **{k: [before[k], after[k]] for k in after if before[k] != after[k]})
    if email is not None and email != customer.email:   # a new address: verified by a link first
        verify_address(customer, email, actor)
    db.session.commit()
    return customer
