"""Fixtures for invoices, mail and jobs: rated CDRs, a real local SMTP server."""
from __future__ import annotations

import socket
import threading
import uuid as uuidlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import text
from aiosmtpd.controller import Controller

from portal.extensions import db
from portal.models import LedgerEntry
from tests import factories


def cdr(customer, start: datetime, sell_amount: str, billed_seconds: int = 60, sell_prefix: str | None = "33",
        destination: str = "33123456789", billsec: int | None = None, status: str = "rated") -> int:
    """One rated call, written straight into billing.cdr (as CDR billing would)."""
    values = dict(fs_cdr_id=1, uuid=str(uuidlib.uuid4()), customer_id=customer.id, destination=destination,
              sell_prefix=sell_prefix, start_stamp=start, answer_stamp=start,
              end_stamp=start + timedelta(seconds=billed_seconds), duration=billed_seconds,
              billsec=billed_seconds if billsec is None else billsec, billed_seconds=billed_seconds,
              cost_billed_seconds=billed_seconds, sell_amount=Decimal(sell_amount), cost_amount=Decimal(0),
              margin=Decimal(sell_amount), status=status, rated_at=start)
    columns = ", ".join(values)
    params = ", ".join(f":{k}" for k in values)
    return db.session.execute(text(f"INSERT INTO billing.cdr ({columns}) VALUES ({params}) RETURNING id"),
                              values).scalar_one()


def ledger_at(customer, kind: str, amount: str, at: datetime, reference: str | None = None) -> LedgerEntry:
    entry = LedgerEntry(customer_id=customer.id, kind=kind, amount=Decimal(amount), created_at=at, reference=reference)
    db.session.add(entry)
    db.session.flush()
    db.session.refresh(customer)
    return entry


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.fixture()
def catalogue(db_session):
    w = factories.weight()
    return {
        "france": factories.destination("33", w, name="France"),
        "france_mobile": factories.destination("336", w, name="France Mobile"),
        "germany": factories.destination("49", w, name="Germany"),
    }


class _Collector:
    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(envelope)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def smtp_server(app):
    """A real SMTP server on 127.0.0.1; the app's SMTP settings point at it."""
    handler = _Collector()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    saved = {k: app.config[k] for k in ("SMTP_HOST", "SMTP_PORT", "MAIL_FROM")}
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, MAIL_FROM="billing@operator.example")
    try:
        yield handler
    finally:
        controller.stop()
        app.config.update(saved)


@pytest.fixture()
def dead_smtp(app):
    """SMTP settings pointing at a port where nothing listens."""
    saved = {k: app.config[k] for k in ("SMTP_HOST", "SMTP_PORT")}
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(), SMTP_TIMEOUT=2)
    try:
        yield
    finally:
        app.config.update(saved)
        app.config.pop("SMTP_TIMEOUT", None)


@pytest.fixture()
def smtp_server_factory(app):
    """Start a real SMTP server later in a test (after a failure was provoked)."""
    controllers, saved = [], {k: app.config[k] for k in ("SMTP_HOST", "SMTP_PORT")}

    def start():
        handler = _Collector()
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port)
        return handler

    yield start
    for controller in controllers:
        controller.stop()
    app.config.update(saved)
