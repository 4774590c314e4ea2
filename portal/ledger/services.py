"""The ledger: the only way a balance changes. Every entry is one immutable row;
customers.balance is maintained by the database as their sum.

Sign convention: positive amounts credit the customer (top-ups, payments, credit
notes), negative amounts debit (calls). Adjustments may be either.

Reading: one customer's entries with the balance after each, the same history one
line per day, and the opening and closing balance of a period. The back office and
self care ask the same functions for the customer they show. Dates are whole days in
the database session's time zone, `date_to` included. Money stays Decimal.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from ..dbapi import fetch_all, fetch_one, fetch_value
from ..errors import Refused
from ..extensions import db
from ..models import Customer, LedgerEntry

MAX_AMOUNT = Decimal("1000000000")
# kind -> required sign of the amount (+1 credit, -1 debit, 0 either)
KINDS = {"topup": 1, "payment": 1, "credit_note": 1, "adjustment": 0, "initial": 0, "call": -1, "rerate": 0}


class LedgerError(Refused):
    """An entry that must not be posted; the message says why."""


def parse_amount(value) -> Decimal:
    """A money amount from user input: a decimal with at most 6 places, never a float."""
    if isinstance(value, float):
        raise LedgerError("amounts are decimals, not floats")
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise LedgerError(f"{value!r} is not an amount") from None
    if not amount.is_finite():
        raise LedgerError(f"{value!r} is not an amount")
    if amount.as_tuple().exponent < -6:
        raise LedgerError(f"{value} has more than 6 decimal places")
    if abs(amount) >= MAX_AMOUNT:
        raise LedgerError(f"{value} is too large")
    return amount


def post_entry(customer: Customer | int, kind: str, amount, note: str | None = None,
               reference: str | None = None, actor: str | None = None) -> LedgerEntry:
    """Add one ledger entry in the current transaction (the caller commits)."""
    if kind not in KINDS:
        raise LedgerError(f"unknown ledger kind {kind!r}")
    amount = parse_amount(amount)
    if amount == 0:
        raise LedgerError("the amount must not be zero")
    sign = KINDS[kind]
    if sign and (amount > 0) != (sign > 0):
        raise LedgerError(f"a {kind.replace('_', ' ')} must be {'positive' if sign > 0 else 'negative'}")
    customer_id = customer if isinstance(customer, int) else customer.id
    entry = LedgerEntry(customer_id=customer_id, kind=kind, amount=amount, note=note, reference=reference, created_by=actor)
    db.session.add(entry)
    db.session.flush()
    if not isinstance(customer, int):
        db.session.refresh(customer, ["balance"])
    return entry


# ----------------------------------------------------------------------------- reading

LABELS = {
    "initial": "Opening balance",
    "topup": "Top-up",
    "payment": "Payment",
    "credit_note": "Credit note",
    "adjustment": "Adjustment",
    "call": "Call",
    "rerate": "Re-rating",
}
# Groups a customer thinks of, over the ledger's internal kinds.
GROUPS = {
    "charges": ("call", "rerate"),
    "payments": ("topup", "payment"),
    "credit_notes": ("credit_note",),
    "adjustments": ("adjustment", "initial"),
}


@dataclass(frozen=True)
class LedgerFilter:
    date_from: date | None = None
    date_to: date | None = None          # inclusive
    group: str | None = None             # a key of GROUPS

    def __post_init__(self):
        if self.group and self.group not in GROUPS:
            raise LedgerError(f"unknown kind of entries {self.group!r}", "kind")

    def params(self, customer_id: int) -> dict:
        return {"c": customer_id, "date_from": self.date_from,
                "date_to_excl": self.date_to + timedelta(days=1) if self.date_to else None,
                "kinds": list(GROUPS[self.group]) if self.group else None}

    def where(self) -> str:
        where = ("l.customer_id = %(c)s"
                 " AND (CAST(%(date_from)s AS date) IS NULL OR l.created_at >= CAST(%(date_from)s AS date))"
                 " AND (CAST(%(date_to_excl)s AS date) IS NULL OR l.created_at < CAST(%(date_to_excl)s AS date))")
        if self.group:
            where += " AND l.kind = ANY(%(kinds)s)"
        return where


def entries(conn, customer_id: int, flt: LedgerFilter = LedgerFilter(), *, page: int = 1, per_page: int = 50,
            with_author: bool = False) -> tuple[list[dict], int]:
    """One page of the customer's entries, newest first, each with `balance_after`,
    and the number of entries the filter matches. `with_author` adds who posted each
    entry (`created_by`, an operator's address: staff only).

    The balance after an entry is the current balance minus every entry newer than it
    (customers.balance is the ledger's sum, kept by the database), read in the same
    statement so that calls billed meanwhile cannot skew it. Entries of one moment are
    ordered by id. Cost: the entries from the bottom of the page up to now, by
    ix_ledger_customer_id_created_at.
    """
    params = flt.params(customer_id) | {"limit": per_page, "offset": (page - 1) * per_page}
    where = flt.where()
    total = fetch_value(conn, f"SELECT count(*) FROM billing.ledger l WHERE {where}", params)
    author = ", l.created_by" if with_author else ""
    rows = fetch_all(conn, f"""
        WITH page AS (
            SELECT l.id, l.created_at, l.kind, l.amount, l.reference, l.note, l.call_uuid{author}
              FROM billing.ledger l
             WHERE {where}
             ORDER BY l.created_at DESC, l.id DESC
             LIMIT %(limit)s OFFSET %(offset)s),
        span AS (
            SELECT l.id,
                   sum(l.amount) OVER (ORDER BY l.created_at DESC, l.id DESC
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS newer
              FROM billing.ledger l
             WHERE l.customer_id = %(c)s
               AND (l.created_at, l.id) >= (SELECT p.created_at, p.id FROM page p
                                             ORDER BY p.created_at, p.id LIMIT 1))
        SELECT p.*, c.balance - coalesce(s.newer, 0) AS balance_after
          FROM page p
          JOIN span s ON s.id = p.id
          CROSS JOIN billing.customers c
         WHERE c.id = %(c)s
         ORDER BY p.created_at DESC, p.id DESC""", params)
    return rows, total


def days(conn, customer_id: int, flt: LedgerFilter = LedgerFilter(), *, page: int = 1,
         per_page: int = 50) -> tuple[list[dict], int]:
    """The ledger summarised per day, newest first: calls and their charges, other
    credits and debits, and the balance at the end of the day (`closing`); and the
    number of days. The closing balance of a day is the current balance minus
    everything after that day, so the window covers every entry since `date_from`
    (all entries without it). `flt.group` is not used: a day sums every kind."""
    flt = LedgerFilter(flt.date_from, flt.date_to)
    params = flt.params(customer_id) | {"limit": per_page, "offset": (page - 1) * per_page}
    rows = fetch_all(conn, """
        WITH days AS (
            SELECT date_trunc('day', l.created_at)::date AS day,
                   count(*) AS entries,
                   count(*) FILTER (WHERE l.kind = 'call') AS calls,
                   coalesce(sum(l.amount) FILTER (WHERE l.kind IN ('call', 'rerate')), 0) AS charges,
                   coalesce(sum(l.amount) FILTER (WHERE l.kind NOT IN ('call', 'rerate') AND l.amount > 0), 0) AS credits,
                   coalesce(sum(l.amount) FILTER (WHERE l.kind NOT IN ('call', 'rerate') AND l.amount < 0), 0) AS debits,
                   sum(l.amount) AS net
              FROM billing.ledger l
             WHERE l.customer_id = %(c)s
               AND (CAST(%(date_from)s AS date) IS NULL OR l.created_at >= CAST(%(date_from)s AS date))
             GROUP BY 1),
        closing AS (
            SELECT d.*, c.balance - coalesce(sum(d.net) OVER (ORDER BY d.day DESC
                                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS closing
              FROM days d CROSS JOIN billing.customers c
             WHERE c.id = %(c)s)
        SELECT *
          FROM closing
         WHERE CAST(%(date_to_excl)s AS date) IS NULL OR day < CAST(%(date_to_excl)s AS date)
         ORDER BY day DESC
         LIMIT %(limit)s OFFSET %(offset)s""", params)
    total = fetch_value(conn, f"SELECT count(DISTINCT date_trunc('day', l.created_at)) FROM billing.ledger l "
                              f"WHERE {flt.where()}", params)
    return rows, total


def period(conn, customer_id: int, flt: LedgerFilter = LedgerFilter()) -> dict:
    """Opening and closing balance of the filtered period and what moved in between
    (credits, debits). Opening = current balance minus everything since `date_from`
    (0 without it); closing = current balance minus everything after `date_to`."""
    return fetch_one(conn, """
        WITH since AS (
            SELECT l.amount, l.created_at >= coalesce(CAST(%(date_to_excl)s AS date), 'infinity') AS after_period
              FROM billing.ledger l
             WHERE l.customer_id = %(c)s
               AND l.created_at >= coalesce(CAST(%(date_from)s AS date), '-infinity'))
        SELECT c.balance - coalesce((SELECT sum(amount) FROM since), 0) AS opening,
               c.balance - coalesce((SELECT sum(amount) FROM since WHERE after_period), 0) AS closing,
               coalesce((SELECT sum(amount) FROM since WHERE NOT after_period AND amount > 0), 0) AS credits,
               coalesce((SELECT sum(amount) FROM since WHERE NOT after_period AND amount < 0), 0) AS debits
          FROM billing.customers c
         WHERE c.id = %(c)s""", flt.params(customer_id))
