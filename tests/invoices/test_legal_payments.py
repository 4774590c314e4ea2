"""Invoices with legal data (display name, legal name, address, VAT ID, terms, the
operator's legal block), EU reverse charge, due dates, payments allocated to invoices,
payment status, the overdue list and reminders (docs/invoices.md)."""
from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from portal.ledger import services as ledger
from portal.extensions import db
from portal.invoices import InvoiceError, payments
from portal.invoices.legal import REVERSE_CHARGE_NOTE, normalize_vat_id, tax_treatment
from portal.invoices.pdf import document_pdf
from portal.invoices.services import Period, build_draft, issue, issue_credit_note
from portal.models import Customer, MailMessage, PaymentAllocation, Settings
from tests import factories
from tests.admin.conftest import field_error
from tests.invoices.conftest import cdr, utc
from tests.invoices.test_pdf import pdf_text

JAN, FEB, MAR = Period.month(2026, 1), Period.month(2026, 2), Period.month(2026, 3)


@pytest.fixture()
def operator(db_session):
    s = Settings.get()
    s.company_name, s.company_address, s.company_vat_id = "Demo Telecom SAS", "10 rue de la Paix\n75002 Paris", "FR00123456789"
    s.company_registration = "SAS au capital de 10 000 EUR · RCS Paris 123 456 789"
    s.company_bank_details = "IBAN FR76 3000 6000 0112 3456 7890 189 · BIC AGRIFRPP"
    s.default_tax_rate, s.payment_terms_days, s.reminder_interval_days = Decimal("0.2"), 30, 14
    db.session.flush()
    return s


def postpaid(name, **kw):
    kw.setdefault("email", f"ap@{name}.example")
    return factories.customer(name=name, billing_type="postpaid", credit_limit=Decimal("1000"), **kw)


def invoice_for(customer, period, amount, issued):
    cdr(customer, utc(period.start.year, period.start.month, 5), amount)
    return issue(build_draft(customer, period), issued_at=issued)


# ------------------------------------------------------------------ legal data, tax

def test_eu_reverse_charge_between_two_member_states(operator, catalogue):
    nordic = postpaid("nordic", display_name="Nordic Télécom AB", legal_name="Nordic Telecom Aktiebolag",
                      address="Box 123\n111 22 Stockholm\nSweden", vat_id="SE556012345601", tax_rate=Decimal("0.25"))
    invoice = invoice_for(nordic, JAN, "100.000000", utc(2026, 2, 1, 2))
    assert (invoice.tax_rate, invoice.tax_total, invoice.gross_total) == (Decimal("0"), Decimal("0"), Decimal("100.00"))
    assert invoice.reverse_charge and invoice.tax_note == REVERSE_CHARGE_NOTE
    assert invoice.customer_name == "Nordic Télécom AB"
    assert invoice.customer_snapshot == {"name": "nordic", "display_name": "Nordic Télécom AB",
                                         "legal_name": "Nordic Telecom Aktiebolag",
                                         "address": "Box 123\n111 22 Stockholm\nSweden", "vat_id": "SE556012345601"}
    assert (invoice.due_date, invoice.payment_terms_days) == (date(2026, 3, 3), 30)
    text_ = pdf_text(document_pdf(invoice))
    for expected in ("Nordic Telecom Aktiebolag", "Nordic Télécom AB", "111 22 Stockholm", "VAT ID SE556012345601",
                     "VAT ID FR00123456789", "RCS Paris 123 456 789", "Due date 2026-03-03 (30 days)",
                     "VAT 0 % (reverse charge) of 100.00 EUR", "Reverse charge: VAT is to be accounted for by the",
                     "IBAN FR76 3000 6000 0112 3456 7890 189", "by 2026-03-03"):
        assert expected in text_, expected


@pytest.mark.parametrize("seller, buyer, rate, reverse", [
    ("FR00123456789", "SE556012345601", "0", True),       # two member states
    ("FR00123456789", "FR99887766554", "0.2", False),     # same country: French VAT
    ("FR00123456789", None, "0.2", False),                # no VAT ID: a consumer, French VAT
    ("FR00123456789", "NO123456789MVA", "0.2", False),    # Norway is not in the EU: the customer's rate
    ("", "SE556012345601", "0.2", False),                 # the operator has no VAT ID
    ("EL094259216", "GR123456789", "0.2", False),         # Greece writes EL; GR is the same country
])
def test_tax_treatment_rules(seller, buyer, rate, reverse):
    treatment = tax_treatment(seller, buyer, Decimal("0.2"))
    assert (treatment.rate, treatment.reverse_charge) == (Decimal(rate), reverse)
    assert (treatment.note is not None) == reverse


def test_vat_ids_are_normalised_and_checked():
    assert normalize_vat_id(" se 5560-1234.5601 ") == "SE556012345601"
    assert normalize_vat_id("gr123456789") == "EL123456789"
    assert normalize_vat_id("  ") is None
    for bad in ("12345", "S1234", "FR12345678901234567"):
        with pytest.raises(ValueError):
            normalize_vat_id(bad)


def test_same_country_uses_the_customers_rate_and_terms(operator, catalogue):
    c = postpaid("parisco", vat_id="FR99887766554", tax_rate=Decimal("0.055"), payment_terms_days=10)
    invoice = invoice_for(c, JAN, "100.000000", utc(2026, 2, 1, 2))
    assert (invoice.tax_rate, invoice.tax_total, invoice.reverse_charge) == (Decimal("0.0550"), Decimal("5.50"), False)
    assert (invoice.due_date, invoice.payment_terms_days) == (date(2026, 2, 11), 10)


def test_issued_invoices_stay_immutable_with_the_new_columns(operator, catalogue):
    invoice = invoice_for(postpaid("frozen"), JAN, "1.000000", utc(2026, 2, 1, 2))
    with pytest.raises(DBAPIError, match="cannot be changed"):
        with db.session.begin_nested():
            db.session.execute(text("UPDATE billing.invoices SET due_date = due_date + 30 WHERE id = :id"),
                               {"id": invoice.id})


def test_a_later_change_of_the_customer_does_not_change_the_issued_invoice(operator, catalogue):
    c = postpaid("mover", legal_name="Mover AB", address="Old street 1")
    invoice = invoice_for(c, JAN, "1.000000", utc(2026, 2, 1, 2))
    c.legal_name, c.address = "Mover Holding AB", "New street 2"
    db.session.flush()
    db.session.expire_all()
    assert "Old street 1" in pdf_text(document_pdf(invoice)) and "New street 2" not in pdf_text(document_pdf(invoice))


# ------------------------------------------------------------------ payments

def test_payment_is_allocated_oldest_first_and_status_follows(operator, catalogue):
    c = postpaid("payer")
    jan = invoice_for(c, JAN, "100.000000", utc(2026, 2, 1, 2))      # 120.00 due 2026-03-03
    feb = invoice_for(c, FEB, "50.000000", utc(2026, 3, 1, 2))       # 60.00 due 2026-03-31
    assert [payments.balance(i).status(date(2026, 3, 2)) for i in (jan, feb)] == ["issued", "issued"]
    entry = ledger.post_entry(c, "payment", "150.00", reference="transfer 1")
    assert payments.allocate_payment(entry) == Decimal(0)
    jan_b, feb_b = payments.balance(jan), payments.balance(feb)
    assert (jan_b.paid, jan_b.open, feb_b.paid, feb_b.open) == (Decimal("120"), Decimal("0"), Decimal("30"), Decimal("30"))
    assert jan_b.status(date(2026, 3, 2)) == "paid" and feb_b.status(date(2026, 3, 2)) == "partly paid"
    assert feb_b.status(date(2026, 4, 1)) == "overdue" and feb_b.days_overdue(date(2026, 4, 1)) == 1


def test_a_chosen_invoice_is_served_first_and_the_rest_waits_on_account(operator, catalogue):
    c = postpaid("chooser")
    jan = invoice_for(c, JAN, "100.000000", utc(2026, 2, 1, 2))      # 120.00
    feb = invoice_for(c, FEB, "50.000000", utc(2026, 3, 1, 2))       # 60.00
    entry, left = payments.record_payment(c, "200.004", invoice=feb, actor="admin@example.net")
    assert left == Decimal("20.004")                                 # exact: no rounding of allocations
    assert (payments.balance(feb).open, payments.balance(jan).open) == (Decimal(0), Decimal(0))
    # The credit on account pays the next invoice when it is issued.
    mar = invoice_for(c, MAR, "10.000000", utc(2026, 4, 1, 2))       # 12.00
    assert payments.balance(mar).paid == Decimal("12") and payments.unallocated_total(c.id) == Decimal("8.004")


def test_the_database_refuses_allocating_more_than_either_has(operator, catalogue):
    c = postpaid("greedy")
    jan = invoice_for(c, JAN, "100.000000", utc(2026, 2, 1, 2))      # 120.00
    entry = ledger.post_entry(c, "payment", "50")
    other = postpaid("other")
    other_entry = ledger.post_entry(other, "payment", "500")
    call = ledger.post_entry(c, "adjustment", "-1")
    for entry_id, amount, message in ((entry.id, "60", "left to allocate"), (other_entry.id, "10", "different customers"),
                                      (call.id, "1", "not a payment")):
        with pytest.raises(DBAPIError, match=message):
            with db.session.begin_nested():
                db.session.add(PaymentAllocation(ledger_entry_id=entry_id, invoice_id=jan.id, amount=Decimal(amount)))
                db.session.flush()
    big = ledger.post_entry(c, "payment", "500")
    with pytest.raises(DBAPIError, match="open, not"):
        with db.session.begin_nested():
            db.session.add(PaymentAllocation(ledger_entry_id=big.id, invoice_id=jan.id, amount=Decimal("120.01")))
            db.session.flush()
    with pytest.raises(DBAPIError, match="cannot be changed"):
        with db.session.begin_nested():
            db.session.add(PaymentAllocation(ledger_entry_id=big.id, invoice_id=jan.id, amount=Decimal("1")))
            db.session.flush()
            db.session.execute(text("DELETE FROM billing.payment_allocations WHERE invoice_id = :id"), {"id": jan.id})


def test_credit_notes_reduce_what_is_open(operator, catalogue):
    c = postpaid("credited")
    jan = invoice_for(c, JAN, "100.000000", utc(2026, 2, 1, 2))      # 120.00
    issue_credit_note(jan, "50", "wrong rate", issued_at=utc(2026, 2, 3))   # 60.00 gross
    b = payments.balance(jan)
    assert (b.credited, b.open) == (Decimal("60.00"), Decimal("60.00"))
    payments.record_payment(c, "60", invoice=jan)
    assert payments.balance(jan).status(date(2026, 12, 31)) == "paid"


# ------------------------------------------------------------------ overdue, reminders

def test_reminders_on_the_first_day_overdue_then_every_interval(operator, catalogue):
    c = postpaid("late")
    jan = invoice_for(c, JAN, "100.000000", utc(2026, 2, 1, 2))      # due 2026-03-03
    quiet = postpaid("quiet", email=None)
    invoice_for(quiet, JAN, "1.000000", utc(2026, 2, 1, 2))
    paid = postpaid("paid")
    paid_invoice = invoice_for(paid, JAN, "1.000000", utc(2026, 2, 1, 2))
    payments.record_payment(paid, "1.20", invoice=paid_invoice)

    def reminders():
        return db.session.scalars(select(MailMessage).where(MailMessage.subject.like("Reminder:%"))
                                  .order_by(MailMessage.id)).all()

    assert str(payments.queue_reminders(date(2026, 3, 3))) == "0 overdue invoice(s): 0 reminder(s) queued, 0 without e-mail address"
    summary = payments.queue_reminders(date(2026, 3, 4))
    assert (summary.overdue, summary.queued, summary.without_email) == (2, 1, 1)
    payments.queue_reminders(date(2026, 3, 10))                     # same step: nothing new
    assert len(reminders()) == 1
    payments.queue_reminders(date(2026, 3, 18))                     # 15 days overdue: the second
    mails = reminders()
    assert len(mails) == 2 and mails[0].invoice_id == jan.id and mails[0].to_addr == "ap@late.example"
    assert mails[0].subject == f"Reminder: invoice {jan.number} from Demo Telecom SAS is overdue"
    assert "120.00 EUR of it is still open" in mails[0].body and "IBAN FR76" in mails[0].body
    assert payments.overdue(date(2026, 3, 18))[0].reminders == 2
    payments.record_payment(c, "120", invoice=jan)
    summary = payments.queue_reminders(date(2026, 4, 2))            # only quiet's invoice is left, without e-mail
    assert (summary.overdue, summary.queued, summary.without_email) == (1, 0, 1)
    assert len(reminders()) == 2


def test_reminder_interval_zero_means_none(operator, catalogue):
    operator.reminder_interval_days = 0
    invoice_for(postpaid("nagless"), JAN, "1.000000", utc(2026, 2, 1, 2))
    assert payments.queue_reminders(date(2026, 5, 1)).queued == 0


# ------------------------------------------------------------------ pages

def test_overdue_page_record_payment_and_remind(admin_client, operator, catalogue, monkeypatch):
    import portal.admin.invoices as views

    monkeypatch.setattr(views, "local_today", lambda: date(2026, 3, 20))
    c = postpaid("slowpay", display_name="Slow Pay Sàrl")
    jan = invoice_for(c, JAN, "100.000000", utc(2026, 2, 1, 2))
    page = admin_client.get("/admin/invoices/overdue").get_data(as_text=True)
    assert jan.number in page and "Slow Pay Sàrl" in page and 'data-open-total="EUR"><span class="money" data-currency="EUR">120.00 EUR</span> open<' in page
    assert ">17<" in page                                            # days overdue
    detail = admin_client.get(f"/admin/invoices/{jan.id}").get_data(as_text=True)
    assert 'data-payment-status="overdue"' in detail and "17 days overdue" in detail
    assert 'value="120.00"' in re.search(r'<input[^>]*name="received"[^>]*>', detail).group(0)   # open, prefilled
    response = admin_client.post(f"/admin/invoices/{jan.id}/payment", data={"received": "abc"}, follow_redirects=True)
    assert "Amount received" in response.get_data(as_text=True)
    assert payments.balance(jan).paid == 0
    admin_client.post(f"/admin/invoices/{jan.id}/remind")
    assert db.session.scalar(select(MailMessage).where(MailMessage.invoice_id == jan.id)
                             .where(MailMessage.subject.like("Reminder:%"))) is not None
    admin_client.post(f"/admin/invoices/{jan.id}/payment", data={"received": "100", "payment_reference": "SEPA 7"})
    detail = admin_client.get(f"/admin/invoices/{jan.id}").get_data(as_text=True)
    assert 'data-payment-status="overdue"' in detail and 'data-open><span class="money money-exact" data-currency="EUR">20.00 EUR</span><' in detail and "SEPA 7" in detail
    listing = admin_client.get("/admin/invoices?payment=overdue").get_data(as_text=True)
    assert jan.number in listing
    admin_client.post(f"/admin/invoices/{jan.id}/payment", data={"received": "20"})
    assert 'data-payment-status="paid"' in admin_client.get(f"/admin/invoices/{jan.id}").get_data(as_text=True)
    assert jan.number not in admin_client.get("/admin/invoices?payment=overdue").get_data(as_text=True).split("<tbody>")[-1]
    assert "Nothing is overdue" in admin_client.get("/admin/invoices/overdue").get_data(as_text=True)


def test_payment_posted_on_the_customer_page_goes_to_the_oldest_invoice(admin_client, operator, catalogue):
    c = postpaid("ledgerpay")
    jan = invoice_for(c, JAN, "100.000000", utc(2026, 2, 1, 2))
    feb = invoice_for(c, FEB, "100.000000", utc(2026, 3, 1, 2))
    admin_client.post(f"/admin/customers/{c.id}/ledger", data={"kind": "payment", "amount": "130"})
    assert (payments.balance(jan).open, payments.balance(feb).open) == (Decimal(0), Decimal("110"))


def test_customer_form_takes_legal_data_with_accents_and_normalises_the_vat_id(admin_client, operator):
    c = postpaid("formco")
    form = {"name": "formco", "billing_type": "postpaid", "currency": "EUR", "credit_limit": "1000",
            "lcr_strategy": "cost", "ratecard_1": "0", "ratecard_2": "0", "ratecard_3": "0",
            "display_name": "Nordic Télécom AB", "legal_name": "Nordic Télécom Aktiebolag",
            "address": "Box 123\r\n111 22 Stockholm", "vat_id": "se 5560-1234 5601", "payment_terms_days": "45"}
    html = admin_client.post(f"/admin/customers/{c.id}/edit", data={**form, "vat_id": "12345"}).get_data(as_text=True)
    assert "VAT ID is the country" in field_error(html, "vat_id")
    assert admin_client.post(f"/admin/customers/{c.id}/edit", data=form).status_code == 302
    db.session.expire_all()
    c = db.session.get(Customer, c.id)
    assert (c.display_name, c.vat_id, c.payment_terms_days, c.label) == (
        "Nordic Télécom AB", "SE556012345601", 45, "Nordic Télécom AB")
    assert "111 22 Stockholm" in c.address
