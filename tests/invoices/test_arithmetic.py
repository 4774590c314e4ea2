"""Invoice lines, totals and rounding with exact Decimals (rules: docs/invoices.md)."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from portal.invoices import InvoiceError
from portal.invoices.services import Period, build_draft, issue, round_money, totals, usage_lines
from portal.models import Settings
from tests import factories
from tests.invoices.conftest import cdr, ledger_at, utc

JAN = Period.month(2026, 1)


def test_round_money_is_half_up_to_cents():
    assert round_money(Decimal("0.125")) == Decimal("0.13")
    assert round_money(Decimal("0.124999")) == Decimal("0.12")
    assert round_money(Decimal("2.005000")) == Decimal("2.01")
    assert round_money(Decimal("-0.125")) == Decimal("-0.13")


def test_tax_is_computed_once_on_the_net_total_half_up():
    # 0.10 x 25 % = 0.025 exactly: half-up gives 0.03 (banker's rounding would give 0.02)
    assert totals([Decimal("0.10")], Decimal("0.25")) == (Decimal("0.10"), Decimal("0.03"), Decimal("0.13"))
    # three lines of 0.05 at 10 %: tax on the total (0.015 -> 0.02), not per line (3 x 0.01)
    net, tax, gross = totals([Decimal("0.05")] * 3, Decimal("0.1"))
    assert (net, tax, gross) == (Decimal("0.15"), Decimal("0.02"), Decimal("0.17"))


def test_period_of_a_month_and_the_month_before():
    assert Period.month(2026, 2) == Period(date(2026, 2, 1), date(2026, 3, 1))
    assert Period.month(2025, 12) == Period(date(2025, 12, 1), date(2026, 1, 1))
    assert Period.previous_month(date(2026, 1, 15)) == Period(date(2025, 12, 1), date(2026, 1, 1))
    with pytest.raises(InvoiceError, match="must end after"):
        Period(date(2026, 1, 2), date(2026, 1, 2))


def test_lines_by_destination_and_totals(db_session, catalogue):
    c = factories.customer(billing_type="postpaid", credit_limit=Decimal("100"), tax_rate=Decimal("0.2"),
                           email="ap@acme.example")
    other = factories.customer(billing_type="postpaid")
    # France: three calls of a third each; per-line rounding gives 1.00 (per call it would be 0.99)
    for minute in range(3):
        cdr(c, utc(2026, 1, 5, 10, minute), "0.333333" if minute < 2 else "0.333334", billed_seconds=40)
    # France Mobile: a tie, rounded half-up
    cdr(c, utc(2026, 1, 6, 9), "0.125000", sell_prefix="336", destination="33612345678", billed_seconds=90)
    # Germany: 2.004999 + 0.000001 = 2.005 -> 2.01
    cdr(c, utc(2026, 1, 1, 0, 0), "2.004999", sell_prefix="49", destination="4930123456")  # first second of the period
    cdr(c, utc(2026, 1, 31, 23, 59, 59), "0.000001", sell_prefix="49", destination="4930123456")
    # Not on this invoice: before/after the period, unanswered, unrated, another customer's
    cdr(c, utc(2025, 12, 31, 23, 59, 59), "5.000000")
    cdr(c, utc(2026, 2, 1, 0, 0), "5.000000")
    cdr(c, utc(2026, 1, 7), "0", billed_seconds=0)
    cdr(c, utc(2026, 1, 7), "5.000000", status="unrated")
    cdr(other, utc(2026, 1, 7), "5.000000")
    # A prefix the catalogue does not know
    cdr(c, utc(2026, 1, 8), "0.010000", sell_prefix=None, destination="99912345")

    lines = usage_lines(c.id, JAN)
    assert [(l.description, l.calls, l.seconds, l.amount_exact, l.amount) for l in lines] == [
        ("France (33)", 3, 120, Decimal("1.000000"), Decimal("1.00")),
        ("France Mobile (336)", 1, 90, Decimal("0.125000"), Decimal("0.13")),
        ("Germany (49)", 2, 120, Decimal("2.005000"), Decimal("2.01")),
        ("Other destinations", 1, 60, Decimal("0.010000"), Decimal("0.01")),
    ]
    invoice = build_draft(c, JAN)
    assert invoice.kind == "invoice" and invoice.status == "draft" and invoice.number is None
    assert invoice.net_total == Decimal("3.15")
    assert invoice.tax_rate == Decimal("0.2000")
    assert invoice.tax_total == Decimal("0.63")   # 0.630
    assert invoice.gross_total == Decimal("3.78")
    assert [l.amount for l in invoice.lines] == [Decimal("1.00"), Decimal("0.13"), Decimal("2.01"), Decimal("0.01")]


def test_payments_credit_notes_and_balances_of_the_period(db_session, catalogue):
    c = factories.customer(billing_type="postpaid", credit_limit=Decimal("100"))
    ledger_at(c, "payment", "50.004", utc(2025, 12, 20))           # before: opening balance only
    ledger_at(c, "call", "-10.000001", utc(2026, 1, 3))
    ledger_at(c, "payment", "20.005", utc(2026, 1, 10), reference="bank-1")
    ledger_at(c, "credit_note", "1.20", utc(2026, 1, 11))
    ledger_at(c, "adjustment", "-0.50", utc(2026, 1, 12))
    ledger_at(c, "payment", "99", utc(2026, 2, 1))                   # after the period
    invoice = build_draft(c, JAN)
    assert invoice.opening_balance == Decimal("50.004000")
    assert invoice.closing_balance == Decimal("50.004") - Decimal("10.000001") + Decimal("20.005") + Decimal("1.20") - Decimal("0.50")
    assert invoice.payments_total == Decimal("20.01")
    assert invoice.credits_total == Decimal("1.20")
    assert invoice.adjustments_total == Decimal("-0.50")
    assert invoice.net_total == Decimal("0.00") and invoice.lines == []


def test_default_tax_rate_comes_from_settings(db_session, catalogue):
    Settings.get().default_tax_rate = Decimal("0.1900")
    c = factories.customer(billing_type="postpaid", credit_limit=Decimal("10"))
    cdr(c, utc(2026, 1, 5), "10.000000")
    invoice = build_draft(c, JAN)
    assert (invoice.tax_rate, invoice.tax_total, invoice.gross_total) == (Decimal("0.19"), Decimal("1.90"), Decimal("11.90"))


def test_prepaid_customers_get_a_statement_without_tax(db_session, catalogue):
    Settings.get().default_tax_rate = Decimal("0.2")
    c = factories.customer(billing_type="prepaid")
    ledger_at(c, "topup", "20", utc(2025, 12, 1))
    cdr(c, utc(2026, 1, 5), "1.234567")
    ledger_at(c, "call", "-1.234567", utc(2026, 1, 5))
    statement = build_draft(c, JAN)
    assert statement.kind == "statement"
    assert (statement.net_total, statement.tax_total, statement.gross_total) == (Decimal("1.23"),) + (Decimal("0.00"), Decimal("1.23"))
    assert statement.opening_balance == Decimal("20") and statement.closing_balance == Decimal("18.765433")
    issue(statement, issued_at=utc(2026, 2, 1, 2))
    assert statement.number == "ST-2026-000001"


def test_issuing_an_invoice_posts_its_tax_to_the_ledger(db_session, catalogue):
    c = factories.customer(billing_type="postpaid", credit_limit=Decimal("100"), tax_rate=Decimal("0.2"))
    cdr(c, utc(2026, 1, 5), "10.000000")
    invoice = issue(build_draft(c, JAN), actor="admin@example.net")
    db_session.refresh(c)
    assert c.balance == Decimal("-2.00")  # calls were debited by CDR billing; the tax now
    assert invoice.issued_by == "admin@example.net"


def test_rebuilding_a_draft_replaces_its_lines(db_session, catalogue):
    c = factories.customer(billing_type="postpaid", credit_limit=Decimal("10"))
    cdr(c, utc(2026, 1, 5), "1.000000")
    first = build_draft(c, JAN)
    cdr(c, utc(2026, 1, 6), "2.000000")
    again = build_draft(c, JAN)
    assert again.id == first.id and again.net_total == Decimal("3.00") and len(again.lines) == 1


def test_periods_of_a_customer_never_overlap(db_session, catalogue):
    c = factories.customer(billing_type="postpaid", credit_limit=Decimal("10"))
    build_draft(c, Period(date(2026, 1, 10), date(2026, 1, 20)))
    with pytest.raises(InvoiceError, match="overlaps"):
        build_draft(c, JAN)


def test_a_period_that_has_not_ended_cannot_be_issued(db_session, catalogue):
    c = factories.customer(billing_type="postpaid", credit_limit=Decimal("10"))
    today = datetime.now().date()
    draft = build_draft(c, Period(today.replace(day=1), today.replace(day=1).replace(year=today.year + 1)))
    with pytest.raises(InvoiceError, match="has not ended"):
        issue(draft)
