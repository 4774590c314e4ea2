"""Customers with their money (balance, available funds, reserved by calls in
progress), and the rates that apply to a customer."""
from __future__ import annotations

import marshmallow as ma
from flask import abort
from marshmallow import validate

from .. import dbapi
from ..admin.manage import services as changes
from ..customers import services as customers
from ..errors import Refused
from ..extensions import db
from ..models import Customer, Ratecard
from ..rates import services as rates
from . import blueprint
from .access import allow, customer_in_path, scope
from .common import Currency, IdCursorArgs, Name, Strict, by_id_page, envelope, location
from .fields import Fraction, Money

blp = blueprint("customers", "Customers, their balance, available funds and reserved money, and their rates.")

STRATEGIES = ("cost", "quality", "reliability", "equal", "priority")


class CustomerSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    display_name = ma.fields.String(allow_none=True)
    enabled = ma.fields.Boolean()
    billing_type = ma.fields.String(metadata={"enum": ["prepaid", "postpaid"]})
    currency = ma.fields.String()
    balance = Money()
    credit_limit = Money()
    reserved = Money(metadata={"description": "Held by calls in progress (their holds)."})
    available = Money(metadata={"description": "balance + credit_limit - reserved: what new calls may spend."})
    calls_in_progress = ma.fields.Integer()
    max_calls = ma.fields.Integer(allow_none=True)
    lcr_strategy = ma.fields.String(metadata={"enum": list(STRATEGIES)})
    allow_negative_margin = ma.fields.Boolean()
    low_balance_alert = Money(allow_none=True)
    email = ma.fields.String(allow_none=True)
    tax_rate = Fraction(allow_none=True)
    daily_balance_email = ma.fields.Boolean()
    legal_name = ma.fields.String(allow_none=True)
    address = ma.fields.String(allow_none=True)
    vat_id = ma.fields.String(allow_none=True)
    payment_terms_days = ma.fields.Integer(allow_none=True)
    ratecard_ids = ma.fields.List(ma.fields.Integer(), metadata={"description": "In priority order."})
    created_at = ma.fields.DateTime()


class CustomerInSchema(Strict):
    name = Name(required=True)
    display_name = ma.fields.String(allow_none=True, validate=validate.Length(max=200))
    enabled = ma.fields.Boolean()
    billing_type = ma.fields.String(validate=validate.OneOf(["prepaid", "postpaid"]))
    currency = Currency()
    credit_limit = Money(minimum=0)
    opening_balance = Money(load_only=True, metadata={"description": "Create only: an 'initial' ledger entry."})
    max_calls = ma.fields.Integer(allow_none=True, validate=validate.Range(0, 100000))
    lcr_strategy = ma.fields.String(validate=validate.OneOf(STRATEGIES))
    allow_negative_margin = ma.fields.Boolean()
    low_balance_alert = Money(allow_none=True)
    email = ma.fields.Email(allow_none=True, validate=validate.Length(max=254))
    tax_rate = Fraction(allow_none=True)
    daily_balance_email = ma.fields.Boolean()
    legal_name = ma.fields.String(allow_none=True, validate=validate.Length(max=200))
    address = ma.fields.String(allow_none=True, validate=validate.Length(max=1000))
    vat_id = ma.fields.String(allow_none=True, validate=validate.Length(max=50))
    payment_terms_days = ma.fields.Integer(allow_none=True, validate=validate.Range(0, 365))
    ratecard_ids = ma.fields.List(ma.fields.Integer(), validate=validate.Length(max=10),
                                  metadata={"description": "Ratecards in priority order (the first with a rate "
                                                           "for the number prices the call)."})

    @ma.validates("vat_id")
    def _vat_id(self, value, **kwargs):
        from ..invoices.legal import normalize_vat_id

        try:
            normalize_vat_id(value)
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None

    @ma.validates("ratecard_ids")
    def _ratecards(self, value, **kwargs):
        if len(value) != len(set(value)):
            raise ma.ValidationError("The same ratecard is listed twice.")

    @ma.validates_schema
    def _prepaid(self, data, partial=False, **kwargs):
        if not partial and data.get("billing_type", "prepaid") == "prepaid" and data.get("credit_limit"):
            raise ma.ValidationError("A prepaid customer has no credit limit: set 0 or choose postpaid.",
                                     "credit_limit")


class CustomerListArgs(IdCursorArgs):
    q = ma.fields.String(validate=validate.Length(max=100), metadata={"description": "Name, display name or e-mail."})
    enabled = ma.fields.Boolean()


class AppliedRateSchema(ma.Schema):
    prefix = ma.fields.String()
    destination = ma.fields.String(allow_none=True)
    applied_prefix = ma.fields.String(allow_none=True, metadata={"description": "Null: calls to it are refused."})
    rate = Money(allow_none=True)
    connect_fee = Money(allow_none=True)
    min_duration = ma.fields.Integer(allow_none=True)
    increment_first = ma.fields.Integer(allow_none=True)
    increment_next = ma.fields.Integer(allow_none=True)
    valid_to = ma.fields.DateTime(allow_none=True)
    ratecard = ma.fields.String(allow_none=True)
    currency = ma.fields.String(allow_none=True)
    priority = ma.fields.Integer(allow_none=True)


class AppliedRatesArgs(ma.Schema):
    q = ma.fields.String(validate=validate.Length(max=100),
                         metadata={"description": "Digits: prefixes starting with them; text: destination names."})
    page = ma.fields.Integer(load_default=1, validate=validate.Range(1, 1_000_000))
    per_page = ma.fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class AppliedRatesPage(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(AppliedRateSchema))
    page = ma.fields.Integer()
    per_page = ma.fields.Integer()
    total = ma.fields.Integer()


CustomerPage = envelope(CustomerSchema, "CustomerPage")


def _clean(data: dict) -> dict:
    if data.get("vat_id"):
        from ..invoices.legal import normalize_vat_id

        data["vat_id"] = normalize_vat_id(data["vat_id"])
    for key in ("email", "display_name", "legal_name", "address", "vat_id"):
        if key in data and isinstance(data[key], str):
            data[key] = data[key].strip() or None
    return data


def _ratecard_ids(ids: list[int]) -> list[int]:
    if ids:
        known = set(db.session.scalars(db.select(Ratecard.id).where(Ratecard.id.in_(ids))))
        missing = [i for i in ids if i not in known]
        if missing:
            raise Refused(f"no ratecard has the id {missing[0]}", "ratecard_ids")
    return ids


@blp.route("/customers")
@blp.arguments(CustomerListArgs, location="query")
@blp.response(200, CustomerPage)
@allow()
def list_customers(args):
    """Customers by id, with their money

    A customer token lists its own customer only."""
    rows = customers.accounts(dbapi.connection(), customer_id=scope(), query=args.get("q"),
                              enabled=args.get("enabled"), after=args.get("cursor"), limit=args["limit"] + 1)
    return by_id_page(rows, args["limit"])


@blp.route("/customers", methods=["POST"])
@blp.arguments(CustomerInSchema)
@blp.response(201, CustomerSchema)
@allow(write=True)
def create_customer(data):
    """Create a customer

    `opening_balance` is posted to the ledger as an 'initial' entry."""
    data = _clean(data)
    ratecard_ids = _ratecard_ids(data.pop("ratecard_ids", []))
    opening = data.pop("opening_balance", None)
    data.setdefault("credit_limit", 0)
    customer = changes.save_customer(Customer(), data, ratecard_ids, opening)
    return customers.account(dbapi.connection(), customer.id), 201, location("customers.get_customer",
                                                                              customer_id=customer.id)


@blp.route("/customers/<int:customer_id>")
@blp.response(200, CustomerSchema)
@allow()
def get_customer(customer_id: int):
    """One customer with its balance, reserved and available funds"""
    return customers.account(dbapi.connection(), customer_id, customer_id=scope())


@blp.route("/customers/<int:customer_id>", methods=["PATCH"])
@blp.arguments(CustomerInSchema(partial=True))
@blp.response(200, CustomerSchema)
@allow(write=True, owner=customer_in_path)
def update_customer(data, customer_id: int):
    """Change a customer (only the fields sent)"""
    customer = db.session.get(Customer, customer_id) or abort(404)
    data = _clean(data)
    data.pop("opening_balance", None)
    ratecard_ids = _ratecard_ids(data.pop("ratecard_ids")) if "ratecard_ids" in data \
        else [link.ratecard_id for link in customer.ratecard_links]
    changes.save_customer(customer, data, ratecard_ids)
    return customers.account(dbapi.connection(), customer_id)


@blp.route("/customers/<int:customer_id>", methods=["DELETE"])
@blp.response(204)
@allow(write=True, owner=customer_in_path)
def delete_customer(customer_id: int):
    """Delete a customer without ledger entries (otherwise: 409; disable it instead)"""
    customer = db.session.get(Customer, customer_id) or abort(404)
    changes.delete(Customer, customer, "customer", f"Customer {customer.name}")


@blp.route("/customers/<int:customer_id>/rates")
@blp.arguments(AppliedRatesArgs, location="query")
@blp.response(200, AppliedRatesPage)
@allow()
def customer_rates(args, customer_id: int):
    """The rates that apply to the customer, per prefix of its ratecards

    Each prefix with the rate the rating itself would use now (the first ratecard by
    priority with a valid rate, longest prefix); a null rate means calls are refused."""
    conn = dbapi.connection()
    customers.account(conn, customer_id, customer_id=scope())   # 404 outside the scope
    rows, total = rates.applied(conn, customer_id, args.get("q"), page=args["page"], per_page=args["per_page"])
    return {"items": rows, "page": args["page"], "per_page": args["per_page"], "total": total}
