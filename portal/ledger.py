"""The ledger: the only way a balance changes. Every entry is one immutable row;
customers.balance is maintained by the database as their sum.

Sign convention: positive amounts credit the customer (top-ups, payments, credit
notes), negative amounts debit (calls). Adjustments may be either.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from .extensions import db
from .models import Customer, LedgerEntry

MAX_AMOUNT = Decimal("1000000000")
# kind -> required sign of the amount (+1 credit, -1 debit, 0 either)
KINDS = {"topup": 1, "payment": 1, "credit_note": 1, "adjustment": 0, "initial": 0, "call": -1, "rerate": 0}


class LedgerError(ValueError):
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
