"""Self care: the customer's own issued invoices, statements and credit notes."""
from __future__ import annotations

from flask import abort, render_template

from ..errors import NotFound
from ..invoices import services
from ..invoices.pdf import pdf_response
from ..paging import paginate
from . import bp, own_customer_id
from ._views import page_arg, per_page


@bp.route("/invoices")
def invoices():
    listing = paginate(services.issued(customer_id=own_customer_id()), page_arg(), per_page())
    return render_template("selfcare/invoices.html", **vars(listing))


@bp.route("/invoices/<int:invoice_id>/pdf")
def invoices_pdf(invoice_id: int):
    """Drafts and other customers' documents answer 404, like ids that do not exist."""
    try:
        return pdf_response(services.issued_document(invoice_id, customer_id=own_customer_id()))
    except NotFound:
        abort(404)
