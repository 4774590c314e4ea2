"""Billing services: thin wrappers over the stored procedures, plus top-ups.

Every function works in the current database transaction and leaves committing to
the caller (a CLI command or a view), so a caller can group several of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select, text

from ..extensions import db
from ..ledger.services import LedgerError, post_entry
from ..models import Customer, LedgerEntry, Provider


class BillingError(ValueError):
    """A billing request that cannot be carried out; the message says why."""


def customer_by_name(name: str) -> Customer:
    customer = db.session.scalar(select(Customer).where(Customer.name == name))
    if customer is None:
        raise BillingError(f"no customer named {name!r}")
    return customer


def topup(customer_name: str, amount, note: str | None = None, actor: str | None = None) -> LedgerEntry:
    """Credit a customer's balance (a 'topup' ledger entry). The caller commits."""
    customer = customer_by_name(customer_name)
    try:
        return post_entry(customer, "topup", amount, note=note, actor=actor)
    except LedgerError as exc:
        raise BillingError(str(exc)) from exc


@dataclass(frozen=True)
class RerateResult:
    rerated: int
    adjusted: int
    still_unrated: int

    def summary(self) -> str:
        return (f"{self.rerated} call(s) rated, {self.still_unrated} still unrated, "
                f"{self.adjusted} ledger adjustment(s) posted")


def period(start: date | datetime, end: date | datetime) -> tuple[datetime, datetime]:
    """[start, end) from what an operator types: a date as `end` includes that whole day."""
    if not isinstance(start, datetime):
        start = datetime.combine(start, time.min)
    if not isinstance(end, datetime):
        end = datetime.combine(end, time.min) + timedelta(days=1)
    if end <= start:
        raise BillingError(f"the period is empty: {start} .. {end}")
    return start, end


def rerate(start: date | datetime, end: date | datetime, customer_name: str | None = None,
           provider_name: str | None = None) -> RerateResult:
    """Re-rate raw CDRs of a period, of one customer and/or one provider or all
    (docs/billing.md, "Re-rating"). The caller commits.

    Dates without a time are days in the database session's time zone; `end` is inclusive
    when it is a date and exclusive when it is a date-time.
    """
    start, end = period(start, end)
    customer_id = customer_by_name(customer_name).id if customer_name else None
    provider_id = None
    if provider_name:
        provider = db.session.scalar(select(Provider).where(Provider.name == provider_name))
        if provider is None:
            raise BillingError(f"no provider named {provider_name!r}")
        provider_id = provider.id
    from ..retention.services import RetentionError, refuse_archived

    try:
        refuse_archived(db.session.connection().connection.dbapi_connection, start, end)
    except RetentionError as exc:
        raise BillingError(str(exc)) from exc
    row = db.session.execute(
        text("SELECT rerated, adjusted, still_unrated FROM billing_private.rerate(:f, :t, :c, :p)"),
        {"f": start, "t": end, "c": customer_id, "p": provider_id}).one()
    return RerateResult(*row)


def rerate_fs_cdr(fs_cdr_id: int) -> str:
    """Re-rate one raw CDR; returns its new status ('rated' or 'unrated')."""
    return db.session.execute(text("SELECT billing_private.rerate_fs_cdr(:i)"), {"i": fs_cdr_id}).scalar_one()


@dataclass(frozen=True)
class MaintenanceResult:
    holds_released: int
    partitions_created: int

    def summary(self) -> str:
        return f"{self.holds_released} stale hold(s) released, {self.partitions_created} CDR partition(s) created"


def sweep_holds(months_ahead: int = 3) -> MaintenanceResult:
    """Release stale holds and make sure CDR partitions exist ahead of time."""
    released = db.session.execute(text("SELECT billing_private.sweep_stale_holds()")).scalar_one()
    created = db.session.execute(text("SELECT billing_private.ensure_cdr_partitions(:m)"),
                                 {"m": months_ahead}).scalar_one()
    return MaintenanceResult(released, created)


def refresh_gateway_stats() -> int:
    return db.session.execute(text("SELECT billing_private.refresh_gateway_stats()")).scalar_one()
