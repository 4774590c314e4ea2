"""Self care: the customer's own issued invoices, statements and credit notes."""
from __future__ import annotations

from flask import abort, render_template
from sqlalchemy import select

from ..extensions import db
from ..invoices.pdf import pdf_response
from ..models import Invoice
from ..paging import paginate
from . import bp, own_customer_id
from ._views import page_arg, per_page


def _own_issued():
    return select(Invoice).where(Invoice.customer_id == own_customer_id(), Invoice.status == "issued")


@bp.route("/invoices")
def invoices():
    listing = paginate(_own_issued().order_by(Invoice.issued_at.desc(), Invoice.id.desc()), page_arg(), per_page())
    return render_template("selfcare/invoices.html", **vars(listing))


@bp.route("/invoices/<int:invoice_id>/pdf")
def invoices_pdf(invoice_id: int):
    """Drafts and other customers' documents answer 404, like ids that do not exist."""
    invoice = db.session.scalar(_own_issued().where(Invoice.id == invoice_id))
    if invoice is None:
        abort(404)
    return pdf_response(invoice)
