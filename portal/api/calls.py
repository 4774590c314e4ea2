"""Calls in progress: the holds route_call placed, with what each covers (credit is
granted in quotas, CONTRACT 1b: granted_seconds, the amount held, expires_at)."""
from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from .. import dbapi
from ..customers import services as customers
from . import blueprint
from .access import allow, scope
from .fields import Money

blp = blueprint("calls", "Calls in progress and the money their holds reserve.")


class CallSchema(ma.Schema):
    call_uuid = ma.fields.String()
    customer_id = ma.fields.Integer()
    customer = ma.fields.String()
    currency = ma.fields.String()
    endpoint_id = ma.fields.Integer()
    endpoint = ma.fields.String()
    destination = ma.fields.String()
    sell_rate = Money()
    created_at = ma.fields.DateTime(metadata={"description": "When the call was routed."})
    max_duration = ma.fields.Integer(allow_none=True, metadata={"description": "Seconds the call may last on the "
                                                                               "funds at set-up."})
    granted_seconds = ma.fields.Integer(allow_none=True, metadata={
        "description": "Seconds since the answer the hold covers now (all of max_duration for holds without "
                       "quotas; null only when that is unlimited)."})
    grants = ma.fields.Integer(metadata={"description": "Quotas granted so far (1 at set-up)."})
    granted_at = ma.fields.DateTime()
    amount = Money(metadata={"description": "The money the hold reserves."})
    expires_at = ma.fields.DateTime(metadata={"description": "When the hold lapses if no CDR or re-authorization "
                                                             "comes (the sweeper releases it)."})


class CallsArgs(ma.Schema):
    customer_id = ma.fields.Integer(metadata={"description": "Only this customer's calls."})
    limit = ma.fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class CallList(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(CallSchema))
    count = ma.fields.Integer(metadata={"description": "Calls in progress in the scope (all, not only listed)."})
    reserved = Money(metadata={"description": "What their holds reserve together (currencies of one customer)."})


@blp.route("/calls")
@blp.arguments(CallsArgs, location="query")
@blp.response(200, CallList)
@allow()
def list_calls(args):
    """Calls in progress, newest first, each with its hold

    A customer token lists its own calls; `reserved` sums amounts of one currency only
    when filtered to one customer."""
    own = scope()
    wanted = args.get("customer_id")
    if own is not None and wanted not in (None, own):
        return {"items": [], "count": 0, "reserved": 0}
    who = own if own is not None else wanted
    conn = dbapi.connection()
    summary = customers.holds_summary(conn, customer_id=who)
    return {"items": customers.calls_in_progress(conn, customer_id=who, limit=args["limit"]),
            "count": summary["count"], "reserved": summary["held"]}
