"""Two customers with everything a self-care page shows: A (alpha) is the one logged
in, B (bravo) is the neighbour whose data must never appear. Every text that belongs
to B contains BRAVO (see `B_MARKERS`), so a page leaking B is easy to spot."""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from portal.extensions import db
from portal.invoices.services import Period, build_draft, issue
from portal.models import CallHold, LedgerEntry, User
from portal.security import hash_password
from tests import factories
from tests.conftest import CUSTOMER_PASSWORD, login

A_EMAIL = "ops@alpha.example"
B_EMAIL = "ops@bravo-zq.example"
# Strings that only B's data contains. Lower-cased search in response bodies.
B_MARKERS = ["bravo-zq", "bravozq", "99912345", "bravoland", "203.0.113.99"]

_uuid = itertools.count(1)


def insert_cdr(customer, endpoint, destination: str, start: datetime, billsec: int, amount: str,
               rate: str = "0.020000", caller_id: str = "100", prefix: str | None = None,
               hangup_cause: str = "NORMAL_CLEARING", billed_seconds: int | None = None, status: str = "rated") -> int:
    n = next(_uuid)
    return db.session.execute(db.text("""
        INSERT INTO billing.cdr (fs_cdr_id, uuid, customer_id, endpoint_id, caller_id, destination, sell_prefix,
                                 start_stamp, answer_stamp, end_stamp, duration, billsec, billed_seconds,
                                 sell_rate, sell_amount, hangup_cause, status)
        VALUES (:n, :uuid, :c, :e, :cli, :dst, :prefix, :start,
                CASE WHEN :billsec > 0 THEN CAST(:start AS timestamptz) + interval '2 seconds' END,
                CAST(:start AS timestamptz) + make_interval(secs => :billsec + 2),
                :billsec + 2, :billsec, :billed, :rate, :amount, :cause, :status)
        RETURNING id"""), dict(n=n, uuid=f"call-{n:06d}", c=customer.id, e=endpoint.id if endpoint else None,
                               cli=caller_id, dst=destination, prefix=prefix, start=start, billsec=billsec,
                               billed=billsec if billed_seconds is None else billed_seconds,
                               rate=Decimal(rate), amount=Decimal(amount), cause=hangup_cause, status=status)).scalar_one()


def ledger(customer, kind: str, amount: str, at: datetime | None = None, note: str | None = None,
           reference: str | None = None, call_uuid: str | None = None) -> LedgerEntry:
    entry = LedgerEntry(customer_id=customer.id, kind=kind, amount=Decimal(amount), note=note,
                        reference=reference, call_uuid=call_uuid)
    if at is not None:
        entry.created_at = at
    db.session.add(entry)
    db.session.flush()
    db.session.refresh(customer)
    return entry


def hold(customer, endpoint, uuid: str, amount: str, destination: str, rate: str = "0.020000", max_duration=600):
    h = CallHold(call_uuid=uuid, customer_id=customer.id, endpoint_id=endpoint.id, amount=Decimal(amount),
                 sell_rate=Decimal(rate), max_duration=max_duration, destination=destination,
                 expires_at=db.session.execute(db.text("SELECT now() + interval '1 hour'")).scalar_one())
    db.session.add(h)
    db.session.flush()
    return h


@functools.cache
def _customer_password_hash() -> str:
    return hash_password(CUSTOMER_PASSWORD)  # argon2 is slow on purpose: hash once per session


def customer_user(email: str, customer) -> User:
    user = User(email=email, password_hash=_customer_password_hash(), role="customer", customer_id=customer.id)
    db.session.add(user)
    db.session.flush()
    return user


@dataclass
class Side:
    customer: object
    user: object
    sip: object
    ip: object
    cards: list = field(default_factory=list)
    cdr_ids: list = field(default_factory=list)


@dataclass
class World:
    a: Side
    b: Side
    now: datetime
    month_start: datetime

    def side(self, who: str) -> Side:
        return getattr(self, who)


@pytest.fixture()
def world(db_session) -> World:
    return build_world()


def build_world() -> World:
    """Customers A and B with rates, endpoints, calls, ledger entries and holds, in the
    current session (flushed, not committed)."""
    now = db.session.execute(db.text("SELECT now()")).scalar_one()
    month_start = db.session.execute(db.text("SELECT date_trunc('month', now())")).scalar_one()
    w_intl, w_mobile = factories.weight("intl"), factories.weight("mobile")
    perm = factories.permission([w_intl, w_mobile], name="standard")
    factories.destination("33", w_intl, "France")
    factories.destination("336", w_mobile, "France Mobile")
    factories.destination("44", w_intl, "United Kingdom")
    factories.destination("999", w_intl, "Bravoland")

    # A: two rate plans. Plan 1 has 33 and a blocked 3361; plan 2 has 336 (never used
    # for 336...: plan 1's 33 matches first) and 44 (used: plan 1 has nothing for 44).
    a1, a2 = factories.ratecard("alpha-retail"), factories.ratecard("alpha-extra")
    factories.sell_rate(a1, "33", "0.020000")
    factories.sell_rate(a1, "3361", "0.500000", blocked=True)
    factories.sell_rate(a2, "336", "0.080000", increment="30/6")
    factories.sell_rate(a2, "44", "0.050000", increment="1/1", connect_fee=Decimal("0.010000"), min_duration=10)
    factories.sell_rate(a1, "34", "0.030000", valid_to=now - timedelta(days=1), valid_from=now - timedelta(days=30))
    b1 = factories.ratecard("bravo-zq-card")
    factories.sell_rate(b1, "999", "0.700000")

    ca = factories.customer(name="alpha", balance="100", ratecards=[a1, a2], email="billing@alpha.example",
                            low_balance_alert=Decimal("150"))
    cb = factories.customer(name="bravo-zq", balance="40", ratecards=[b1], billing_type="postpaid",
                            credit_limit=Decimal("50"), email="billing@bravo-zq.example")
    a = Side(ca, customer_user(A_EMAIL, ca),
             factories.endpoint(ca, perm, auth="sip", name="alpha-office", username="alpha100"),
             factories.endpoint(ca, perm, auth="ip", ip="198.51.100.7/32", name="alpha-pbx", max_calls=5,
                                spend_limit_month=Decimal("300")),
             cards=[a1, a2])
    b = Side(cb, customer_user(B_EMAIL, cb),
             factories.endpoint(cb, perm, auth="sip", name="bravo-zq-office", username="bravozq-sip"),
             factories.endpoint(cb, perm, auth="ip", ip="203.0.113.99/32", name="bravo-zq-pbx"),
             cards=[b1])

    # A's calls: two this month (one answered, one not), one last month.
    a.cdr_ids.append(insert_cdr(ca, a.sip, "33123456789", now - timedelta(minutes=5), 65, "0.040000",
                                prefix="33", billed_seconds=120))
    a.cdr_ids.append(insert_cdr(ca, a.ip, "447700900123", now - timedelta(minutes=3), 0, "0", rate="0.050000",
                                prefix="44", hangup_cause="NO_ANSWER"))
    a.cdr_ids.append(insert_cdr(ca, a.ip, "33987654321", month_start - timedelta(days=3), 30, "0.020000",
                                prefix="33", billed_seconds=60))
    b.cdr_ids.append(insert_cdr(cb, b.sip, "99912345000", now - timedelta(minutes=4), 100, "1.400000",
                                rate="0.700000", prefix="999", caller_id="bravo-zq-cli", billed_seconds=120))
    # Ledger beyond the opening balance: A paid and was charged; B has its own lines.
    ledger(ca, "call", "-0.040000", call_uuid="call-000001")
    ledger(ca, "payment", "25.50", reference="PAY-1")
    ledger(cb, "call", "-1.400000", note="bravo-zq-note")
    hold(ca, a.sip, "live-a", "1.234567", "33111222333")
    hold(cb, b.sip, "live-b-bravo-zq", "3.000000", "99912345678", rate="0.700000")
    # Last month's documents (portal/invoices): A (prepaid) a statement, B an invoice.
    last_month = Period.previous_month(month_start.date())
    for side in (a, b):
        issue(build_draft(side.customer, last_month))
    return World(a, b, now, month_start)


@pytest.fixture()
def client_a(client, world):
    login(client, A_EMAIL, CUSTOMER_PASSWORD)
    return client


def assert_no_b(body: bytes | str, where: str = ""):
    text = (body.decode() if isinstance(body, bytes) else body).lower()
    for marker in B_MARKERS:
        assert marker not in text, f"{where}: customer B's {marker!r} leaked"
