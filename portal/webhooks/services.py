"""Queueing, signing and delivering webhooks.

Signature (the Standard Webhooks scheme, so existing libraries verify it): headers
`webhook-id` (the event id, the same on every retry), `webhook-timestamp` (Unix seconds
of this attempt) and `webhook-signature: v1,<base64 HMAC-SHA256>` over
`<id>.<timestamp>.<body>`, keyed with the bytes of the secret after its `whsec_` prefix
(base64). A receiver recomputes it, compares in constant time and refuses timestamps
more than a few minutes away from its clock (replays).

Delivery: each due row is locked (FOR UPDATE SKIP LOCKED), POSTed and its outcome
committed on its own, like the e-mails (portal/mail/delivery.py, whose backoff it
uses): a 2xx answer delivers it; anything else (another status, a redirect, a timeout,
a TLS error) is retried after 1, 2, 4 ... minutes until max_attempts, then stays
'failed' for an admin to see and retry.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import ssl
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from decimal import Decimal

from flask import current_app
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert

from ..errors import Refused
from ..extensions import db
from ..mail.delivery import DeliverySummary, due_ids, lock_pending, record_failure
from ..models import MailMessage, Settings

EVENTS = {
    "balance.low": "A customer's balance fell below its low-balance threshold.",
    "invoice.issued": "An invoice, statement or credit note was issued.",
    "payment.posted": "A payment or top-up was posted to a customer's ledger.",
    "cdr.unrated": "A call could not be rated (kept as unrated for an admin to fix).",
}
SECRET_PREFIX = "whsec_"
URL_RE = re.compile(r"^https://[^\s/?#]+[^\s]*$")
MAX_RESPONSE_TEXT = 300
USER_AGENT = "voip-billing-webhooks/1"


def new_secret() -> str:
    """A fresh signing secret: whsec_ and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_url(url: str | None) -> str | None:
    """The endpoint's URL, or None to switch webhooks off; HTTPS only (the bodies carry
    customers' money), no spaces, at most 2,000 characters."""
    url = (url or "").strip()
    if not url:
        return None
    if len(url) > 2000 or not URL_RE.match(url):
        raise Refused("The webhook URL must start with https:// (plain HTTP is refused: the bodies carry "
                      "customers' balances and payments).", "webhook_url")
    return url


def configure(url: str | None, events: list[str], actor: str, *, rotate_secret: bool = False) -> Settings:
    """Set the endpoint and the events sent; a secret is made on first use or when asked.
    Audited (never the secret itself); the caller commits."""
    from .. import audit

    url = check_url(url)
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise Refused(f"unknown webhook event(s): {', '.join(unknown)}", "webhook_events")
    settings = Settings.get()
    before = {"webhook_url": settings.webhook_url, "webhook_events": list(settings.webhook_events or [])}
    settings.webhook_url = url
    settings.webhook_events = [e for e in EVENTS if e in events]
    rotated = rotate_secret or (url is not None and not settings.webhook_secret)
    if rotated:
        settings.webhook_secret = new_secret()
    after = {"webhook_url": settings.webhook_url, "webhook_events": settings.webhook_events}
    changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if rotated:
        changes["webhook_secret"] = "changed"
    audit.record("update", "webhooks", None, actor=actor, **changes)
    return settings


def _jsonable(value):
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def money(value) -> str | None:
    """Money in a webhook body: a string with 6 decimals, like the API's."""
    return None if value is None else format(Decimal(value).quantize(Decimal("0.000001")), "f")


def enqueue(event: str, data: dict, *, customer_id: int | None = None, dedupe_key: str | None = None) -> int | None:
    """Queue `event` in the current transaction when webhooks are on and this event is
    chosen; returns the outbox id, or None (off, not chosen, or queued before under
    `dedupe_key`)."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    settings = Settings.get()
    if not settings.webhook_url or not settings.webhook_secret or event not in (settings.webhook_events or ()):
        return None
    body = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": event,
                       "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "data": _jsonable(data)}, separators=(",", ":"), sort_keys=True)
    stmt = insert(MailMessage).values(channel="webhook", kind="webhook", to_addr=settings.webhook_url, subject=event,
                                      body=body, customer_id=customer_id, dedupe_key=dedupe_key)
    if dedupe_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedupe_key"])
    return db.session.execute(stmt.returning(MailMessage.id)).scalar()


# ----------------------------------------------------------------------------- events

def payment_posted(entry) -> None:
    """A payment or top-up entry was posted (portal/ledger)."""
    enqueue("payment.posted", {"customer_id": entry.customer_id, "entry_id": entry.id, "kind": entry.kind,
                               "amount": money(entry.amount), "reference": entry.reference},
            customer_id=entry.customer_id, dedupe_key=f"webhook:payment.posted:{entry.id}")


def invoice_issued(invoice) -> None:
    """A document was issued (portal/invoices)."""
    enqueue("invoice.issued", {"invoice_id": invoice.id, "customer_id": invoice.customer_id, "kind": invoice.kind,
                               "number": invoice.number, "currency": invoice.currency,
                               "period_start": invoice.period_start, "period_end": invoice.period_last,
                               "net_total": money(invoice.net_total), "tax_total": money(invoice.tax_total),
                               "gross_total": money(invoice.gross_total), "due_date": invoice.due_date},
            customer_id=invoice.customer_id, dedupe_key=f"webhook:invoice.issued:{invoice.id}")


def balance_low(event, customer) -> None:
    """A low-balance crossing (billing.balance_events, portal/mail/messages.py)."""
    enqueue("balance.low", {"customer_id": customer.id, "customer": customer.name, "currency": customer.currency,
                            "balance": money(event.balance), "threshold": money(event.threshold),
                            "crossed_at": event.created_at},
            customer_id=customer.id, dedupe_key=f"webhook:balance.low:{event.id}")


UNRATED_LOOKBACK = "2 days"


def queue_unrated_cdrs(limit: int = 1000) -> int:
    """Queue cdr.unrated for raw CDRs the billing trigger could not rate, received in the
    last two days and not queued yet (the trigger runs inside FreeSWITCH's insert, so the
    event is picked up here, by the webhooks job). Cost: ix_fs_cdr_unrated and the outbox's
    unique dedupe key."""
    settings = Settings.get()
    if not settings.webhook_url or "cdr.unrated" not in (settings.webhook_events or ()):
        return 0
    rows = db.session.execute(text(f"""
        SELECT f.id, f.uuid, f.start_stamp, f.caller_id_number, f.destination_number, f.billsec,
               f.hangup_cause, f.unrated_reason, f.received_at, f.billing_customer_id
          FROM billing.fs_cdr f
         WHERE f.status = 'unrated' AND f.received_at > now() - interval '{UNRATED_LOOKBACK}'
           AND NOT EXISTS (SELECT 1 FROM billing.mail_outbox o WHERE o.dedupe_key = 'webhook:cdr.unrated:' || f.id)
         ORDER BY f.received_at, f.id
         LIMIT :limit"""), {"limit": limit}).mappings().all()
    queued = 0
    for r in rows:
        customer_id = r["billing_customer_id"]
        if customer_id is not None and db.session.scalar(text("SELECT 1 FROM billing.customers WHERE id = :c"),
                                                         {"c": customer_id}) is None:
            customer_id = None
        if enqueue("cdr.unrated", {"fs_cdr_id": r["id"], "uuid": r["uuid"], "customer_id": r["billing_customer_id"],
                                   "start_stamp": r["start_stamp"], "caller_id": r["caller_id_number"],
                                   "destination": r["destination_number"], "billsec": r["billsec"],
                                   "hangup_cause": r["hangup_cause"], "reason": r["unrated_reason"],
                                   "received_at": r["received_at"]},
                   customer_id=customer_id, dedupe_key=f"webhook:cdr.unrated:{r['id']}") is not None:
            queued += 1
    return queued


# ----------------------------------------------------------------------------- signing

def signature(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` keyed with the secret's bytes."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: dict, body: str, tolerance: int = 300, now: float | None = None) -> bool:
    """What a receiver does (docs/api.md has it as a standalone example)."""
    try:
        msg_id, timestamp = headers["webhook-id"], int(headers["webhook-timestamp"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    expected = signature(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in headers.get("webhook-signature", "").split())


# ----------------------------------------------------------------------------- delivery

class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None   # a 3xx is an answer like any other non-2xx: not delivered


def _opener(config) -> urllib.request.OpenerDirector:
    context = ssl.create_default_context(cafile=config.get("WEBHOOK_CA_FILE") or None)
    return urllib.request.build_opener(_NoRedirects(), urllib.request.HTTPSHandler(context=context))


def post(url: str, body: str, secret: str, config, opener=None) -> tuple[int | None, str | None]:
    """POST one signed body; returns (HTTP status or None, error text or None on a 2xx)."""
    msg_id = json.loads(body)["id"]
    timestamp = int(time.time())
    request = urllib.request.Request(url, data=body.encode(), method="POST", headers={
        "Content-Type": "application/json", "User-Agent": USER_AGENT, "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp), "webhook-signature": signature(secret, msg_id, timestamp, body)})
    try:
        with (opener or _opener(config)).open(request, timeout=config.get("WEBHOOK_TIMEOUT", 10)) as response:
            status = response.status
            answer = response.read(MAX_RESPONSE_TEXT).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        answer = exc.read(MAX_RESPONSE_TEXT).decode("utf-8", "replace") if exc.fp else ""
        return exc.code, f"HTTP {exc.code} {exc.reason}: {answer}".strip()[:2000]
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"{type(reason).__name__}: {reason}"[:2000]
    if 200 <= status < 300:
        return status, None
    return status, f"HTTP {status}: {answer}"[:2000]


def deliver_due(limit: int = 100, now: datetime | None = None) -> DeliverySummary:
    """Send up to `limit` due webhooks; commits after each one."""
    config = current_app.config
    now = now or datetime.now(timezone.utc)
    summary = DeliverySummary()
    opener = _opener(config)
    for message_id in due_ids("webhook", limit, now):
        msg = lock_pending(message_id)
        if msg is None:   # sent or taken meanwhile
            db.session.rollback()
            continue
        secret = Settings.get().webhook_secret
        if not secret:
            status, error = None, "webhooks have no signing secret any more (Settings → Webhooks)"
        else:
            status, error = post(msg.to_addr, msg.body, secret, config, opener)
        msg.response_status = status
        if error is None:
            msg.attempts += 1
            msg.status, msg.sent_at, msg.last_error = "sent", func.now(), None
            summary.sent += 1
        else:
            record_failure(msg, error, now, summary, "webhook")
        db.session.commit()
    return summary


def deliveries(*, status: str | None = None, event: str | None = None):
    """Webhook rows of the outbox, newest first, as a select to page (the delivery log)."""
    query = select(MailMessage).where(MailMessage.channel == "webhook")
    if status:
        query = query.where(MailMessage.status == status)
    if event:
        query = query.where(MailMessage.subject == event)
    return query.order_by(MailMessage.id.desc())
