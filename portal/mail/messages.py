"""The messages the platform sends: what triggers them and what they say.

Bodies are plain-text templates in templates/mail/. Each message has a dedupe key,
so running a job twice never mails twice.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

from flask import render_template
from sqlalchemy import func, select

from ..extensions import db
from ..models import BalanceEvent, CallHold, Cdr, Customer, Invoice, Settings
from .outbox import enqueue


def queue_invoice_issued(invoice: Invoice, again: bool = False) -> int | None:
    """Queue the document's e-mail with its PDF; `again` sends another copy (admin resend)."""
    settings = Settings.get()
    body = render_template("mail/invoice_issued.txt", invoice=invoice, company=settings.company_name)
    subject = f"{invoice.title} {invoice.number} from {settings.company_name}"
    return enqueue("invoice", invoice.customer_email, subject, body, customer_id=invoice.customer_id,
                   invoice_id=invoice.id, dedupe_key=None if again else f"invoice:{invoice.id}")


@dataclass
class AlertSummary:
    queued: int = 0
    without_email: int = 0
    events: int = 0

    def __str__(self) -> str:
        return (f"{self.events} new crossing(s): {self.queued} alert(s) queued, "
                f"{self.without_email} customer(s) without e-mail")


def queue_low_balance_alerts() -> AlertSummary:
    """One alert per crossing: every pending low-balance event is marked notified in the
    same transaction as its mail is queued. Several pending crossings of one customer
    (a top-up and a new crossing before the job ran) give one mail about the latest."""
    summary = AlertSummary()
    events = db.session.scalars(select(BalanceEvent).where(
        BalanceEvent.notified_at.is_(None), BalanceEvent.kind == "low_balance")
        .order_by(BalanceEvent.customer_id, BalanceEvent.created_at, BalanceEvent.id)
        .with_for_update(skip_locked=True)).all()
    latest: dict[int, BalanceEvent] = {}
    now = datetime.now(timezone.utc)
    for event in events:
        latest[event.customer_id] = event
        event.notified_at = now
    summary.events = len(events)
    company = Settings.get().company_name
    from ..webhooks import services as webhooks

    for customer_id, event in latest.items():
        customer = db.session.get(Customer, customer_id)
        webhooks.balance_low(event, customer)
        if not customer.email:
            summary.without_email += 1
            continue
        body = render_template("mail/low_balance.txt", customer=customer, event=event, company=company)
        enqueue("low_balance", customer.email, f"Low balance on your {company} account {customer.name}", body,
                customer_id=customer.id, dedupe_key=f"low_balance:{event.id}")
        summary.queued += 1
    db.session.flush()
    return summary


def queue_daily_balances(day: date, tz) -> int:
    """Queue the balance e-mail of `day` for every customer who asked for one; the
    message reports the calls of the day before. Returns how many were queued."""
    start = datetime.combine(day - timedelta(days=1), time(0), tzinfo=tz)
    end = datetime.combine(day, time(0), tzinfo=tz)
    holds = (select(CallHold.customer_id, func.sum(CallHold.amount).label("held"))
             .group_by(CallHold.customer_id).subquery())
    usage = (select(Cdr.customer_id, func.count().label("calls"), func.sum(Cdr.sell_amount).label("spent"))
             .where(Cdr.start_stamp >= start, Cdr.start_stamp < end, Cdr.status == "rated", Cdr.billsec > 0)
             .group_by(Cdr.customer_id).subquery())
    rows = db.session.execute(
        select(Customer, func.coalesce(holds.c.held, 0), func.coalesce(usage.c.calls, 0),
               func.coalesce(usage.c.spent, 0))
        .outerjoin(holds, holds.c.customer_id == Customer.id)
        .outerjoin(usage, usage.c.customer_id == Customer.id)
        .where(Customer.daily_balance_email.is_(True), Customer.email.is_not(None), Customer.enabled.is_(True))
        .order_by(Customer.id)).all()
    company = Settings.get().company_name
    queued = 0
    for customer, held, calls, spent in rows:
        available = customer.balance + customer.credit_limit - Decimal(held)
        body = render_template("mail/daily_balance.txt", customer=customer, day=day, yesterday=day - timedelta(days=1),
                               held=Decimal(held), available=available, calls=calls, spent=Decimal(spent),
                               company=company)
        if enqueue("daily_balance", customer.email, f"{company}: balance of {customer.name} on {day}", body,
                   customer_id=customer.id, dedupe_key=f"daily_balance:{customer.id}:{day}") is not None:
            queued += 1
    return queued
