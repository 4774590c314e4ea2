"""Sending the outbox with smtplib, with retries and backoff.

Each message is locked (FOR UPDATE SKIP LOCKED), sent, and its outcome committed on
its own, so a crash loses at most the record of one send (the message is then sent
again: at-least-once). A failed attempt is retried after 1, 2, 4, ... minutes (at most
6 hours); after `max_attempts` the message stays 'failed' with its last error for an
admin to see and retry.
"""
from __future__ import annotations

import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..models import Invoice, MailMessage
from .diagnose import settings as smtp_settings

MAX_BACKOFF = timedelta(hours=6)


# Mails that carry a single-use link (password reset, address verification): nobody but
# the recipient may read the link, so admins never see their body, and it is erased once sent.
LINK_KINDS = ("password_reset", "email_verification")
LINK_REMOVED = "(This message held a single-use link; it was removed once the message was sent.)"


def backoff(attempts: int) -> timedelta:
    """Delay before the next attempt after `attempts` failed ones."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_BACKOFF)


@dataclass
class DeliverySummary:
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    def __str__(self) -> str:
        return f"{self.sent} sent, {self.retrying} to retry, {self.failed} failed for good"


def build_message(msg: MailMessage, config) -> EmailMessage:
    email = EmailMessage()
    email["From"] = config["MAIL_FROM"]
    email["To"] = msg.to_addr
    email["Subject"] = msg.subject
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = make_msgid(idstring=f"outbox{msg.id}")
    email.set_content(msg.body)
    if msg.invoice_id is not None:
        from ..invoices.pdf import document_pdf, filename

        email.add_attachment(document_pdf(msg.invoice), maintype="application", subtype="pdf",
                             filename=filename(msg.invoice))
    return email


class _Smtp:
    """One SMTP connection per delivery run, opened on first use."""

    def __init__(self, config):
        self.config = config
        self.conn: smtplib.SMTP | None = None

    def send(self, email: EmailMessage) -> None:
        if self.conn is None:
            c = self.config
            where = smtp_settings(c)
            conn = smtplib.SMTP(where.host, where.port, timeout=c.get("SMTP_TIMEOUT", 30))
            try:
                if c.get("SMTP_STARTTLS"):
                    conn.starttls()
                if c.get("SMTP_USER"):
                    conn.login(c["SMTP_USER"], c.get("SMTP_PASSWORD") or "")
            except Exception:
                conn.close()
                raise
            self.conn = conn
        try:
            self.conn.send_message(email)
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except Exception:  # noqa: BLE001 - the connection is gone either way
                self.conn.close()
            self.conn = None


def deliver_due(limit: int = 200, now: datetime | None = None) -> DeliverySummary:
    """Send up to `limit` due messages; commits after each one."""
    config = current_app.config
    now = now or datetime.now(timezone.utc)
    summary = DeliverySummary()
    due = due_ids("email", limit, now)
    smtp = _Smtp(config)
    try:
        for message_id in due:
            _store_attachment(message_id)
            msg = lock_pending(message_id)
            if msg is None:  # sent or taken meanwhile
                db.session.rollback()
                continue
            try:
                smtp.send(build_message(msg, config))
            except Exception as exc:  # noqa: BLE001 - recorded on the message, never lost
                error = f"{type(exc).__name__}: {exc}"[:2000]
                db.session.rollback()
                msg = lock_pending(message_id)
                if msg is None:
                    continue
                record_failure(msg, error, now, summary, "mail")
            else:
                msg.attempts += 1
                msg.status, msg.sent_at, msg.last_error = "sent", datetime.now(timezone.utc), None
                if msg.kind in LINK_KINDS:
                    msg.body = LINK_REMOVED
                summary.sent += 1
            db.session.commit()
    finally:
        smtp.close()
    return summary


def _store_attachment(message_id: int) -> None:
    """Render and keep an invoice's PDF before the send, so a failed attempt does not
    throw the rendering away with its rollback."""
    from ..invoices.pdf import document_pdf

    invoice_id = db.session.scalar(select(MailMessage.invoice_id).where(MailMessage.id == message_id))
    if invoice_id is not None:
        document_pdf(db.session.get(Invoice, invoice_id))
        db.session.commit()


def due_ids(channel: str, limit: int, now: datetime) -> list[int]:
    """Ids of the outbox's pending messages of `channel` ("email", "webhook") due at `now`,
    the longest waiting first."""
    return db.session.scalars(select(MailMessage.id).where(
        MailMessage.channel == channel, MailMessage.status == "pending", MailMessage.next_attempt_at <= now)
        .order_by(MailMessage.next_attempt_at, MailMessage.id).limit(limit)).all()


def record_failure(msg: MailMessage, error: str, now: datetime, summary: DeliverySummary, what: str) -> None:
    """A failed attempt of `msg`: counted, kept with its error, retried after backoff or
    failed for good after its last attempt (`what` names it in the log: mail, webhook)."""
    msg.attempts += 1
    msg.last_error = error
    if msg.attempts >= msg.max_attempts:
        msg.status = "failed"
        summary.failed += 1
    else:
        msg.next_attempt_at = now + backoff(msg.attempts)
        summary.retrying += 1
    current_app.logger.warning("%s %s to %s failed (attempt %s): %s", what, msg.id, msg.to_addr, msg.attempts, error)


def lock_pending(message_id: int) -> MailMessage | None:
    """The message, locked, if it is still pending and no other sender holds it."""
    return db.session.scalar(select(MailMessage).where(MailMessage.id == message_id, MailMessage.status == "pending")
                             .with_for_update(skip_locked=True).execution_options(populate_existing=True))
