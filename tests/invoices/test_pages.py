"""Admin and self-care pages for invoices, jobs and the outbox."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from portal.invoices.services import Period, build_draft, issue
from portal.mail.outbox import enqueue
from portal.models import AuditLog, Invoice, JobRun, LedgerEntry, MailMessage
from tests import factories
from tests.conftest import CUSTOMER_PASSWORD, login
from tests.invoices.conftest import cdr, utc

JAN, FEB = Period.month(2026, 1), Period.month(2026, 2)


def customer_with_invoice(name: str, **kw):
    c = factories.customer(name=name, billing_type="postpaid", credit_limit=Decimal("100"), tax_rate=Decimal("0.2"),
                           email=f"ap@{name}.example", **kw)
    cdr(c, utc(2026, 1, 5), "10.000000")
    invoice = issue(build_draft(c, JAN), issued_at=utc(2026, 2, 1))
    return c, invoice


def login_customer(client, customer):
    email = f"user@{customer.name}.example"
    factories.user(email, CUSTOMER_PASSWORD, customer=customer)
    login(client, email, CUSTOMER_PASSWORD)


# ---------------------------------------------------------------------- self care

def test_customer_sees_only_own_issued_documents(client, db_session, catalogue):
    mine, my_invoice = customer_with_invoice("mine")
    cdr(mine, utc(2026, 2, 5), "1.000000")
    my_draft = build_draft(mine, FEB)
    _, their_invoice = customer_with_invoice("theirs")
    login_customer(client, mine)
    page = client.get("/my/invoices")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert my_invoice.number in html and "12.00 EUR" in html
    assert their_invoice.number not in html and html.count("<tr>") == 2  # header + the one issued invoice
    pdf = client.get(f"/my/invoices/{my_invoice.id}/pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF-")
    assert f'filename="invoice-{my_invoice.number}.pdf"' in pdf.headers["Content-Disposition"]
    # another customer's document, a draft and an id that does not exist all answer the same 404
    for invoice_id in (their_invoice.id, my_draft.id, 999999):
        assert client.get(f"/my/invoices/{invoice_id}/pdf").status_code == 404


def test_customer_without_documents_sees_an_empty_state(client, db_session):
    c = factories.customer(name="newbie")
    login_customer(client, c)
    assert "No invoices yet" in client.get("/my/invoices").get_data(as_text=True)


def test_admin_cannot_use_the_self_care_pdf_url(admin_client, db_session, catalogue):
    _, invoice = customer_with_invoice("acme")
    assert admin_client.get(f"/my/invoices/{invoice.id}/pdf").status_code == 403


# -------------------------------------------------------------------------- admin

def test_admin_invoice_list_filters_and_detail(admin_client, db_session, catalogue):
    _, invoice = customer_with_invoice("acme")
    customer_with_invoice("globex")
    html = admin_client.get("/admin/invoices").get_data(as_text=True)
    assert "acme" in html and "globex" in html and invoice.number in html
    html = admin_client.get("/admin/invoices?q=acme&kind=invoice&status=issued").get_data(as_text=True)
    table = html.split("<tbody>")[1]
    assert "acme" in table and "globex" not in table
    assert "No document matches" in admin_client.get("/admin/invoices?kind=statement").get_data(as_text=True)
    detail = admin_client.get(f"/admin/invoices/{invoice.id}").get_data(as_text=True)
    assert "France (33)" in detail and "Total due" in detail and "Issue credit note" in detail
    assert admin_client.get("/admin/invoices/999999").status_code == 404
    pdf = admin_client.get(f"/admin/invoices/{invoice.id}/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF-")


def test_admin_builds_issues_and_corrects(admin_client, db_session, catalogue):
    c = factories.customer(name="acme", billing_type="postpaid", credit_limit=Decimal("100"), tax_rate=Decimal("0.2"),
                           email="ap@acme.example")
    cdr(c, utc(2026, 1, 5), "10.000000")
    response = admin_client.post("/admin/invoices/generate", data={
        "customer_id": c.id, "period_start": "2026-01-01", "period_last": "2026-01-31"})
    assert response.status_code == 302
    draft = db_session.scalar(select(Invoice).where(Invoice.customer_id == c.id))
    assert draft.status == "draft" and draft.period_end == date(2026, 2, 1)
    assert "This is a draft" in admin_client.get(f"/admin/invoices/{draft.id}").get_data(as_text=True)
    admin_client.post(f"/admin/invoices/{draft.id}/issue")
    db_session.refresh(draft)
    assert draft.status == "issued" and draft.issued_by == "admin@example.net"
    assert db_session.scalar(select(MailMessage).where(MailMessage.invoice_id == draft.id)).to_addr == "ap@acme.example"
    # a bad credit note changes nothing and says why
    page = admin_client.post(f"/admin/invoices/{draft.id}/credit-note", data={"amount": "1.001", "reason": "x"},
                             follow_redirects=True).get_data(as_text=True)
    assert "2 decimal places" in page
    page = admin_client.post(f"/admin/invoices/{draft.id}/credit-note", data={"amount": "500", "reason": "x"},
                             follow_redirects=True).get_data(as_text=True)
    assert "at most 12.00" in page
    response = admin_client.post(f"/admin/invoices/{draft.id}/credit-note",
                                 data={"amount": "5", "reason": "goodwill"}, follow_redirects=True)
    assert "credited to acme" in response.get_data(as_text=True)
    notes = db_session.scalars(select(Invoice).where(Invoice.corrects_invoice_id == draft.id)).all()
    assert [(n.number, n.gross_total) for n in notes] == [("CN-2026-000001", Decimal("6.00"))]
    assert db_session.scalar(select(LedgerEntry.amount).where(LedgerEntry.reference == "CN-2026-000001")) == Decimal("6.00")
    actions = set(db_session.scalars(select(AuditLog.action).where(AuditLog.entity == "invoice")))
    assert {"build_draft", "issue", "credit_note"} <= actions
    # issued documents cannot be deleted from the page either
    page = admin_client.post(f"/admin/invoices/{draft.id}/delete", follow_redirects=True).get_data(as_text=True)
    assert "cannot be deleted" in page


def test_admin_generate_refuses_bad_periods(admin_client, db_session, catalogue):
    c = factories.customer(name="acme", billing_type="postpaid", credit_limit=Decimal("1"))
    page = admin_client.post("/admin/invoices/generate", data={
        "customer_id": c.id, "period_start": "2026-01-31", "period_last": "2026-01-01"},
        follow_redirects=True).get_data(as_text=True)
    assert "before the first day" in page
    assert db_session.scalar(select(Invoice).where(Invoice.customer_id == c.id)) is None


def test_admin_deletes_a_draft(admin_client, db_session, catalogue):
    c = factories.customer(name="acme", billing_type="postpaid", credit_limit=Decimal("1"))
    draft = build_draft(c, JAN)
    admin_client.post(f"/admin/invoices/{draft.id}/delete")
    assert db_session.scalar(select(Invoice).where(Invoice.customer_id == c.id)) is None


def test_jobs_page_runs_a_job_and_shows_runs(admin_client, db_session):
    html = admin_client.get("/admin/jobs").get_data(as_text=True)
    assert "invoice_run" in html and "mail_delivery" in html and "never" in html
    page = admin_client.post("/admin/jobs/cdr_partitions/run", follow_redirects=True).get_data(as_text=True)
    assert "partitions created" in page
    run = db_session.scalar(select(JobRun).where(JobRun.job == "cdr_partitions"))
    assert run.trigger == "admin" and run.status == "ok"
    assert "cdr_partitions" in admin_client.get(f"/admin/jobs/runs/{run.id}").get_data(as_text=True)
    assert admin_client.post("/admin/jobs/no_such_job/run").status_code == 404
    assert "No run matches" in admin_client.get("/admin/jobs?status=error").get_data(as_text=True)


def test_outbox_page_shows_failures_and_retries(admin_client, db_session):
    mail_id = enqueue("other", "ops@acme.example", "Your balance", "text")
    msg = db_session.get(MailMessage, mail_id)
    msg.status, msg.attempts, msg.last_error = "failed", 8, "ConnectionRefusedError: [Errno 111] Connection refused"
    db_session.flush()
    html = admin_client.get("/admin/mail").get_data(as_text=True)
    assert "1 message(s) could not be delivered" in html and "ConnectionRefusedError" in html
    assert "Your balance" in admin_client.get("/admin/mail?status=failed&q=ops%40acme").get_data(as_text=True)
    assert "No message matches" in admin_client.get("/admin/mail?status=sent").get_data(as_text=True)
    detail = admin_client.get(f"/admin/mail/{mail_id}").get_data(as_text=True)
    assert "Connection refused" in detail and "Retry" in detail
    admin_client.post(f"/admin/mail/{mail_id}/retry")
    db_session.refresh(msg)
    assert msg.status == "pending" and msg.max_attempts == 9


def test_invoice_logo_setting_must_name_a_static_file(admin_client, db_session):
    from portal.models import Settings
    from tests.admin.test_settings_audit import SETTINGS

    for bad, message in (("../secret.png", "A file under static/"), ("img/missing.png", "no file static/img/missing.png"),
                         ("https://cdn.example/logo.png", "A file under static/")):
        html = admin_client.post("/admin/settings", data={**SETTINGS, "company_logo": bad}).get_data(as_text=True)
        assert message in html, bad
    assert admin_client.post("/admin/settings", data={**SETTINGS, "company_logo": "img/logo.svg"}).status_code == 302
    assert Settings.get().company_logo == "img/logo.svg"
