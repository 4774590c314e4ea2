"""Payments allocated to invoices, payment status, overdue invoices and reminders.

* A payment is a ledger entry of kind `payment` (or `topup`). It is allocated to the
  customer's open issued invoices, **oldest first** (due date, then number) unless an
  invoice is chosen, which is then served first. What is left stays unallocated (a
  credit on account) and goes to the next invoice issued (`allocate_open_payments`).
* An allocation is `min(what is left of the payment, what is open on the invoice)`:
  exact amounts, no rounding (docs/rounding.md). The database refuses allocating more
  than either has (0091's trigger), under row locks.
* Status of an issued invoice, derived, never stored (issued invoices are immutable):
  `paid` when nothing is open (credit notes count), `overdue` when something is open
  after the due date, `partly paid` when some is paid, else `issued`.
* Reminders: the `invoice_reminders` job queues one e-mail when an invoice becomes
  overdue, then one every `settings.reminder_interval_days` while it stays open; the
  dedupe key `invoice_reminder:<id>:<step>` makes a job that runs twice mail once.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask import render_template
from sqlalchemy import func, select, text

from ..ledger import services as ledger
from ..extensions import db
from ..models import Customer, Invoice, LedgerEntry, PaymentAllocation, Settings
from . import InvoiceError

PAYMENT_KINDS = ("payment", "topup")
LOCK_CLASS = 0x70617973  # "pays": one advisory lock per customer while allocating
STATUSES = ("issued", "partly paid", "paid", "overdue")


@dataclass(frozen=True)
class Balance:
    gross: Decimal
    credited: Decimal
    paid: Decimal
    open: Decimal
    due_date: date | None

    def status(self, today: date) -> str:
        if self.open <= 0:
            return "paid"
        if self.due_date is not None and self.due_date < today:
            return "overdue"
        return "partly paid" if self.paid > 0 else "issued"

    def days_overdue(self, today: date) -> int:
        return (today - self.due_date).days if self.due_date and self.open > 0 and self.due_date < today else 0


_BALANCES = text("""SELECT invoice_id, gross_total, credited, paid, open_amount, due_date
                      FROM billing.invoice_balances WHERE invoice_id = ANY(CAST(:ids AS bigint[]))""")


def balances(invoice_ids) -> dict[int, Balance]:
    """Paid, credited and open amounts of issued invoices (others are absent)."""
    ids = sorted(set(invoice_ids))
    if not ids:
        return {}
    return {row[0]: Balance(row[1], row[2], row[3], row[4], row[5]) for row in db.session.execute(_BALANCES, {"ids": ids})}


def balance(invoice: Invoice) -> Balance | None:
    return balances([invoice.id]).get(invoice.id)


def _lock_customer(customer_id: int) -> None:
    db.session.execute(text("SELECT pg_advisory_xact_lock(:cls, :key)"), {"cls": LOCK_CLASS, "key": customer_id})


def _open_invoices(customer_id: int) -> list[tuple[int, Decimal]]:
    rows = db.session.execute(text("""
        SELECT b.invoice_id, b.open_amount FROM billing.invoice_balances b
          JOIN billing.invoices i ON i.id = b.invoice_id
         WHERE b.customer_id = :customer_id AND b.open_amount > 0
         ORDER BY i.due_date NULLS LAST, i.issued_at, i.id"""), {"customer_id": customer_id}).all()
    return [(r[0], Decimal(r[1])) for r in rows]


def _unallocated_payments(customer_id: int) -> list[tuple[int, Decimal]]:
    rows = db.session.execute(text("""
        SELECT l.id, l.amount - coalesce(sum(a.amount), 0) AS left_over
          FROM billing.ledger l
          LEFT JOIN billing.payment_allocations a ON a.ledger_entry_id = l.id
         WHERE l.customer_id = :customer_id AND l.kind IN ('payment', 'topup') AND l.amount > 0
         GROUP BY l.id, l.amount, l.created_at
        HAVING l.amount - coalesce(sum(a.amount), 0) > 0
         ORDER BY l.created_at, l.id"""), {"customer_id": customer_id}).all()
    return [(r[0], Decimal(r[1])) for r in rows]


def unallocated_total(customer_id: int) -> Decimal:
    return sum((left for _, left in _unallocated_payments(customer_id)), Decimal(0))


def _allocate(entry_id: int, left: Decimal, targets: list[tuple[int, Decimal]], actor: str | None) -> Decimal:
    """Allocate up to `left` of entry `entry_id` over `targets` (invoice id, open) in
    order, updating their open amounts in place; returns what is still left."""
    for index, (invoice_id, open_amount) in enumerate(targets):
        if left <= 0:
            break
        if open_amount <= 0:
            continue
        amount = min(left, open_amount)
        db.session.add(PaymentAllocation(ledger_entry_id=entry_id, invoice_id=invoice_id, amount=amount,
                                         created_by=actor))
        db.session.flush()
        left -= amount
        targets[index] = (invoice_id, open_amount - amount)
    return left


def allocate_payment(entry: LedgerEntry, invoice: Invoice | None = None, actor: str | None = None) -> Decimal:
    """Allocate what is left of payment `entry`: to `invoice` first when chosen, then to
    the customer's open invoices oldest first. Returns the amount left unallocated."""
    if entry.kind not in PAYMENT_KINDS:
        raise InvoiceError(f"a {entry.kind} is not a payment")
    _lock_customer(entry.customer_id)
    left = next((rest for entry_id, rest in _unallocated_payments(entry.customer_id) if entry_id == entry.id),
                Decimal(0))
    targets = _open_invoices(entry.customer_id)
    if invoice is not None:
        if invoice.customer_id != entry.customer_id or not (invoice.kind == "invoice" and invoice.is_issued):
            raise InvoiceError("a payment goes to an issued invoice of the same customer")
        chosen = [t for t in targets if t[0] == invoice.id]
        if not chosen:
            raise InvoiceError(f"invoice {invoice.number} has nothing open")
        targets = chosen + [t for t in targets if t[0] != invoice.id]
    return _allocate(entry.id, left, targets, actor)


def allocate_open_payments(customer_id: int, actor: str | None = None) -> None:
    """Unallocated payments of the customer (oldest first) to its open invoices (oldest
    first): called when an invoice is issued, so a credit on account pays it."""
    _lock_customer(customer_id)
    payments = _unallocated_payments(customer_id)
    if not payments:
        return
    targets = _open_invoices(customer_id)
    for entry_id, left in payments:
        if not any(open_amount > 0 for _, open_amount in targets):
            break
        _allocate(entry_id, left, targets, actor)


def record_payment(customer: Customer, amount, reference: str | None = None, note: str | None = None,
                   invoice: Invoice | None = None, actor: str | None = None) -> tuple[LedgerEntry, Decimal]:
    """Post a payment received to the ledger and allocate it (to `invoice` first when
    given, then oldest first). Returns the entry and what is left unallocated."""
    if invoice is not None and not (invoice.kind == "invoice" and invoice.is_issued):
        raise InvoiceError("payments are recorded against issued invoices")
    try:
        entry = ledger.post_entry(customer, "payment", amount, note=note, reference=reference, actor=actor)
    except ledger.LedgerError as exc:
        raise InvoiceError(str(exc)) from None
    return entry, allocate_payment(entry, invoice, actor)


def allocations_of(invoice: Invoice) -> list[PaymentAllocation]:
    return list(db.session.scalars(select(PaymentAllocation).where(PaymentAllocation.invoice_id == invoice.id)
                                   .order_by(PaymentAllocation.id)))


# ---------------------------------------------------------------------------- overdue

@dataclass(frozen=True)
class Overdue:
    invoice: Invoice
    balance: Balance
    days: int
    reminders: int
    last_reminder: object


def overdue(today: date) -> list[Overdue]:
    """Issued invoices with something open after their due date, most overdue first."""
    invoices = db.session.scalars(text("""
        SELECT i.id FROM billing.invoices i JOIN billing.invoice_balances b ON b.invoice_id = i.id
         WHERE b.open_amount > 0 AND i.due_date < :today ORDER BY i.due_date, i.id""").bindparams(today=today)).all()
    if not invoices:
        return []
    found = {i.id: i for i in db.session.scalars(select(Invoice).where(Invoice.id.in_(invoices)))}
    sums = balances(invoices)
    reminders = dict(((r[0]), (r[1], r[2])) for r in db.session.execute(text("""
        SELECT invoice_id, count(*), max(created_at) FROM billing.mail_outbox
         WHERE invoice_id = ANY(CAST(:ids AS bigint[])) AND subject LIKE 'Reminder:%'
         GROUP BY invoice_id"""), {"ids": invoices}))
    return [Overdue(found[i], sums[i], sums[i].days_overdue(today), *reminders.get(i, (0, None))) for i in invoices]


def reminder_step(days_overdue: int, interval: int) -> int | None:
    """Which reminder is due `days_overdue` days after the due date: 0 from the first
    day overdue, 1 from `interval` days later, and so on; None when none is due."""
    if days_overdue < 1 or interval < 1:
        return None
    return (days_overdue - 1) // interval


def queue_reminder(item: Overdue, step: int | None, settings: Settings | None = None) -> int | None:
    """Queue the reminder e-mail (the invoice PDF attached). `step` None: an admin's
    extra reminder, never deduplicated. Returns the outbox id, None when deduplicated."""
    from ..mail.outbox import enqueue

    settings = settings or Settings.get()
    invoice = item.invoice
    body = render_template("mail/invoice_reminder.txt", invoice=invoice, balance=item.balance, days=item.days,
                           company=settings.company_name, bank=settings.company_bank_details)
    subject = f"Reminder: invoice {invoice.number} from {settings.company_name} is overdue"
    return enqueue("invoice", invoice.customer_email, subject, body, customer_id=invoice.customer_id,
                   invoice_id=invoice.id, dedupe_key=None if step is None else f"invoice_reminder:{invoice.id}:{step}")


@dataclass
class ReminderSummary:
    overdue: int = 0
    queued: int = 0
    without_email: int = 0

    def __str__(self) -> str:
        return (f"{self.overdue} overdue invoice(s): {self.queued} reminder(s) queued, "
                f"{self.without_email} without e-mail address")


def queue_reminders(today: date) -> ReminderSummary:
    """The `invoice_reminders` job: a reminder per overdue invoice whose step is due."""
    settings = Settings.get()
    summary = ReminderSummary()
    for item in overdue(today):
        summary.overdue += 1
        step = reminder_step(item.days, settings.reminder_interval_days)
        if step is None:
            continue
        if not item.invoice.customer_email:
            summary.without_email += 1
            continue
        if queue_reminder(item, step, settings) is not None:
            summary.queued += 1
    return summary


def open_totals(items: list[Overdue]) -> dict[str, Decimal]:
    """Open amounts of overdue invoices, per currency."""
    totals: dict[str, Decimal] = {}
    for item in items:
        totals[item.invoice.currency] = totals.get(item.invoice.currency, Decimal(0)) + item.balance.open
    return totals


def paid_so_far(invoice: Invoice) -> Decimal:
    return db.session.scalar(select(func.coalesce(func.sum(PaymentAllocation.amount), 0))
                             .where(PaymentAllocation.invoice_id == invoice.id))
