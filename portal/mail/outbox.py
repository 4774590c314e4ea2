"""Putting messages into the outbox (the only way the portal sends mail)."""
from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from ..extensions import db
from ..models import MailMessage


def enqueue(kind: str, to_addr: str, subject: str, body: str, *, customer_id: int | None = None,
            invoice_id: int | None = None, dedupe_key: str | None = None) -> int | None:
    """Queue one message in the current transaction; returns its id, or None when a
    message with the same `dedupe_key` was queued before (a job that runs twice)."""
    subject = " ".join(subject.split())  # a header: never a line break
    stmt = insert(MailMessage).values(kind=kind, to_addr=to_addr.strip(), subject=subject[:300], body=body,
                                      customer_id=customer_id, invoice_id=invoice_id, dedupe_key=dedupe_key)
    if dedupe_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedupe_key"])
    return db.session.execute(stmt.returning(MailMessage.id)).scalar()


def retry(message_id: int) -> bool:
    """Send a pending or failed message again at the next delivery run."""
    result = db.session.execute(
        update(MailMessage).where(MailMessage.id == message_id, MailMessage.status != "sent")
        .values(status="pending", next_attempt_at=func.now(),
                max_attempts=func.greatest(MailMessage.max_attempts, MailMessage.attempts + 1)))
    return result.rowcount == 1


def counts() -> dict[str, int]:
    rows = db.session.execute(select(MailMessage.status, func.count()).where(MailMessage.channel == "email")
                              .group_by(MailMessage.status)).all()
    return {"pending": 0, "sent": 0, "failed": 0} | dict(rows)
