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
from ..dbapi import fetch_all, fetch_one, like_escape
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


# A customer with its money: balance, credit limit, what calls in progress reserve and
# what is left for new calls, in one statement (so the figures agree), plus its ratecards.
_ACCOUNT = """
    SELECT c.id, c.name, c.display_name, c.enabled, c.billing_type, c.currency, c.balance, c.credit_limit,
           coalesce(h.amount, 0) AS reserved, coalesce(h.calls, 0) AS calls_in_progress,
           c.balance + c.credit_limit - coalesce(h.amount, 0) AS available,
           c.max_calls, c.lcr_strategy, c.allow_negative_margin, c.low_balance_alert, c.email, c.tax_rate,
           c.daily_balance_email, c.legal_name, c.address, c.vat_id, c.payment_terms_days, c.created_at,
           ARRAY(SELECT cr.ratecard_id FROM billing.customer_ratecards cr
                  WHERE cr.customer_id = c.id ORDER BY cr.priority) AS ratecard_ids
      FROM billing.customers c
      LEFT JOIN LATERAL (SELECT sum(amount) AS amount, count(*) AS calls
                           FROM billing.call_holds WHERE customer_id = c.id) h ON true"""


def accounts(conn, *, customer_id: int | None = None, query: str | None = None, enabled: bool | None = None,
             after: int | None = None, limit: int = 100) -> list[dict]:
    """Customers with their money (balance, credit limit, reserved by calls in progress,
    available), by id, `limit` after the id `after` (keyset pages); `query` searches the
    name, display name and e-mail. `customer_id` scopes to that customer (None: staff).
    Cost: the customers' pk, then ix_call_holds_customer_id per customer."""
    clauses, params = ["TRUE"], {"limit": limit, "after": after}
    if customer_id is not None:
        clauses.append("c.id = %(c)s")
        params["c"] = customer_id
    if after is not None:
        clauses.append("c.id > %(after)s")
    if enabled is not None:
        clauses.append("c.enabled = %(enabled)s")
        params["enabled"] = enabled
    if query:
        clauses.append("(c.name ILIKE %(q)s OR c.display_name ILIKE %(q)s OR c.email ILIKE %(q)s)")
        params["q"] = "%" + like_escape(query) + "%"
    return fetch_all(conn, f"{_ACCOUNT} WHERE {' AND '.join(clauses)} ORDER BY c.id LIMIT %(limit)s", params)


def account(conn, ident: int, *, customer_id: int | None = None) -> dict:
    """One customer with its money; another customer's (outside the scope) or a missing
    one is NotFound."""
    if customer_id is not None and ident != customer_id:
        raise NotFound("no such customer")
    row = fetch_one(conn, f"{_ACCOUNT} WHERE c.id = %(id)s", {"id": ident})
    if row is None:
        raise NotFound("no such customer")
    return row


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
               coalesce(h.granted_seconds, h.max_duration) AS granted_seconds, h.grants, h.granted_at, h.endpoint_id,
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
