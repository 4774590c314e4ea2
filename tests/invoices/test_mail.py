"""E-mail through the outbox, received by a real local SMTP server (aiosmtpd)."""
from __future__ import annotations

import email
import email.policy
import io
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from pypdf import PdfReader
from sqlalchemy import select

from portal.mail.delivery import backoff, deliver_due
from portal.mail.messages import queue_daily_balances, queue_low_balance_alerts
from portal.mail.outbox import enqueue, retry
from portal.invoices.services import Period, build_draft, issue
from portal.models import BalanceEvent, MailMessage
from tests import factories
from tests.invoices.conftest import cdr, utc


def received(server):
    return [email.message_from_bytes(e.content, policy=email.policy.default) for e in server.messages]


def outbox(db_session, **filters):
    return db_session.scalars(select(MailMessage).filter_by(**filters).order_by(MailMessage.id)).all()


def test_issued_invoice_is_mailed_with_its_pdf(db_session, catalogue, smtp_server):
    c = factories.customer(name="acme", billing_type="postpaid", credit_limit=Decimal("50"), tax_rate=Decimal("0.2"),
                           email="ap@acme.example")
    cdr(c, utc(2026, 1, 5), "10.000000")
    invoice = issue(build_draft(c, Period.month(2026, 1)), issued_at=utc(2026, 2, 1))
    [queued] = outbox(db_session, invoice_id=invoice.id)
    assert queued.status == "pending" and queued.kind == "invoice"
    summary = deliver_due()
    assert (summary.sent, summary.retrying, summary.failed) == (1, 0, 0)
    [msg] = received(smtp_server)
    assert msg["To"] == "ap@acme.example" and msg["From"] == "billing@operator.example"
    assert msg["Subject"] == "Invoice 2026-000001 from Example Telecom"
    assert "Total due:  12.00 EUR" in msg.get_body(("plain",)).get_content()
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "invoice-2026-000001.pdf"
    pdf_text = PdfReader(io.BytesIO(attachment.get_content())).pages[0].extract_text()
    assert "2026-000001" in pdf_text and "acme" in pdf_text and "12.00" in pdf_text
    db_session.refresh(queued)
    assert queued.status == "sent" and queued.sent_at is not None and queued.attempts == 1
    assert deliver_due().sent == 0  # nothing twice


def test_customer_without_email_gets_no_invoice_mail(db_session, catalogue):
    c = factories.customer(billing_type="postpaid", credit_limit=Decimal("50"))
    cdr(c, utc(2026, 1, 5), "1.000000")
    invoice = issue(build_draft(c, Period.month(2026, 1)), issued_at=utc(2026, 2, 1))
    assert outbox(db_session, invoice_id=invoice.id) == []


def test_failed_send_is_retried_with_backoff_then_visible_as_failed(app, db_session, dead_smtp, smtp_server_factory):
    c = factories.customer(email="ops@acme.example")
    mail_id = enqueue("other", "ops@acme.example", "Hello", "Body", customer_id=c.id)
    msg = db_session.get(MailMessage, mail_id)
    msg.max_attempts = 3
    db_session.commit()  # delivery rolls back a failed attempt: the queued message must be committed
    now = datetime.now(timezone.utc)
    summary = deliver_due(now=now)
    assert (summary.sent, summary.retrying) == (0, 1)
    db_session.refresh(msg)
    assert msg.status == "pending" and msg.attempts == 1 and "ConnectionRefusedError" in msg.last_error
    assert msg.next_attempt_at == now + timedelta(minutes=1)
    assert deliver_due(now=now).retrying == 0              # not due yet
    deliver_due(now=now + timedelta(minutes=1))            # attempt 2: next in 2 minutes
    db_session.refresh(msg)
    assert msg.attempts == 2 and msg.next_attempt_at == now + timedelta(minutes=3)
    summary = deliver_due(now=now + timedelta(minutes=3))  # attempt 3 of 3
    assert summary.failed == 1
    db_session.refresh(msg)
    assert msg.status == "failed" and msg.attempts == 3 and msg.last_error
    assert deliver_due(now=now + timedelta(days=1)).failed == 0  # given up: stays for an admin
    # an admin retries once the SMTP server is back
    assert retry(mail_id)
    server = smtp_server_factory()
    assert deliver_due().sent == 1
    assert [m["Subject"] for m in received(server)] == ["Hello"]
    db_session.refresh(msg)
    assert msg.status == "sent" and msg.attempts == 4 and msg.last_error is None


def test_backoff_doubles_up_to_six_hours():
    assert [backoff(n) for n in (1, 2, 3)] == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert backoff(20) == timedelta(hours=6)


def test_enqueue_with_a_dedupe_key_is_idempotent_and_subjects_have_no_line_breaks(db_session):
    first = enqueue("other", "a@example.net", "Line one\r\nBcc: evil@example.net", "x", dedupe_key="k1")
    assert enqueue("other", "a@example.net", "again", "x", dedupe_key="k1") is None
    assert db_session.get(MailMessage, first).subject == "Line one Bcc: evil@example.net"


def test_low_balance_alert_is_sent_once_per_crossing(db_session, smtp_server):
    a = factories.customer(name="alpha", email="ops@alpha.example", low_balance_alert=Decimal("5"))
    b = factories.customer(name="beta", low_balance_alert=Decimal("5"))  # no e-mail address
    e1 = BalanceEvent(customer_id=a.id, kind="low_balance", balance=Decimal("4.9"), threshold=Decimal("5"))
    e2 = BalanceEvent(customer_id=b.id, kind="low_balance", balance=Decimal("1"), threshold=Decimal("5"))
    db_session.add_all([e1, e2])
    db_session.flush()
    summary = queue_low_balance_alerts()
    assert (summary.events, summary.queued, summary.without_email) == (2, 1, 1)
    assert e1.notified_at is not None and e2.notified_at is not None
    assert queue_low_balance_alerts().events == 0  # the same crossing never again
    deliver_due()
    [msg] = received(smtp_server)
    assert msg["To"] == "ops@alpha.example" and "Low balance" in msg["Subject"]
    assert "below your alert threshold of 5.00 EUR" in msg.get_content()
    # a new crossing (after a top-up) is a new alert
    db_session.add(BalanceEvent(customer_id=a.id, kind="low_balance", balance=Decimal("4"), threshold=Decimal("5")))
    db_session.flush()
    assert queue_low_balance_alerts().queued == 1
    deliver_due()
    assert len(smtp_server.messages) == 2


def test_two_pending_crossings_of_one_customer_give_one_mail(db_session):
    a = factories.customer(email="ops@alpha.example", low_balance_alert=Decimal("5"))
    for balance in ("4", "3"):
        db_session.add(BalanceEvent(customer_id=a.id, kind="low_balance", balance=Decimal(balance),
                                    threshold=Decimal("5")))
    db_session.flush()
    summary = queue_low_balance_alerts()
    assert (summary.events, summary.queued) == (2, 1)
    [msg] = outbox(db_session, customer_id=a.id)
    assert "Balance when it crossed: 3.00 EUR" in msg.body


def test_daily_balance_mail_once_a_day_to_those_who_asked(db_session, smtp_server):
    from zoneinfo import ZoneInfo

    wants = factories.customer(name="wants", email="ops@wants.example", daily_balance_email=True, balance="12.5")
    factories.customer(name="quiet", email="ops@quiet.example", balance="3")
    factories.customer(name="noaddr", daily_balance_email=True)
    yesterday = datetime.now(timezone.utc).replace(hour=12) - timedelta(days=1)
    cdr(wants, yesterday, "0.250000")
    today = datetime.now(timezone.utc).date()
    assert queue_daily_balances(today, ZoneInfo("UTC")) == 1
    assert queue_daily_balances(today, ZoneInfo("UTC")) == 0
    deliver_due()
    [msg] = received(smtp_server)
    body = msg.get_content()
    assert msg["To"] == "ops@wants.example"
    assert "Balance:             12.50 EUR" in body and "Calls on " in body and "1, costing 0.25 EUR" in body
