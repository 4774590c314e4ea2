"""SMTP problems in words on the outbox pages, and the test e-mail button, against a
real local SMTP server (aiosmtpd) and a port where nothing listens."""
from __future__ import annotations

import email
import email.policy
import re

import pytest
from sqlalchemy import select

from portal.mail import diagnose
from portal.mail.delivery import deliver_due
from portal.mail.outbox import enqueue
from portal.models import AuditLog, MailMessage
from tests import factories

REFUSED = "ConnectionRefusedError: [Errno 111] Connection refused"


@pytest.fixture()
def smtp_unset(app):
    saved = {k: app.config.get(k) for k in ("SMTP_HOST", "SMTP_PORT")}
    app.config.update(SMTP_HOST=None, SMTP_PORT=25)
    yield
    app.config.update(saved)


def test_errors_in_words():
    unset = {"SMTP_HOST": None, "SMTP_PORT": 25}
    set_ = {"SMTP_HOST": "mail.example.net", "SMTP_PORT": 587, "SMTP_USER": "billing", "SMTP_STARTTLS": True}
    assert diagnose.explain(REFUSED, unset).startswith(
        "SMTP is not configured: no mail server answers at 127.0.0.1:25, the default used while SMTP_HOST is unset. "
        "Set SMTP_HOST (and SMTP_PORT")
    assert diagnose.explain(REFUSED, set_).startswith("No mail server answers at mail.example.net:587 (connection refused)")
    assert "Check SMTP_USER and SMTP_PASSWORD" in diagnose.explain(
        "SMTPAuthenticationError: (535, b'5.7.8 Authentication credentials invalid')", set_)
    assert "did not answer in time" in diagnose.explain("TimeoutError: timed out", set_)
    assert "cannot be resolved. Check SMTP_HOST" in diagnose.explain(
        "gaierror: [Errno -2] Name or service not known", set_)
    assert "does not offer STARTTLS" in diagnose.explain(
        "SMTPNotSupportedError: STARTTLS extension not supported by server.", set_)
    assert "refused the sender address billing@localhost. Check MAIL_FROM" in diagnose.explain(
        "SMTPSenderRefused: (553, b'sender rejected', 'billing@localhost')", set_)
    assert diagnose.explain("SMTPDataError: (554, b'5.7.1 spam')", set_) == "The mail server answered 554: (554, b'5.7.1 spam')"
    assert diagnose.explain(None, set_) is None
    assert str(diagnose.settings(set_)) == "mail.example.net:587, STARTTLS, user billing, from billing@localhost"


def test_outbox_says_smtp_is_not_configured_and_explains_failures(admin_client, db_session, smtp_unset):
    c = factories.customer(email="ops@acme.example")
    mail_id = enqueue("other", "ops@acme.example", "Hello", "Body", customer_id=c.id)
    db_session.get(MailMessage, mail_id).last_error = REFUSED
    db_session.flush()
    page = admin_client.get("/admin/mail").get_data(as_text=True)
    assert "data-smtp-not-configured" in page and "SMTP is not configured." in page
    assert "<code>SMTP_HOST</code>" in page and "Send test e-mail" in page
    cell = page.split("data-error>", 1)[1].split("</td>", 1)[0]
    assert cell.startswith("SMTP is not configured: no mail server answers at 127.0.0.1:25")
    assert "Errno 111" not in cell and f'title="{REFUSED}"' in page      # the raw error stays at hand
    detail = admin_client.get(f"/admin/mail/{mail_id}").get_data(as_text=True)
    assert "Last attempt failed.</strong> SMTP is not configured" in detail and REFUSED in detail


def test_outbox_names_the_configured_server(admin_client, db_session, smtp_server):
    page = admin_client.get("/admin/mail").get_data(as_text=True)
    assert "data-smtp-not-configured" not in page
    assert re.search(r"Mail goes through <strong>127\.0\.0\.1:\d+</strong>, from billing@operator\.example", page)


def test_send_test_email_arrives(admin_client, db_session, smtp_server):
    response = admin_client.post("/admin/mail/test", data={"to_addr": "noc@operator.example"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Test e-mail sent to noc@operator.example through 127.0.0.1:" in page
    [envelope] = smtp_server.messages
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["To"] == "noc@operator.example" and message["From"] == "billing@operator.example"
    assert message["Subject"] == "Test e-mail from the VoIP billing portal"
    assert "went through 127.0.0.1:" in message.get_body(("plain",)).get_content()
    audit = db_session.scalars(select(AuditLog).where(AuditLog.entity == "mail", AuditLog.action == "test")).all()
    assert [a.details["to"] for a in audit] == ["noc@operator.example"]
    assert db_session.scalar(select(MailMessage.id)) is None          # sent at once, not queued


def test_send_test_email_failure_is_explained(admin_client, db_session, dead_smtp):
    page = admin_client.post("/admin/mail/test", data={"to_addr": "noc@operator.example"},
                             follow_redirects=True).get_data(as_text=True)
    assert "The test e-mail to noc@operator.example was not sent. No mail server answers at 127.0.0.1:" in page
    assert "Technical detail: ConnectionRefusedError" in page


def test_send_test_email_needs_an_address(admin_client, db_session, smtp_server):
    response = admin_client.post("/admin/mail/test", data={"to_addr": "not an address"})
    assert response.status_code == 400 and "Invalid email address" in response.get_data(as_text=True)
    assert smtp_server.messages == []


def test_delivery_uses_the_local_default_when_smtp_host_is_unset(app, db_session, smtp_unset):
    """Unset SMTP_HOST means 127.0.0.1 (a local MTA), as before: the error names it."""
    c = factories.customer(email="ops@acme.example")
    enqueue("other", "ops@acme.example", "Hello", "Body", customer_id=c.id)
    db_session.commit()
    app.config["SMTP_PORT"] = 1   # nothing listens there
    deliver_due()
    [msg] = db_session.scalars(select(MailMessage)).all()
    assert msg.last_error.startswith("ConnectionRefusedError")
    assert diagnose.explain(msg.last_error, app.config).startswith(
        "SMTP is not configured: no mail server answers at 127.0.0.1:1")
