"""Rated calls (CDRs): the CDR browser's filters, keyset pages, totals, one call, and
the CSV export by content negotiation (`Accept: text/csv`, through portal/csvstream)."""
from __future__ import annotations

from datetime import datetime, timezone

import marshmallow as ma
from flask import current_app, request
from marshmallow import validate

from .. import csvstream, dbapi
from ..cdrs import services as cdrs
from ..errors import NotFound, Refused
from ..localtime import local_today
from ..replica import reads_replica
from . import blueprint, fastdump
from .access import allow, scope
from .common import Day
from .fields import Figure, Money

blp = blueprint("cdrs", "Rated calls: filters, keyset pages, totals, CSV.")

CSV = "text/csv"
# What a customer token may see of a call (its own side only, as self care).
CUSTOMER_KEYS = {"id", "uuid", "start_stamp", "answer_stamp", "end_stamp", "caller_id", "destination",
                 "destination_name", "duration", "billsec", "billed_seconds", "sell_prefix", "sell_rate",
                 "sell_amount", "hangup_cause", "status", "endpoint_id", "endpoint", "overrun_seconds", "ledger"}
STAFF_FILTERS = ("customer_id", "provider_id", "gateway")


class CdrSchema(ma.Schema):
    id = ma.fields.Integer()
    uuid = ma.fields.String()
    start_stamp = ma.fields.DateTime()
    answer_stamp = ma.fields.DateTime(allow_none=True)
    end_stamp = ma.fields.DateTime(allow_none=True)
    caller_id = ma.fields.String(allow_none=True)
    destination = ma.fields.String(allow_none=True)
    destination_name = ma.fields.String(allow_none=True)
    duration = ma.fields.Integer(allow_none=True)
    billsec = ma.fields.Integer(allow_none=True)
    billed_seconds = ma.fields.Integer(allow_none=True)
    sell_prefix = ma.fields.String(allow_none=True)
    sell_rate = Money(allow_none=True)
    sell_amount = Money(allow_none=True, metadata={"description": "What the customer is charged."})
    hangup_cause = ma.fields.String(allow_none=True)
    status = ma.fields.String(metadata={"enum": ["rated", "unrated"]})
    endpoint_id = ma.fields.Integer(allow_none=True)
    endpoint = ma.fields.String(allow_none=True)
    # staff tokens only
    customer_id = ma.fields.Integer(allow_none=True, metadata={"description": "Staff tokens only (also below)."})
    customer = ma.fields.String(allow_none=True)
    currency = ma.fields.String(allow_none=True)
    provider_id = ma.fields.Integer(allow_none=True)
    provider = ma.fields.String(allow_none=True)
    cost_currency = ma.fields.String(allow_none=True)
    gateway = ma.fields.String(allow_none=True)
    route_seq = ma.fields.Integer(allow_none=True)
    cost_rate = Money(allow_none=True)
    cost_amount = Money(allow_none=True)
    margin = Money(allow_none=True)
    unrated_reason = ma.fields.String(allow_none=True)
    fs_cdr_id = ma.fields.Integer(allow_none=True)


class CdrLedgerSchema(ma.Schema):
    id = ma.fields.Integer()
    created_at = ma.fields.DateTime()
    kind = ma.fields.String()
    amount = Money()


class CdrDetailSchema(CdrSchema):
    overrun_seconds = ma.fields.Integer(allow_none=True, metadata={"description": "Seconds beyond the call's grant, "
                                                                                  "not billed."})
    ledger = ma.fields.List(ma.fields.Nested(CdrLedgerSchema))


class CdrFilterArgs(ma.Schema):
    date_from = Day(metadata={"description": "First day, in the operator's time zone."})
    date_to = Day(metadata={"description": "Last day (included)."})
    customer_id = ma.fields.Integer(metadata={"description": "Staff tokens only."})
    endpoint_id = ma.fields.Integer()
    provider_id = ma.fields.Integer(metadata={"description": "Staff tokens only."})
    gateway = ma.fields.String(validate=validate.Length(max=64), metadata={"description": "Staff tokens only."})
    prefix = ma.fields.String(validate=validate.Regexp(r"^[0-9]{1,20}$"),
                              metadata={"description": "The destination starts with these digits."})
    hangup_cause = ma.fields.String(validate=validate.Regexp(r"^[A-Z_]{1,64}$"))
    answered = ma.fields.Boolean()
    status = ma.fields.String(validate=validate.OneOf(["rated", "unrated"]))
    number = ma.fields.String(validate=validate.Regexp(r"^\+?[0-9]{1,20}$"),
                              metadata={"description": "A caller or destination number search."})
    number_in = ma.fields.String(load_default="either", validate=validate.OneOf(list(cdrs.NUMBER_FIELDS)))
    match = ma.fields.String(load_default="prefix", validate=validate.OneOf(list(cdrs.MATCHES)),
                             metadata={"description": "prefix: starts with; contains: anywhere (at most 31 days)."})


class CdrPageArgs(CdrFilterArgs):
    cursor = ma.fields.String(validate=validate.Length(max=60),
                              metadata={"description": "`next_cursor` of the previous page."})
    limit = ma.fields.Integer(load_default=100, validate=validate.Range(1, 1000))


_dump_cdr = fastdump.compile_dump(CdrSchema)   # a page of 100 calls: marshmallow took longer than the query


class CdrPage(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(CdrSchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True,
                                   metadata={"description": "Older calls: pass as `cursor`; null: no more."})


class CdrTotalsSchema(ma.Schema):
    calls = ma.fields.Integer()
    answered = ma.fields.Integer()
    billsec = ma.fields.Integer()
    billed_seconds = ma.fields.Integer()
    minutes = Figure(metadata={"description": "billsec / 60, 2 decimals."})
    revenue = Money()
    cost = Money(metadata={"description": "Staff tokens only (also margin, unrated)."})
    margin = Money()
    unrated = ma.fields.Integer()
    asr = Figure(allow_none=True, metadata={"description": "Answered calls, %."})
    acd = Figure(allow_none=True, metadata={"description": "Average call, seconds."})


def _filter(args: dict) -> cdrs.CdrFilter:
    own = scope()
    if own is not None:
        for name in STAFF_FILTERS:
            if args.get(name) is not None:
                raise Refused(f"a customer token sees its own calls only: {name} is a filter of staff tokens", name)
    kw = {name: args.get(name) for name in ("date_from", "date_to", "customer_id", "endpoint_id", "provider_id",
                                            "gateway", "prefix", "hangup_cause", "answered", "status", "number")}
    kw.update(number_in=args["number_in"], match=args["match"])
    if kw["number"] and kw["match"] == "contains":
        kw["date_from"], kw["date_to"] = cdrs.contains_window(kw["date_from"], kw["date_to"], local_today())
    return cdrs.CdrFilter(**kw)


def _wants_csv() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", CSV])
    return best == CSV and request.accept_mimetypes[CSV] > request.accept_mimetypes["application/json"]


@blp.route("/cdrs")
@blp.arguments(CdrPageArgs, location="query")
@blp.response(200, CdrPage)
@blp.alt_response(200, success=True, content_type=CSV, description=(
    "With `Accept: text/csv`: every call of the filter, oldest first, streamed (no paging). Cells that a "
    "spreadsheet would run as formulas are prefixed with '; a cut download ends with '# EXPORT INCOMPLETE'."),
    schema={"type": "string"}, example="start_stamp,answer_stamp,...")
@allow()
@reads_replica
def list_cdrs(args):
    """Rated calls, newest first, in keyset pages

    Filters are the CDR browser's. A page is a range scan of the (customer,) start time
    index whatever its depth. `Accept: text/csv` answers the whole filtered set as CSV."""
    flt = _filter(args)
    own = scope()
    if _wants_csv():
        return csvstream.export_response(f"cdrs-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.csv",
                                         cdrs.export(flt, customer_id=own))
    page = cdrs.page(dbapi.connection(), flt, older_than=args.get("cursor"), size=args["limit"], customer_id=own,
                     with_newer=False)
    return current_app.json.response({"items": [_dump_cdr(row) for row in page.rows],
                                      "next_cursor": page.older.encode() if page.older else None})


@blp.route("/cdrs/totals")
@blp.arguments(CdrFilterArgs, location="query")
@blp.response(200, CdrTotalsSchema)
@allow()
@reads_replica
def cdr_totals(args):
    """Totals of the filtered calls (count, answered, minutes, revenue; staff: cost, margin)"""
    return cdrs.totals(dbapi.connection(), _filter(args), customer_id=scope())


@blp.route("/cdrs/<int:cdr_id>")
@blp.response(200, CdrDetailSchema)
@allow()
@reads_replica
def get_cdr(cdr_id: int):
    """One rated call with its ledger entries"""
    own = scope()
    call = cdrs.call_detail(dbapi.connection(), cdr_id, customer_id=own)
    if call is None:
        raise NotFound("no such call")
    if own is not None:
        call = {k: v for k, v in call.items() if k in CUSTOMER_KEYS}
        call["ledger"] = [{k: e[k] for k in ("id", "created_at", "kind", "amount")} for e in call["ledger"]]
    return call
