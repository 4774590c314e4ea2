"""Webhooks: configured by an admin (HTTPS only, a generated secret), queued in the
transaction of the event through the outbox the e-mails use, delivered signed to a real
HTTPS endpoint on 127.0.0.1 (a self-signed certificate made with openssl), retried
with backoff, logged in the back office."""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import ssl
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from portal.extensions import db
from portal.invoices.services import Period, build_draft, issue
from portal.mail.delivery import deliver_due as deliver_mail
from portal.mail.messages import queue_low_balance_alerts
from portal.models import AuditLog, BalanceEvent, MailMessage, Settings
from portal.webhooks import services as webhooks
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, login


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


class Receiver:
    """An HTTPS endpoint that records what it gets and answers `status`."""

    def __init__(self, certificate):
        self.requests: list[tuple[dict, str]] = []
        self.status = 200
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"nope" if receiver.status >= 400 else b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*map(str, certificate))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_port}/hooks/billing"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver(app, certificate, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_CA_FILE", str(certificate[0]))
    monkeypatch.setitem(app.config, "WEBHOOK_TIMEOUT", 5)
    r = Receiver(certificate)
    yield r
    r.close()


@pytest.fixture()
def hooked(world, receiver):
    """Webhooks on, every event, pointing at the receiver."""
    webhooks.configure(receiver.url, list(webhooks.EVENTS), "tests")
    db.session.flush()
    return Settings.get()


def queued(event: str | None = None) -> list[MailMessage]:
    query = select(MailMessage).where(MailMessage.channel == "webhook").order_by(MailMessage.id)
    if event:
        query = query.where(MailMessage.subject == event)
    return db.session.scalars(query).all()


def verify(secret: str, headers: dict, body: str, tolerance: int = 300) -> bool:
    """The receiver's check, written from docs/api.md (not the portal's own code)."""
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest())
    return any(hmac.compare_digest("v1," + expected.decode(), s) for s in headers["webhook-signature"].split())


def test_the_admin_sets_the_endpoint_and_a_secret_is_made(admin_client, db_session, world):
    refused = admin_client.post("/admin/webhooks", data={"webhook_url": "http://crm.example.net/x",
                                                          "webhook_events": ["payment.posted"]})
    assert refused.status_code == 400 and "https://" in refused.get_data(as_text=True)
    saved = admin_client.post("/admin/webhooks", data={"webhook_url": "https://crm.example.net/hooks",
                                                        "webhook_events": ["payment.posted", "balance.low"]})
    assert saved.status_code == 302
    settings = db_session.get(Settings, True)
    assert settings.webhook_url == "https://crm.example.net/hooks"
    assert settings.webhook_events == ["balance.low", "payment.posted"]
    assert settings.webhook_secret.startswith("whsec_") and len(base64.b64decode(settings.webhook_secret[6:])) == 32
    page = admin_client.get("/admin/webhooks").get_data(as_text=True)
    assert settings.webhook_secret in page
    audit = db_session.scalar(select(AuditLog).where(AuditLog.entity == "webhooks"))
    assert audit.details["webhook_secret"] == "changed" and settings.webhook_secret not in json.dumps(audit.details)


def test_nothing_is_queued_while_webhooks_are_off_or_the_event_is_not_chosen(staff, world, receiver):
    post = lambda key: staff.post(f"/api/v1/customers/{world.a.customer.id}/ledger",  # noqa: E731
                                  json={"kind": "topup", "amount": "1"}, headers={"Idempotency-Key": key})
    post("off-1")
    assert queued() == []
    webhooks.configure(receiver.url, ["invoice.issued"], "tests")
    post("off-2")
    assert queued() == []


def test_a_payment_is_delivered_signed(staff, world, hooked, receiver):
    posted = staff.post(f"/api/v1/customers/{world.a.customer.id}/ledger", json={"kind": "payment",
                        "amount": "12.5", "reference": "R-1"}, headers={"Idempotency-Key": "hook-pay"}).get_json()
    [message] = queued("payment.posted")
    assert webhooks.deliver_due().sent == 1
    [(headers, body)] = receiver.requests
    assert verify(hooked.webhook_secret, headers, body)
    assert not verify(hooked.webhook_secret, headers, body.replace("12.500000", "99.500000"))
    event = json.loads(body)
    assert event["type"] == "payment.posted" and event["id"] == headers["webhook-id"]
    assert event["data"] == {"customer_id": world.a.customer.id, "entry_id": posted["id"], "kind": "payment",
                             "amount": "12.500000", "reference": "R-1"}
    db.session.refresh(message)
    assert (message.status, message.response_status, message.attempts) == ("sent", 200, 1)


def test_invoice_issued_balance_low_and_unrated_cdr_are_queued(db_session, world, hooked):
    a = world.a.customer
    this_month = Period.month(world.month_start.year, world.month_start.month)
    previous = Period.previous_month(this_month.start)
    before = Period.previous_month(previous.start)
    issue(build_draft(a, before))
    [invoice_event] = queued("invoice.issued")
    assert json.loads(invoice_event.body)["data"]["kind"] == "statement"
    db_session.add(BalanceEvent(customer_id=a.id, kind="low_balance", balance=a.balance, threshold=150))
    db_session.flush()
    queue_low_balance_alerts()
    [low] = queued("balance.low")
    assert json.loads(low.body)["data"]["threshold"] == "150.000000"
    db_session.execute(text("""INSERT INTO billing.fs_cdr (uuid, start_stamp, end_stamp, duration, billsec,
                                   billing_customer_id, destination_number)
                               VALUES ('unratable-1', now(), now(), 5, 5, :c, '123')"""), {"c": a.id})
    assert db_session.scalar(text("SELECT status FROM billing.fs_cdr WHERE uuid = 'unratable-1'")) == "unrated"
    assert webhooks.queue_unrated_cdrs() == 1
    assert webhooks.queue_unrated_cdrs() == 0                       # once per CDR
    [unrated] = queued("cdr.unrated")
    assert json.loads(unrated.body)["data"]["reason"] == "missing_destination"


def test_a_failing_endpoint_is_retried_with_backoff_then_failed(staff, world, hooked, receiver, db_session):
    receiver.status = 500
    staff.post(f"/api/v1/customers/{world.a.customer.id}/ledger", json={"kind": "topup", "amount": "3"},
               headers={"Idempotency-Key": "hook-fail"})
    [message] = queued()
    now = datetime.now(timezone.utc)
    assert webhooks.deliver_due(now=now).retrying == 1
    db.session.refresh(message)
    assert (message.status, message.attempts, message.response_status) == ("pending", 1, 500)
    assert message.last_error.startswith("HTTP 500") and message.next_attempt_at == now + timedelta(minutes=1)
    assert webhooks.deliver_due(now=now).sent == 0                 # not due yet
    for n in range(2, message.max_attempts + 1):
        webhooks.deliver_due(now=now + timedelta(days=n))
    db.session.refresh(message)
    assert (message.status, message.attempts) == ("failed", message.max_attempts)
    assert len(receiver.requests) == message.max_attempts
    assert deliver_mail().sent == 0 and message.status == "failed"   # the mail job leaves webhooks alone


def test_the_delivery_log_and_retry_in_the_back_office(client, admin_user, staff, world, hooked, receiver):
    receiver.status = 503
    staff.post(f"/api/v1/customers/{world.a.customer.id}/ledger", json={"kind": "topup", "amount": "3"},
               headers={"Idempotency-Key": "hook-log"})
    webhooks.deliver_due()
    [message] = queued()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    page = client.get("/admin/webhooks").get_data(as_text=True)
    assert "payment.posted" in page and "HTTP 503" in page
    detail = client.get(f"/admin/webhooks/{message.id}").get_data(as_text=True)
    assert "HTTP 503" in detail and message.body.replace('"', "&#34;") in detail
    receiver.status = 200
    assert client.post(f"/admin/webhooks/{message.id}/retry").status_code == 302
    assert webhooks.deliver_due().sent == 1
    assert client.get("/admin/webhooks?status=sent").get_data(as_text=True).count(f"/admin/webhooks/{message.id}")
    assert client.get("/admin/mail").get_data(as_text=True).count(receiver.url) == 0     # not in the mail outbox
    assert client.get(f"/admin/webhooks/{2**31 - 1}").status_code == 404
