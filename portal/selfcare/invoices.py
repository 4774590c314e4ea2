"""Self care: the customer's own issued invoices, statements and credit notes."""
from __future__ import annotations

from flask import abort, current_app, render_template, request
from sqlalchemy import func, select

from ..extensions import db
from ..invoices.pdf import pdf_response
from ..models import Invoice
from . import bp, own_customer_id


def _own_issued():
    return select(Invoice).where(Invoice.customer_id == own_customer_id(), Invoice.status == "issued")


@bp.route("/invoices")
def invoices():
    page = max(request.args.get("page", 1, type=int), 1)
    per_page = current_app.config["PAGE_SIZE"]
    query = _own_issued()
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(Invoice.issued_at.desc(), Invoice.id.desc())
                              .limit(per_page).offset((page - 1) * per_page)).all()
    return render_template("selfcare/invoices.html", invoices=rows, total=total, page=page, per_page=per_page)


@bp.route("/invoices/<int:invoice_id>/pdf")
def invoices_pdf(invoice_id: int):
    """Drafts and other customers' documents answer 404, like ids that do not exist."""
    invoice = db.session.scalar(_own_issued().where(Invoice.id == invoice_id))
    if invoice is None:
        abort(404)
    return pdf_response(invoice)
