"""Back office: invoices, statements and credit notes (rules in portal/invoices)."""
from __future__ import annotations

from datetime import timedelta

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import literal_column, select, text

from .. import audit
from ..choices import options
from ..extensions import db
from ..formatting import exact_text
from ..invoices import InvoiceError
from ..invoices import payments
from ._forms import CreditNoteForm, GenerateForm, PaymentForm
from ..invoices.pdf import pdf_response
from ..invoices.services import (Period, build_draft, credited_so_far, delete_draft, issue, issue_credit_note,
                                 ledger_entries, local_today, minutes, percent)
from ..mail.messages import queue_invoice_issued
from ..models import Customer, Invoice, MailMessage, Settings
from . import bp
from .manage.common import get_or_404, paginate, searched

KINDS = [("invoice", "Invoice"), ("statement", "Statement"), ("credit_note", "Credit note")]
STATUSES = [("draft", "Draft"), ("issued", "Issued")]
# Payment status of issued invoices (derived from allocations, credit notes, due date).
PAYMENT_STATUSES = [("open", "Open (not fully paid)"), ("overdue", "Overdue"), ("partly paid", "Partly paid"),
                    ("paid", "Paid")]


def _generate_form() -> GenerateForm:
    form = GenerateForm()
    form.customer_id.choices = options((c.id, c.name) for c in db.session.scalars(select(Customer).order_by(Customer.name)))
    if not form.is_submitted():
        last = Period.previous_month(local_today())
        form.period_start.data, form.period_last.data = last.start, last.last_day
    return form


def _flash_errors(form) -> None:
    """Forms posted from a page with several forms: their errors come back as flashes."""
    for field, errors in form.errors.items():
        for error in errors:
            flash(f"{getattr(form, field).label.text}: {error}", "danger")


@bp.route("/invoices")
def invoices():
    q = request.args.get("q", "").strip()
    kind = request.args.get("kind", "")
    status = request.args.get("status", "")
    query = searched(select(Invoice), q, Invoice.customer_name, Invoice.number)
    if kind in dict(KINDS):
        query = query.where(Invoice.kind == kind)
    if status in dict(STATUSES):
        query = query.where(Invoice.status == status)
    payment = request.args.get("payment", "")
    if payment in dict(PAYMENT_STATUSES):
        query = query.where(Invoice.id.in_(_with_payment_status(payment)))
    listing = paginate(query.order_by(Invoice.created_at.desc(), Invoice.id.desc()))
    today = local_today()
    sums = payments.balances(inv.id for inv in listing.items)
    return render_template("admin/invoices/list.html", **vars(listing), q=q, kind=kind, status=status, kinds=KINDS,
                           statuses=STATUSES, payment=payment, payment_statuses=PAYMENT_STATUSES,
                           payment_status={i: b.status(today) for i, b in sums.items()}, balances=sums,
                           form=_generate_form())


def _with_payment_status(status: str):
    """Ids of issued invoices in a payment status (same rules as payments.Balance.status)."""
    condition = {
        "open": "b.open_amount > 0",
        "overdue": "b.open_amount > 0 AND b.due_date < :today",
        "partly paid": "b.open_amount > 0 AND b.paid > 0 AND NOT (b.due_date < :today)",
        "paid": "b.open_amount <= 0",
    }[status]  # fixed texts, never the request's
    return select(literal_column("b.invoice_id")).select_from(text("billing.invoice_balances b")).where(
        text(condition).bindparams(**({"today": local_today()} if ":today" in condition else {})))


@bp.route("/invoices/overdue")
def invoices_overdue():
    items = payments.overdue(local_today())
    return render_template("admin/invoices/overdue.html", items=items, totals=payments.open_totals(items),
                           interval=Settings.get().reminder_interval_days)


@bp.route("/invoices/generate", methods=["POST"])
def invoices_generate():
    form = _generate_form()
    if not form.validate_on_submit():
        _flash_errors(form)
        return redirect(url_for("admin.invoices"))
    customer = db.session.get(Customer, form.customer_id.data)
    try:
        draft = build_draft(customer, Period(form.period_start.data, form.period_last.data + timedelta(days=1)))
    except InvoiceError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("admin.invoices"))
    audit.record("build_draft", "invoice", draft.id, customer=customer.name,
                 period=f"{draft.period_start}..{draft.period_end}")
    db.session.commit()
    flash(f"Draft {draft.title.lower()} for {customer.name} built: check it, then issue it.", "success")
    return redirect(url_for("admin.invoices_detail", invoice_id=draft.id))


@bp.route("/invoices/<int:invoice_id>")
def invoices_detail(invoice_id: int):
    invoice = get_or_404(Invoice, invoice_id)
    credit_notes = db.session.scalars(select(Invoice).where(Invoice.corrects_invoice_id == invoice.id)
                                      .order_by(Invoice.id)).all()
    mails = db.session.scalars(select(MailMessage).where(MailMessage.invoice_id == invoice.id)
                               .order_by(MailMessage.id)).all()
    remaining = None
    if invoice.is_issued and invoice.kind != "credit_note":
        remaining = invoice.gross_total - credited_so_far(invoice)
    today = local_today()
    balance = payments.balance(invoice)
    return render_template("admin/invoices/detail.html", invoice=invoice, credit_notes=credit_notes, mails=mails,
                           entries=ledger_entries(invoice) if invoice.kind != "credit_note" else [],
                           remaining=remaining, credit_form=CreditNoteForm(), minutes=minutes, percent=percent,
                           today=today, balance=balance, payment_status=balance.status(today) if balance else None,
                           allocations=payments.allocations_of(invoice) if balance else [],
                           payment_form=PaymentForm(formdata=None, received=_amount_text(balance.open) if balance else None))


def _amount_text(value) -> str:
    """An amount to prefill a field: every significant decimal, at least 2 (150.00, 20.004)."""
    from ..provisioning.dumper import decimal_text

    return decimal_text(value)


@bp.route("/invoices/<int:invoice_id>/payment", methods=["POST"])
def invoices_payment(invoice_id: int):
    invoice = get_or_404(Invoice, invoice_id)
    form = PaymentForm()
    if not form.validate_on_submit():
        _flash_errors(form)
        return redirect(url_for("admin.invoices_detail", invoice_id=invoice_id))
    try:
        entry, left = payments.record_payment(invoice.customer, form.received.data,
                                              reference=form.payment_reference.data or None,
                                              note=f"Payment for {invoice.number}", invoice=invoice,
                                              actor=current_user.email)
    except InvoiceError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("admin.invoices_detail", invoice_id=invoice_id))
    audit.record("payment", "invoice", invoice.id, number=invoice.number, amount=entry.amount, entry_id=entry.id,
                 unallocated=left)
    db.session.commit()
    # every significant decimal, as the amount was typed (formatting.exact_text)
    on_account = f"; {exact_text(left, invoice.currency)} left on account" if left > 0 else ""
    flash(f"Payment of {exact_text(entry.amount, invoice.currency)} recorded and allocated to {invoice.number} "
          f"first, then to the oldest open invoices{on_account}.", "success")
    return redirect(url_for("admin.invoices_detail", invoice_id=invoice_id))


@bp.route("/invoices/<int:invoice_id>/remind", methods=["POST"])
def invoices_remind(invoice_id: int):
    invoice = get_or_404(Invoice, invoice_id)
    today = local_today()
    item = next((o for o in payments.overdue(today) if o.invoice.id == invoice.id), None)
    if item is None or not invoice.customer_email:
        flash("Only an overdue invoice of a customer with an e-mail address gets a reminder.", "danger")
    else:
        payments.queue_reminder(item, step=None)
        audit.record("remind", "invoice", invoice.id, number=invoice.number, to=invoice.customer_email)
        db.session.commit()
        flash(f"Reminder for {invoice.number} queued for {invoice.customer_email}.", "success")
    return redirect(request.referrer if (request.referrer or "").startswith(request.host_url)
                    else url_for("admin.invoices_detail", invoice_id=invoice_id))


@bp.route("/invoices/<int:invoice_id>/pdf")
def invoices_pdf(invoice_id: int):
    return pdf_response(get_or_404(Invoice, invoice_id))


@bp.route("/invoices/<int:invoice_id>/issue", methods=["POST"])
def invoices_issue(invoice_id: int):
    invoice = get_or_404(Invoice, invoice_id)
    try:
        issue(invoice, actor=current_user.email)
    except InvoiceError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
    else:
        audit.record("issue", "invoice", invoice.id, number=invoice.number, gross_total=invoice.gross_total)
        db.session.commit()
        mailed = " and queued for e-mail" if invoice.customer_email else " (the customer has no e-mail address)"
        flash(f"{invoice.title} {invoice.number} issued{mailed}.", "success")
    return redirect(url_for("admin.invoices_detail", invoice_id=invoice_id))


@bp.route("/invoices/<int:invoice_id>/delete", methods=["POST"])
def invoices_delete(invoice_id: int):
    invoice = get_or_404(Invoice, invoice_id)
    try:
        delete_draft(invoice)
    except InvoiceError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("admin.invoices_detail", invoice_id=invoice_id))
    audit.record("delete_draft", "invoice", invoice_id)
    db.session.commit()
    flash("Draft deleted.", "success")
    return redirect(url_for("admin.invoices"))


@bp.route("/invoices/<int:invoice_id>/credit-note", methods=["POST"])
def invoices_credit_note(invoice_id: int):
    invoice = get_or_404(Invoice, invoice_id)
    form = CreditNoteForm()
    if not form.validate_on_submit():
        _flash_errors(form)
        return redirect(url_for("admin.invoices_detail", invoice_id=invoice_id))
    try:
        note = issue_credit_note(invoice, form.amount.data, form.reason.data, actor=current_user.email)
    except InvoiceError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("admin.invoices_detail", invoice_id=invoice_id))
    audit.record("credit_note", "invoice", note.id, number=note.number, corrects=invoice.number,
                 gross_total=note.gross_total, reason=note.note)
    db.session.commit()
    flash(f"Credit note {note.number} issued: {note.gross_total} {note.currency} credited to {note.customer_name}.",
          "success")
    return redirect(url_for("admin.invoices_detail", invoice_id=note.id))


@bp.route("/invoices/<int:invoice_id>/resend", methods=["POST"])
def invoices_resend(invoice_id: int):
    invoice = get_or_404(Invoice, invoice_id)
    if not invoice.is_issued or not invoice.customer_email:
        flash("Only an issued document of a customer with an e-mail address can be sent.", "danger")
    else:
        queue_invoice_issued(invoice, again=True)
        audit.record("resend", "invoice", invoice.id, number=invoice.number, to=invoice.customer_email)
        db.session.commit()
        flash(f"{invoice.title} {invoice.number} queued for {invoice.customer_email}.", "success")
    return redirect(url_for("admin.invoices_detail", invoice_id=invoice_id))
