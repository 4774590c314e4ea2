"""Issued documents (invoices, statements, credit notes) and their PDFs."""
from __future__ import annotations

import marshmallow as ma
from flask import Response
from marshmallow import validate

from ..extensions import db
from ..invoices import services as invoices
from ..invoices.pdf import document_pdf, filename
from ..models import Invoice
from . import blueprint
from .access import allow, scope
from .common import IdCursorArgs, envelope
from .fields import Fraction, Money

blp = blueprint("invoices", "Issued invoices, statements and credit notes, and their PDFs.")


class InvoiceSchema(ma.Schema):
    id = ma.fields.Integer()
    customer_id = ma.fields.Integer()
    kind = ma.fields.String(metadata={"enum": ["invoice", "statement", "credit_note"]})
    number = ma.fields.String()
    period_start = ma.fields.Date()
    period_end = ma.fields.Date(attribute="period_last", metadata={"description": "Last day of the period."})
    currency = ma.fields.String()
    tax_rate = Fraction()
    net_total = Money()
    tax_total = Money()
    gross_total = Money()
    issued_at = ma.fields.DateTime()
    due_date = ma.fields.Date(allow_none=True)
    reverse_charge = ma.fields.Boolean()
    corrects_invoice_id = ma.fields.Integer(allow_none=True)


class InvoiceArgs(IdCursorArgs):
    customer_id = ma.fields.Integer()
    kind = ma.fields.String(validate=validate.OneOf(["invoice", "statement", "credit_note"]))


InvoicePage = envelope(InvoiceSchema, "InvoicePage")


@blp.route("/invoices")
@blp.arguments(InvoiceArgs, location="query")
@blp.response(200, InvoicePage)
@allow()
def list_invoices(args):
    """Issued documents, newest first (drafts are not listed)

    Paged by id: `next_cursor` is the last id listed; the next page lists older ones."""
    query = invoices.issued(customer_id=scope())
    if args.get("customer_id") is not None:
        query = query.where(Invoice.customer_id == args["customer_id"])
    if args.get("kind"):
        query = query.where(Invoice.kind == args["kind"])
    if args.get("cursor") is not None:
        query = query.where(Invoice.id < args["cursor"])
    rows = db.session.scalars(query.order_by(None).order_by(Invoice.id.desc()).limit(args["limit"] + 1)).all()
    more = len(rows) > args["limit"]
    rows = rows[:args["limit"]]
    return {"items": rows, "next_cursor": str(rows[-1].id) if more and rows else None}


@blp.route("/invoices/<int:invoice_id>")
@blp.response(200, InvoiceSchema)
@allow()
def get_invoice(invoice_id: int):
    """One issued document"""
    return invoices.issued_document(invoice_id, customer_id=scope())


@blp.route("/invoices/<int:invoice_id>/pdf")
@blp.response(200, {"type": "string", "format": "binary"}, content_type="application/pdf",
              description="The PDF, as sent to the customer (rendered once when issued, then kept).")
@allow()
def invoice_pdf(invoice_id: int):
    """The document's PDF"""
    invoice = invoices.issued_document(invoice_id, customer_id=scope())
    pdf = document_pdf(invoice)
    db.session.commit()
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{filename(invoice)}"'})
