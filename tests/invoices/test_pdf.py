"""PDFs rendered by WeasyPrint: the text extracted from them is what the customer sees."""
from __future__ import annotations

import io
from decimal import Decimal

import pytest
from pypdf import PdfReader

from portal.invoices.pdf import _static_only_fetcher, document_pdf, render_pdf
from portal.invoices.services import Period, build_draft, issue, issue_credit_note
from portal.models import InvoiceDocument, Settings
from tests import factories
from tests.invoices.conftest import cdr, ledger_at, utc

JAN = Period.month(2026, 1)


def pdf_text(pdf: bytes) -> str:
    assert pdf.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


@pytest.fixture()
def invoice(db_session, catalogue):
    settings = Settings.get()
    settings.company_name, settings.company_address = "Example Telecom SAS", "1 rue du Port\n13002 Marseille"
    settings.company_vat_id = "FR12345678901"
    settings.invoice_footer = 'Bank: IBAN FR76 0000 "Example" & Co'

    c = factories.customer(name="acme-corp", billing_type="postpaid", credit_limit=Decimal("500"),
                           tax_rate=Decimal("0.2"), email="ap@acme.example")
    cdr(c, utc(2026, 1, 5), "12.345678", billed_seconds=600)
    cdr(c, utc(2026, 1, 6), "0.125000", sell_prefix="336", destination="33612345678", billed_seconds=90)
    ledger_at(c, "payment", "100", utc(2026, 1, 15), reference="bank transfer 42")
    return issue(build_draft(c, JAN), issued_at=utc(2026, 2, 1, 2))


def test_invoice_pdf_shows_customer_number_lines_and_totals(invoice):
    text = pdf_text(document_pdf(invoice))
    for expected in ("Invoice", "2026-000001", "acme-corp", "Example Telecom SAS", "FR12345678901",
                     "France (33)", "France Mobile (336)", "10.00", "1.50",       # minutes
                     "12.35", "0.13", "Net total", "12.48", "VAT 20 % of 12.48 EUR", "2.50", "Total due", "14.98 EUR",
                     "bank transfer 42", "100.00", "2026-01-01 – 2026-01-31", 'IBAN FR76 0000 "Example" & Co'):
        assert expected in text, expected


def test_issued_pdf_is_stored_once_and_survives_settings_changes(db_session, invoice):
    first = document_pdf(invoice)
    Settings.get().company_name = "Renamed Telecom"
    assert document_pdf(invoice) == first
    assert db_session.get(InvoiceDocument, invoice.id).pdf == first
    assert "Renamed" not in pdf_text(first)


def test_draft_and_statement_and_credit_note_pdfs(db_session, catalogue, invoice):
    prepaid = factories.customer(name="smallco", billing_type="prepaid", balance="20")
    cdr(prepaid, utc(2026, 1, 9), "1.000000")
    draft = build_draft(prepaid, JAN)
    text = pdf_text(render_pdf(draft))
    assert "DRAFT" in text and "Statement" in text and "Nothing is due" in text
    assert db_session.get(InvoiceDocument, draft.id) is None
    note = issue_credit_note(invoice, "1.00", "rounding goodwill", issued_at=utc(2026, 2, 2))
    text = pdf_text(document_pdf(note))
    assert "Credit note" in text and "CN-2026-000001" in text and "2026-000001" in text and "1.20" in text


def test_pdf_never_fetches_from_the_network(app, tmp_path):
    fetch = _static_only_fetcher(tmp_path)
    (tmp_path / "ok.css").write_text("p {}")
    assert fetch((tmp_path / "ok.css").as_uri()).read() == b"p {}"
    for url in ("http://example.com/logo.png", "https://example.com/x.css", "file:///etc/passwd",
                (tmp_path / ".." / "x.css").as_uri()):
        with pytest.raises(ValueError, match="only load files from static"):
            fetch(url)
