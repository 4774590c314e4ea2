"""Gap-free numbering per series and year, immutability, credit notes."""
from __future__ import annotations

import threading
import time
from decimal import Decimal

import psycopg2
import pytest
from sqlalchemy import select

from portal import create_app
from portal.config import TestingConfig
from portal.extensions import db
from portal.invoices import InvoiceError
from portal.invoices.services import Period, build_draft, delete_draft, issue, issue_credit_note, run_period
from portal.models import Customer, Invoice, LedgerEntry
from tests import factories
from tests.invoices.conftest import cdr, utc

JAN, FEB = Period.month(2026, 1), Period.month(2026, 2)


def postpaid(**kw) -> Customer:
    kw.setdefault("tax_rate", Decimal("0.2"))
    return factories.customer(billing_type="postpaid", credit_limit=Decimal("1000"), **kw)


def test_numbers_are_sequential_per_year_and_series(db_session, catalogue):
    customers = [postpaid() for _ in range(3)]
    dec = Period.month(2025, 12)
    numbers = []
    for c in customers[:2]:
        numbers.append(issue(build_draft(c, dec), issued_at=utc(2025, 12, 31, 12)).number)
    numbers.append(issue(build_draft(customers[2], dec), issued_at=utc(2026, 1, 1, 2)).number)
    numbers.append(issue(build_draft(customers[0], JAN), issued_at=utc(2026, 2, 1, 2)).number)
    assert numbers == ["2025-000001", "2025-000002", "2026-000001", "2026-000002"]
    prepaid = factories.customer(billing_type="prepaid")
    assert issue(build_draft(prepaid, JAN), issued_at=utc(2026, 2, 1)).number == "ST-2026-000001"


def test_a_rolled_back_issue_leaves_no_gap(db_session, catalogue):
    a, b = postpaid(), postpaid()
    draft_a, draft_b = build_draft(a, JAN), build_draft(b, JAN)
    nested = db_session.begin_nested()
    issue(draft_a, issued_at=utc(2026, 2, 1))
    assert draft_a.number == "2026-000001"
    nested.rollback()
    assert issue(build_draft(b, JAN), issued_at=utc(2026, 2, 1)).number == "2026-000001"
    assert draft_b.number == "2026-000001"


def _savepoint_error(pg, statement: str) -> str:
    with pg.cursor() as cur:
        cur.execute("SAVEPOINT s")
        try:
            cur.execute(statement)
        except psycopg2.Error as exc:
            cur.execute("ROLLBACK TO SAVEPOINT s")
            return exc.pgcode + " " + str(exc)
        raise AssertionError(f"{statement!r} was accepted")


def test_issued_documents_are_immutable(db_session, pg, catalogue):
    c = postpaid()
    cdr(c, utc(2026, 1, 5), "1.000000")
    invoice = issue(build_draft(c, JAN), issued_at=utc(2026, 2, 1))
    db_session.flush()
    line_id = invoice.lines[0].id
    for statement in (f"UPDATE billing.invoices SET gross_total = 0 WHERE id = {invoice.id}",
                      f"DELETE FROM billing.invoices WHERE id = {invoice.id}",
                      f"UPDATE billing.invoice_lines SET amount = 0 WHERE id = {line_id}",
                      f"DELETE FROM billing.invoice_lines WHERE id = {line_id}",
                      f"INSERT INTO billing.invoice_lines (invoice_id, position, kind, description, amount) "
                      f"VALUES ({invoice.id}, 9, 'calls', 'extra', 1)"):
        error = _savepoint_error(pg, statement)
        assert error.startswith("23001") and "issued" in error, statement
    with pytest.raises(InvoiceError, match="credit note"):
        delete_draft(invoice)
    with pytest.raises(InvoiceError, match="already issued"):
        build_draft(c, JAN)


def test_drafts_can_be_deleted(db_session, catalogue):
    c = postpaid()
    cdr(c, utc(2026, 1, 5), "1.000000")
    draft = build_draft(c, JAN)
    draft_id = draft.id
    delete_draft(draft)
    assert db_session.get(Invoice, draft_id) is None


def test_credit_note_corrects_an_issued_invoice(db_session, catalogue):
    c = postpaid(email="ap@acme.example")
    cdr(c, utc(2026, 1, 5), "10.000000")
    invoice = issue(build_draft(c, JAN), issued_at=utc(2026, 2, 1))   # 10.00 + 2.00 tax
    db_session.refresh(c)
    balance_before = c.balance
    note = issue_credit_note(invoice, "2.50", "dropped calls on 5 January", actor="admin@example.net",
                             issued_at=utc(2026, 2, 3))
    assert note.number == "CN-2026-000001" and note.kind == "credit_note" and note.corrects_invoice_id == invoice.id
    assert (note.net_total, note.tax_total, note.gross_total) == (Decimal("2.50"), Decimal("0.50"), Decimal("3.00"))
    entry = db_session.get(LedgerEntry, note.ledger_entry_id)
    assert (entry.kind, entry.amount, entry.reference) == ("credit_note", Decimal("3.00"), "CN-2026-000001")
    db_session.refresh(c)
    assert c.balance == balance_before + Decimal("3.00")
    # at most the invoice's gross total can be credited, over all its credit notes
    with pytest.raises(InvoiceError, match="at most 9.00"):
        issue_credit_note(invoice, "7.51", "too much")
    issue_credit_note(invoice, "7.50", "the rest")
    for bad, message in (("0", "positive"), ("-1", "positive"), ("1.001", "2 decimal"), ("abc", "not an amount")):
        with pytest.raises(InvoiceError, match=message):
            issue_credit_note(invoice, bad, "x")
    with pytest.raises(InvoiceError, match="say why"):
        issue_credit_note(invoice, "1", "  ")
    with pytest.raises(InvoiceError, match="only an issued"):
        issue_credit_note(note, "1", "credit a credit note")


def test_invoice_run_issues_once_per_customer_and_period(db_session, catalogue):
    active, idle = postpaid(), postpaid()
    prepaid = factories.customer(billing_type="prepaid", balance="5")
    cdr(active, utc(2026, 1, 5), "1.000000")
    cdr(prepaid, utc(2026, 1, 6), "0.500000")
    existing = db_session.scalar(select(db.func.count()).select_from(Customer))
    summary = run_period(JAN)
    assert summary.issued == 2 and summary.errors == [] and summary.empty == existing - 2
    again = run_period(JAN)
    assert again.issued == 0 and again.already == 2
    kinds = db_session.execute(select(Invoice.customer_id, Invoice.kind, Invoice.status)
                               .where(Invoice.customer_id.in_([active.id, idle.id, prepaid.id]))).all()
    assert sorted(kinds) == sorted([(active.id, "invoice", "issued"), (prepaid.id, "statement", "issued")])


def _app_on(url):
    return create_app(TestingConfig, DATABASE_URL=url)


def test_concurrent_issuing_never_duplicates_or_skips(fresh_db):
    """Two connections issue drafts at once; one transaction rolls back. Numbers 1..N, no gaps."""
    app = _app_on(fresh_db)
    with app.app_context():
        ids = []
        for i in range(12):
            c = Customer(name=f"conc{i}", billing_type="postpaid", credit_limit=Decimal(100))
            db.session.add(c)
            db.session.flush()
            cdr(c, utc(2026, 1, 5), "1.000000")
            ids.append(build_draft(c, JAN).id)
        db.session.commit()

    barrier = threading.Barrier(2)
    errors = []

    def worker(my_ids, rollback_first):
        try:
            with app.app_context():
                barrier.wait()
                for n, invoice_id in enumerate(my_ids):
                    invoice = db.session.get(Invoice, invoice_id)
                    issue(invoice, issued_at=utc(2026, 2, 1))
                    time.sleep(0.01)  # hold the counter row a little: the other connection must wait
                    if rollback_first and n == 0:
                        db.session.rollback()  # this number goes back to the pool
                    else:
                        db.session.commit()
                db.session.remove()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(ids[0::2], True)),
               threading.Thread(target=worker, args=(ids[1::2], False))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with app.app_context():
        seqs = sorted(db.session.scalars(select(Invoice.seq).where(Invoice.status == "issued")))
        drafts = db.session.scalar(select(db.func.count()).select_from(Invoice).where(Invoice.status == "draft"))
        db.session.remove()
        db.engine.dispose()
    assert seqs == list(range(1, 12))   # 11 issued, one rolled back: no gap, no duplicate
    assert drafts == 1
