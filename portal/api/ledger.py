"""A customer's ledger: its entries with the balance after each, and posting a top-up,
payment, credit note or adjustment (with an Idempotency-Key: a retried post posts once)."""
from __future__ import annotations

import marshmallow as ma
from flask import abort, url_for
from marshmallow import validate

from .. import dbapi
from ..customers import services as customers
from ..extensions import db
from ..ledger import services as ledger
from ..models import Customer
from . import blueprint, idempotency
from .access import allow, caller, customer_in_path, scope
from .common import Day, Strict
from .fields import Money

blp = blueprint("ledger", "Ledger entries: the only way a balance changes.")


class LedgerEntrySchema(ma.Schema):
    id = ma.fields.Integer()
    customer_id = ma.fields.Integer()
    created_at = ma.fields.DateTime()
    kind = ma.fields.String(metadata={"enum": list(ledger.KINDS)})
    amount = Money(metadata={"description": "Positive credits the customer, negative debits."})
    reference = ma.fields.String(allow_none=True)
    note = ma.fields.String(allow_none=True)
    call_uuid = ma.fields.String(allow_none=True)
    created_by = ma.fields.String(allow_none=True, metadata={"description": "Who posted it (staff tokens only)."})
    balance_after = Money(metadata={"description": "The customer's balance after this entry."})


class LedgerArgs(ma.Schema):
    date_from = Day()
    date_to = Day(metadata={"description": "Inclusive."})
    kind = ma.fields.String(validate=validate.OneOf(list(ledger.GROUPS)),
                            metadata={"description": "charges, payments, credit_notes or adjustments"})
    page = ma.fields.Integer(load_default=1, validate=validate.Range(1, 1_000_000))
    per_page = ma.fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class LedgerPage(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(LedgerEntrySchema))
    page = ma.fields.Integer()
    per_page = ma.fields.Integer()
    total = ma.fields.Integer()


class PostEntrySchema(Strict):
    kind = ma.fields.String(required=True, validate=validate.OneOf(ledger.MANUAL_KINDS))
    amount = Money(required=True, metadata={"description": "Top-ups, payments and credit notes are positive; an "
                                                           "adjustment may be negative."})
    reference = ma.fields.String(allow_none=True, validate=validate.Length(max=100),
                                 metadata={"description": "Payment or credit note number."})
    note = ma.fields.String(allow_none=True, validate=validate.Length(max=500))


class PostedEntrySchema(LedgerEntrySchema):
    balance = Money(metadata={"description": "The customer's balance once posted."})


@blp.route("/customers/<int:customer_id>/ledger")
@blp.arguments(LedgerArgs, location="query")
@blp.response(200, LedgerPage)
@allow()
def list_entries(args, customer_id: int):
    """The customer's ledger entries, newest first, with the balance after each"""
    conn = dbapi.connection()
    customers.account(conn, customer_id, customer_id=scope())   # 404 outside the scope
    flt = ledger.LedgerFilter(args.get("date_from"), args.get("date_to"), args.get("kind"))
    rows, total = ledger.entries(conn, customer_id, flt, page=args["page"], per_page=args["per_page"],
                                 with_author=scope() is None)
    for row in rows:
        row["customer_id"] = customer_id
    return {"items": rows, "page": args["page"], "per_page": args["per_page"], "total": total}


@blp.route("/customers/<int:customer_id>/ledger", methods=["POST"])
@blp.arguments(PostEntrySchema)
@blp.arguments(ma.Schema.from_dict({"Idempotency-Key": ma.fields.String(
    required=True, metadata={"description": "A unique value per operation (e.g. a UUID): a retry with the same key "
                                            "and body posts once and answers as the first time."})})(),
    location="headers")
@blp.response(201, PostedEntrySchema, headers={"Idempotent-Replayed": {
    "description": "true when this is the stored answer of an earlier request with the same key",
    "schema": {"type": "string"}}})
@allow(write=True, owner=customer_in_path)
def post_entry(data, _headers, customer_id: int):
    """Post a top-up, payment, credit note or adjustment

    Payments and top-ups are allocated to the customer's open invoices, oldest first.
    The `Idempotency-Key` header is required: a retry with the same key and body, even
    a concurrent one, posts once and gets the first answer (`Idempotent-Replayed: true`);
    the same key with another body is refused (422, idempotency_key_reused)."""
    try:
        key = idempotency.key_of_request()
        stored = idempotency.claim(key, caller().id, idempotency.fingerprint(data | {"customer_id": customer_id}))
    except idempotency.KeyProblem as refused:
        db.session.rollback()
        return refused.response
    if stored is not None:
        db.session.rollback()
        return idempotency.answer(stored, replayed=True)
    customer = db.session.get(Customer, customer_id) or abort(404)
    entry = ledger.post_manual(customer, data["kind"], data["amount"], reference=data.get("reference"),
                               note=data.get("note"), actor=caller().actor)
    body = PostedEntrySchema().dump({
        "id": entry.id, "customer_id": customer_id, "created_at": entry.created_at, "kind": entry.kind,
        "amount": entry.amount, "reference": entry.reference, "note": entry.note, "call_uuid": None,
        "created_by": entry.created_by, "balance_after": customer.balance, "balance": customer.balance})
    where = url_for("ledger.list_entries", customer_id=customer_id)
    idempotency.remember(key, 201, body, where)
    db.session.commit()
    return idempotency.answer(idempotency.Stored(201, body, where), replayed=False)
