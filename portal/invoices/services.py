"""Build, issue and correct invoices, statements and credit notes.

Rounding (docs/invoices.md, tested in tests/invoices/test_arithmetic.py):
* a line's amount is the exact sum of its calls' 6-decimal charges, rounded half-up
  to 2 decimals once per line;
* net total = sum of the rounded lines;
* tax = net total x tax rate, rounded half-up to 2 decimals (once, on the total);
* gross total = net + tax.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, select, text

from ..errors import NotFound
from ..extensions import db
from ..ledger import services as ledger
from ..models import Customer, Invoice, InvoiceLine, LedgerEntry, Settings
from . import InvoiceError, legal
from .numbering import SERIES, next_number

CENT = Decimal("0.01")
PAYMENT_KINDS = ("payment", "topup", "initial")
ADJUSTMENT_KINDS = ("adjustment", "rerate")
OTHER_DESTINATIONS = "Other destinations"


def round_money(value: Decimal) -> Decimal:
    """Half-up to 2 decimals: the one rounding rule of documents."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # exclusive

    def __post_init__(self):
        if self.end <= self.start:
            raise InvoiceError(f"the period must end after it starts ({self.start} .. {self.end})")

    @classmethod
    def month(cls, year: int, month: int) -> "Period":
        last = calendar.monthrange(year, month)[1]
        return cls(date(year, month, 1), date(year, month, last) + timedelta(days=1))

    @classmethod
    def previous_month(cls, today: date) -> "Period":
        first = today.replace(day=1)
        prev = first - timedelta(days=1)
        return cls.month(prev.year, prev.month)

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    def label(self) -> str:
        return f"{self.start:%Y-%m-%d} – {self.last_day:%Y-%m-%d}"


def minutes(seconds: int) -> str:
    """Billed seconds shown as minutes with 2 decimals (display only)."""
    return f"{(Decimal(seconds) / 60).quantize(CENT, rounding=ROUND_HALF_UP):,.2f}"


def percent(rate: Decimal) -> str:
    value = (Decimal(rate) * 100).normalize()
    return f"{value:f} %"


def billing_tz() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("BILLING_TIMEZONE") or "UTC")


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=billing_tz())


def local_today() -> date:
    return datetime.now(billing_tz()).date()


def tax_rate_for(customer: Customer) -> Decimal:
    if customer.tax_rate is not None:
        return customer.tax_rate
    return Settings.get().default_tax_rate


def tax_treatment_for(customer: Customer) -> legal.TaxTreatment:
    """The customer's (or the default) rate, or EU reverse charge (docs/invoices.md)."""
    return legal.tax_treatment(Settings.get().company_vat_id, customer.vat_id, tax_rate_for(customer))


def payment_terms_for(customer: Customer) -> int:
    if customer.payment_terms_days is not None:
        return customer.payment_terms_days
    return Settings.get().payment_terms_days


def seller_snapshot() -> dict:
    s = Settings.get()
    return {"name": s.company_name, "address": s.company_address, "vat_id": s.company_vat_id,
            "email": s.company_email, "footer": s.invoice_footer, "logo": s.company_logo,
            "registration": s.company_registration, "bank_details": s.company_bank_details}


# ------------------------------------------------------------------------ computing

@dataclass(frozen=True)
class UsageLine:
    description: str
    prefix: str | None
    calls: int
    seconds: int
    amount_exact: Decimal

    @property
    def amount(self) -> Decimal:
        return round_money(self.amount_exact)


_USAGE_SQL = text("""
    WITH usage AS (
        SELECT coalesce(c.sell_prefix, c.destination) AS key,
               count(*) AS calls, sum(c.billed_seconds) AS seconds, sum(c.sell_amount) AS amount
          FROM billing.cdr c
         WHERE c.customer_id = :customer_id AND c.status = 'rated'
           AND c.start_stamp >= :start AND c.start_stamp < :end
           AND (c.billsec > 0 OR c.sell_amount <> 0)
         GROUP BY 1
    )
    SELECT d.name, d.prefix, sum(u.calls)::integer, sum(u.seconds)::bigint, sum(u.amount)
      FROM usage u
      LEFT JOIN LATERAL (
            SELECT dd.name, dd.prefix FROM billing.destinations dd
             WHERE dd.prefix IN (SELECT left(u.key, n) FROM generate_series(1, length(u.key)) AS n)
             ORDER BY length(dd.prefix) DESC LIMIT 1) d ON true
     GROUP BY d.name, d.prefix
     ORDER BY d.name NULLS LAST, d.prefix""")


def usage_lines(customer_id: int, period: Period) -> list[UsageLine]:
    """Rated calls of the period by destination (longest prefix of the rated prefix)."""
    rows = db.session.execute(_USAGE_SQL, {"customer_id": customer_id, "start": local_midnight(period.start),
                                           "end": local_midnight(period.end)}).all()
    lines = []
    for name, prefix, calls, seconds, amount in rows:
        description = f"{name} ({prefix})" if name else OTHER_DESTINATIONS
        lines.append(UsageLine(description, prefix, calls, seconds or 0, Decimal(amount)))
    return lines


def _ledger_sums(customer_id: int, period: Period) -> dict[str, Decimal]:
    start, end = local_midnight(period.start), local_midnight(period.end)
    row = db.session.execute(select(
        func.coalesce(func.sum(LedgerEntry.amount).filter(LedgerEntry.created_at < start), 0),
        func.coalesce(func.sum(LedgerEntry.amount).filter(LedgerEntry.created_at < end), 0),
        func.coalesce(func.sum(LedgerEntry.amount).filter(LedgerEntry.created_at >= start, LedgerEntry.created_at < end,
                                                          LedgerEntry.kind.in_(PAYMENT_KINDS)), 0),
        func.coalesce(func.sum(LedgerEntry.amount).filter(LedgerEntry.created_at >= start, LedgerEntry.created_at < end,
                                                          LedgerEntry.kind == "credit_note"), 0),
        func.coalesce(func.sum(LedgerEntry.amount).filter(LedgerEntry.created_at >= start, LedgerEntry.created_at < end,
                                                          LedgerEntry.kind.in_(ADJUSTMENT_KINDS)), 0),
        func.count().filter(LedgerEntry.created_at >= start, LedgerEntry.created_at < end,
                            LedgerEntry.kind != "call"),
    ).where(LedgerEntry.customer_id == customer_id)).one()
    keys = ("opening", "closing", "payments", "credits", "adjustments", "entries")
    return dict(zip(keys, row))


def ledger_entries(invoice: Invoice) -> list[LedgerEntry]:
    """Payments, credit notes and adjustments of the document's period (calls are its lines)."""
    period = Period(invoice.period_start, invoice.period_end)
    return list(db.session.scalars(
        select(LedgerEntry).where(LedgerEntry.customer_id == invoice.customer_id, LedgerEntry.kind != "call",
                                  LedgerEntry.created_at >= local_midnight(period.start),
                                  LedgerEntry.created_at < local_midnight(period.end))
        .order_by(LedgerEntry.created_at, LedgerEntry.id)))


def totals(lines_amounts: list[Decimal], tax_rate: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """(net, tax, gross) from already rounded line amounts."""
    net = sum(lines_amounts, Decimal("0.00"))
    tax = round_money(net * tax_rate)
    return net, tax, net + tax


# ------------------------------------------------------------------------- reading

def issued(*, customer_id: int | None):
    """Issued documents (invoices, statements, credit notes), newest first, as a select
    to page; `customer_id` scopes to one customer (None: staff). Drafts are never shown
    to customers."""
    query = select(Invoice).where(Invoice.status == "issued")
    if customer_id is not None:
        query = query.where(Invoice.customer_id == customer_id)
    return query.order_by(Invoice.issued_at.desc(), Invoice.id.desc())


def issued_document(invoice_id: int, *, customer_id: int | None) -> Invoice:
    """One issued document within the scope; a draft, another customer's document or a
    missing id is NotFound."""
    invoice = db.session.scalar(issued(customer_id=customer_id).where(Invoice.id == invoice_id))
    if invoice is None:
        raise NotFound("no such document")
    return invoice


# ------------------------------------------------------------------------- building

def _overlapping(customer_id: int, period: Period) -> Invoice | None:
    return db.session.scalar(select(Invoice).where(
        Invoice.customer_id == customer_id, Invoice.kind != "credit_note",
        Invoice.period_start < period.end, Invoice.period_end > period.start,
        ~((Invoice.period_start == period.start) & (Invoice.period_end == period.end))).limit(1))


def build_draft(customer: Customer, period: Period) -> Invoice:
    """Create (or rebuild) the draft invoice / statement of `customer` for `period`.

    Postpaid customers get an invoice, prepaid customers a statement. Periods of one
    customer never overlap, so no call is billed twice.
    """
    kind = "statement" if customer.billing_type == "prepaid" else "invoice"
    clash = _overlapping(customer.id, period)
    if clash is not None:
        raise InvoiceError(f"{customer.name} already has a {clash.kind} for {clash.period_start} – "
                           f"{clash.period_end - timedelta(days=1)}, which overlaps {period.label()}")
    invoice = db.session.scalar(select(Invoice).where(
        Invoice.customer_id == customer.id, Invoice.kind == kind,
        Invoice.period_start == period.start, Invoice.period_end == period.end).with_for_update())
    if invoice is not None and invoice.is_issued:
        raise InvoiceError(f"{invoice.title.lower()} {invoice.number} for {customer.name} and {period.label()} is "
                           "already issued: correct it with a credit note")
    usage = usage_lines(customer.id, period)
    sums = _ledger_sums(customer.id, period)
    treatment = legal.TaxTreatment(Decimal(0), False, None) if kind == "statement" else tax_treatment_for(customer)
    tax_rate = treatment.rate
    net, tax, gross = totals([u.amount for u in usage], tax_rate)
    if invoice is None:
        invoice = Invoice(customer_id=customer.id, kind=kind, period_start=period.start, period_end=period.end)
    else:
        db.session.execute(InvoiceLine.__table__.delete().where(InvoiceLine.invoice_id == invoice.id))
        db.session.expire(invoice, ["lines"])
    invoice.currency = customer.currency
    invoice.tax_rate = tax_rate
    invoice.net_total, invoice.tax_total, invoice.gross_total = net, tax, gross
    invoice.payments_total = round_money(sums["payments"])
    invoice.credits_total = round_money(sums["credits"])
    invoice.adjustments_total = round_money(sums["adjustments"])
    invoice.opening_balance = sums["opening"]
    invoice.closing_balance = sums["closing"]
    invoice.customer_name = customer.label
    invoice.customer_email = customer.email
    invoice.customer_snapshot = legal.customer_snapshot(customer)
    invoice.reverse_charge, invoice.tax_note = treatment.reverse_charge, treatment.note
    invoice.seller = seller_snapshot()
    db.session.add(invoice)
    db.session.flush()
    for position, u in enumerate(usage, start=1):
        db.session.add(InvoiceLine(invoice_id=invoice.id, position=position, kind="calls", description=u.description,
                                   prefix=u.prefix, calls=u.calls, seconds=u.seconds, amount_exact=u.amount_exact,
                                   amount=u.amount))
    db.session.flush()
    db.session.expire(invoice, ["lines"])
    return invoice


def has_activity(invoice: Invoice) -> bool:
    """Calls or ledger entries (other than calls) in the document's period."""
    return bool(invoice.lines) or _ledger_sums(invoice.customer_id, Period(invoice.period_start,
                                                                          invoice.period_end))["entries"] > 0


def issue(invoice: Invoice, actor: str | None = None, issued_at: datetime | None = None) -> Invoice:
    """Number a draft and make it immutable; posts the tax of an invoice to the ledger
    and queues the invoice e-mail, all in the current transaction (the caller commits)."""
    locked = db.session.scalar(select(Invoice).where(Invoice.id == invoice.id).with_for_update())
    if locked is None:
        raise InvoiceError("this draft no longer exists")
    if locked.is_issued:
        raise InvoiceError(f"{locked.title.lower()} {locked.number} is already issued")
    if locked.kind != "credit_note" and locked.period_end > local_today():
        raise InvoiceError(f"the period {Period(locked.period_start, locked.period_end).label()} has not ended yet: "
                           "issue it once it is over")
    issued_at = issued_at or datetime.now(timezone.utc)
    if locked.kind == "invoice":
        # Due date and terms are set in the UPDATE that issues it (immutable afterwards).
        issue_day = issued_at.astimezone(billing_tz()).date()
        locked.payment_terms_days = payment_terms_for(locked.customer)
        locked.due_date = legal.due_date(issue_day, locked.payment_terms_days)
    _assign_number(locked, actor, issued_at)
    if locked.kind == "invoice" and locked.tax_total != 0:
        # Calls debited the net amount; the tax becomes owed when the invoice is issued.
        ledger.post_entry(locked.customer_id, "adjustment", -locked.tax_total,
                          note=f"Tax on invoice {locked.number}", reference=locked.number, actor=actor)
    if locked.kind == "invoice":
        from .payments import allocate_open_payments  # payments build on issued invoices

        allocate_open_payments(locked.customer_id, actor=actor)
    _queue_issued_mail(locked)
    return locked


def _assign_number(invoice: Invoice, actor: str | None, issued_at: datetime | None,
                   ledger_entry_id: int | None = None, number: tuple | None = None) -> None:
    """Number and issue `invoice` with one UPDATE (the trigger refuses any later change)."""
    issued_at = issued_at or datetime.now(timezone.utc)
    series, year, seq, text_number = number or _take_number(invoice.kind, issued_at)
    invoice.series, invoice.year, invoice.seq, invoice.number = series, year, seq, text_number
    invoice.issued_at, invoice.issued_by, invoice.status = issued_at, actor, "issued"
    if ledger_entry_id is not None:
        invoice.ledger_entry_id = ledger_entry_id
    db.session.flush()


def _take_number(kind: str, issued_at: datetime) -> tuple[str, int, int, str]:
    series = SERIES[kind]
    year = issued_at.astimezone(billing_tz()).year
    seq, text_number = next_number(series, year)
    return series, year, seq, text_number


def _queue_issued_mail(invoice: Invoice) -> None:
    from ..mail import messages  # mail depends on invoices for attachments

    if invoice.customer_email:
        messages.queue_invoice_issued(invoice)


def delete_draft(invoice: Invoice) -> None:
    if invoice.is_issued:
        raise InvoiceError(f"{invoice.title.lower()} {invoice.number} is issued and cannot be deleted: "
                           "correct it with a credit note")
    db.session.delete(invoice)
    db.session.flush()


def parse_credit_amount(value) -> Decimal:
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvoiceError(f"{value!r} is not an amount") from None
    if not amount.is_finite() or amount <= 0:
        raise InvoiceError("the amount to credit must be positive")
    if amount.as_tuple().exponent < -2:
        raise InvoiceError("the amount to credit has at most 2 decimal places")
    return amount


def credited_so_far(invoice: Invoice) -> Decimal:
    return db.session.scalar(select(func.coalesce(func.sum(Invoice.gross_total), 0))
                             .where(Invoice.corrects_invoice_id == invoice.id, Invoice.kind == "credit_note"))


def issue_credit_note(invoice: Invoice, net_amount, reason: str, actor: str | None = None,
                      issued_at: datetime | None = None) -> Invoice:
    """Correct an issued invoice or statement: a numbered credit note of `net_amount`
    (plus the original's tax rate) and a ledger 'credit_note' entry of its gross total."""
    if not invoice.is_issued or invoice.kind == "credit_note":
        raise InvoiceError("only an issued invoice or statement can be corrected by a credit note")
    reason = (reason or "").strip()
    if not reason:
        raise InvoiceError("say why the credit note is issued")
    net = parse_credit_amount(net_amount)
    # Serialise credit notes of one invoice so two cannot both pass the limit check.
    db.session.execute(select(Invoice.id).where(Invoice.id == invoice.id).with_for_update())
    _, tax, gross = totals([net], invoice.tax_rate)
    remaining = invoice.gross_total - credited_so_far(invoice)
    if gross > remaining:
        raise InvoiceError(f"at most {remaining} {invoice.currency} (tax included) of {invoice.number} can still be "
                           f"credited; {gross} was asked")
    note = Invoice(customer_id=invoice.customer_id, kind="credit_note", period_start=invoice.period_start,
                   period_end=invoice.period_end, currency=invoice.currency, tax_rate=invoice.tax_rate,
                   net_total=net, tax_total=tax, gross_total=gross, customer_name=invoice.customer_name,
                   customer_email=invoice.customer_email, seller=seller_snapshot(), corrects_invoice_id=invoice.id,
                   note=reason, customer_snapshot=invoice.customer_snapshot, reverse_charge=invoice.reverse_charge,
                   tax_note=invoice.tax_note)
    db.session.add(note)
    db.session.flush()
    db.session.add(InvoiceLine(invoice_id=note.id, position=1, kind="correction",
                               description=f"Correction of {invoice.number}: {reason}", amount_exact=net, amount=net))
    db.session.flush()
    issued_at = issued_at or datetime.now(timezone.utc)
    number = _take_number("credit_note", issued_at)
    entry = ledger.post_entry(invoice.customer_id, "credit_note", gross, note=f"{number[3]}: {reason}",
                              reference=number[3], actor=actor)
    _assign_number(note, actor, issued_at, ledger_entry_id=entry.id, number=number)
    _queue_issued_mail(note)
    return note


@dataclass
class RunSummary:
    issued: int = 0
    already: int = 0
    empty: int = 0
    errors: list[str] | None = None

    def __str__(self) -> str:
        text_ = f"{self.issued} issued, {self.already} already issued, {self.empty} without activity"
        if self.errors:
            text_ += f", {len(self.errors)} failed: " + "; ".join(self.errors)
        return text_


def run_period(period: Period, actor: str = "invoice_run") -> RunSummary:
    """Issue every customer's invoice or statement for `period`; idempotent.

    Each customer is committed on its own, so one failure neither blocks the others
    nor loses their work; failures are listed in the summary."""
    summary = RunSummary(errors=[])
    customer_ids = db.session.scalars(select(Customer.id).order_by(Customer.id)).all()
    for customer_id in customer_ids:
        customer = db.session.get(Customer, customer_id)
        existing = db.session.scalar(select(Invoice).where(
            Invoice.customer_id == customer_id, Invoice.kind != "credit_note", Invoice.status == "issued",
            Invoice.period_start == period.start, Invoice.period_end == period.end))
        if existing is not None:
            summary.already += 1
            continue
        try:
            draft = build_draft(customer, period)
            if not has_activity(draft):
                db.session.rollback()
                summary.empty += 1
                continue
            issue(draft, actor=actor)
            db.session.commit()
            summary.issued += 1
        except Exception as exc:  # noqa: BLE001 - one customer's failure must not stop the run
            db.session.rollback()
            summary.errors.append(f"{customer.name if customer else customer_id}: {exc}")
    return summary
