"""PDF of a document, rendered by WeasyPrint from templates/invoices/pdf.html.

An issued document is rendered once from its own snapshot (seller details, customer
name, lines) and kept in billing.invoice_documents, so a later change of the company
settings never alters a PDF already sent. Drafts are rendered on every request and
marked DRAFT. WeasyPrint may read files under static/ only: no network fetches.
"""
from __future__ import annotations

from pathlib import Path

from flask import Response, current_app, render_template
from sqlalchemy.dialects.postgresql import insert

from ..extensions import db
from ..models import Invoice, InvoiceDocument
from .services import ledger_entries, minutes, percent, seller_snapshot


def _static_only_fetcher(root: Path):
    """A WeasyPrint URL fetcher that serves files below `root` and refuses the rest."""
    from urllib.parse import unquote, urlsplit

    from weasyprint.urls import URLFetcher

    root = root.resolve()

    class StaticOnlyFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            parts = urlsplit(url)
            if parts.scheme == "file" and not parts.netloc:
                path = Path(unquote(parts.path)).resolve()
                if root in path.parents:
                    return super().fetch(url, headers)
            raise ValueError(f"invoice PDFs may only load files from static/, not {url!r}")

    return StaticOnlyFetcher(allowed_protocols=["file"])


def render_html(invoice: Invoice) -> str:
    seller = invoice.seller or seller_snapshot()
    return render_template("invoices/pdf.html", invoice=invoice, seller=seller, lines=invoice.lines,
                           entries=ledger_entries(invoice) if invoice.kind != "credit_note" else [],
                           corrects=invoice.corrects, minutes=minutes, percent=percent)


def render_pdf(invoice: Invoice) -> bytes:
    from weasyprint import HTML  # heavy import, only when a PDF is made

    static = Path(current_app.static_folder)
    html = HTML(string=render_html(invoice), base_url=str(static) + "/", url_fetcher=_static_only_fetcher(static))
    return html.write_pdf()


def document_pdf(invoice: Invoice) -> bytes:
    """The PDF of `invoice`: stored once for issued documents, fresh for drafts.

    Stores in the current transaction; the caller commits."""
    if not invoice.is_issued:
        return render_pdf(invoice)
    stored = db.session.get(InvoiceDocument, invoice.id)
    if stored is not None:
        return stored.pdf
    pdf = render_pdf(invoice)
    # Two first downloads at once: the first stored wins, both return the same bytes.
    db.session.execute(insert(InvoiceDocument).values(invoice_id=invoice.id, pdf=pdf)
                       .on_conflict_do_nothing(index_elements=["invoice_id"]))
    return db.session.get(InvoiceDocument, invoice.id, populate_existing=True).pdf


def filename(invoice: Invoice) -> str:
    label = invoice.number or f"draft-{invoice.id}"
    return f"{invoice.kind.replace('_', '-')}-{label}.pdf"


def pdf_response(invoice: Invoice) -> Response:
    """A download of the document's PDF (admin and self-care pages); commits the stored copy."""
    pdf = document_pdf(invoice)
    db.session.commit()
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename(invoice)}"'
    return response
