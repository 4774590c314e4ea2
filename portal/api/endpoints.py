"""Endpoints: IP trunks and SIP accounts of the customers (never a SIP password, except
the generated one in the answer that creates the account)."""
from __future__ import annotations

import ipaddress
import re

import marshmallow as ma
from flask import abort
from marshmallow import validate

from .. import dbapi
from ..admin.manage import services as changes
from ..endpoints import services as endpoints
from ..errors import Refused
from ..extensions import db
from ..models import Customer, Endpoint, Permission
from . import blueprint
from .access import allow, owned_by, scope
from .common import Codecs, Name, Strict, location
from .fields import Money

blp = blueprint("endpoints", "Endpoints: the IP trunks and SIP accounts calls are recognised by.")

FIELDS = ("customer_id", "name", "enabled", "auth", "ip", "username", "permission_id", "max_calls",
          "spend_limit_month", "strip_digits", "add_prefix", "context", "codecs", "bypass_media", "ignore_early_media")


class EndpointSchema(ma.Schema):
    id = ma.fields.Integer()
    customer_id = ma.fields.Integer()
    name = ma.fields.String()
    enabled = ma.fields.Boolean()
    auth = ma.fields.String(metadata={"enum": ["ip", "sip"]})
    ip = ma.fields.String(allow_none=True, metadata={"description": "IP authentication: the source network."})
    username = ma.fields.String(allow_none=True, metadata={"description": "SIP authentication: the user name."})
    permission_id = ma.fields.Integer()
    permission = ma.fields.String()
    classes = ma.fields.String(allow_none=True, metadata={"description": "Destination classes it may call."})
    max_calls = ma.fields.Integer(allow_none=True)
    spend_limit_month = Money(allow_none=True)
    month_spend = Money(metadata={"description": "Spent this month."})
    calls_in_progress = ma.fields.Integer()
    strip_digits = ma.fields.Integer()
    add_prefix = ma.fields.String()
    context = ma.fields.String()
    codecs = ma.fields.String(allow_none=True)
    bypass_media = ma.fields.Boolean()
    ignore_early_media = ma.fields.Boolean()


class CreatedEndpointSchema(EndpointSchema):
    sip_password = ma.fields.String(allow_none=True, metadata={
        "description": "A SIP account created without a password gets a generated one: shown here once."})


class EndpointInSchema(Strict):
    customer_id = ma.fields.Integer(required=True)
    name = Name(required=True)
    enabled = ma.fields.Boolean()
    auth = ma.fields.String(required=True, validate=validate.OneOf(["ip", "sip"]))
    ip = ma.fields.String(allow_none=True, metadata={"example": "198.51.100.0/24"})
    username = ma.fields.String(allow_none=True)
    password = ma.fields.String(load_only=True, allow_none=True,
                                metadata={"description": "SIP accounts: empty keeps the current one (a new account "
                                                         "gets a generated password)."})
    permission_id = ma.fields.Integer(required=True)
    max_calls = ma.fields.Integer(allow_none=True, validate=validate.Range(0, 100000))
    spend_limit_month = Money(allow_none=True, minimum=0)
    strip_digits = ma.fields.Integer(validate=validate.Range(0, 20))
    add_prefix = ma.fields.String(validate=validate.Regexp(r"^[0-9]{0,20}$", error="Digits only, at most 20."))
    context = Name()
    codecs = Codecs()
    bypass_media = ma.fields.Boolean()
    ignore_early_media = ma.fields.Boolean()


class EndpointListArgs(ma.Schema):
    customer_id = ma.fields.Integer(metadata={"description": "Only this customer's endpoints."})


class EndpointList(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(EndpointSchema))


def _checked(data: dict, endpoint: Endpoint | None) -> dict:
    """The endpoint's values after the change, checked like the back office's form."""
    current = {name: getattr(endpoint, name) for name in FIELDS} if endpoint is not None else {
        "enabled": True, "ip": None, "username": None, "max_calls": None, "spend_limit_month": None,
        "strip_digits": 0, "add_prefix": "", "context": "default", "codecs": None, "bypass_media": False,
        "ignore_early_media": False}
    values = current | {k: v for k, v in data.items() if k != "password"}
    if db.session.get(Customer, values["customer_id"]) is None:
        raise Refused(f"no customer has the id {values['customer_id']}", "customer_id")
    if db.session.get(Permission, values["permission_id"]) is None:
        raise Refused(f"no permission has the id {values['permission_id']}", "permission_id")
    if values["auth"] == "ip":
        if not values["ip"]:
            raise Refused("IP authentication needs a source IP or network.", "ip")
        try:
            values["ip"] = str(ipaddress.ip_network(str(values["ip"]).strip(), strict=True))
        except ValueError:
            try:
                hint = ipaddress.ip_network(str(values["ip"]).strip(), strict=False)
            except ValueError:
                raise Refused("Not an IP address or network (e.g. 198.51.100.0/24).", "ip") from None
            raise Refused(f"Host bits are set: did you mean {hint}?", "ip") from None
    else:
        username = (values.get("username") or "").strip()
        if not username:
            raise Refused("SIP authentication needs a user name.", "username")
        if not re.fullmatch(r"[A-Za-z0-9_.+-]{1,64}", username):
            raise Refused("Letters, digits and _ . + - only; at most 64.", "username")
        values["username"] = username
    password = data.get("password")
    if password:
        if values["auth"] != "sip":
            raise Refused("Only SIP accounts have a password.", "password")
        problem = endpoints.sip_password_problem(password, values["username"])
        if problem:
            raise Refused(problem, "password")
    return values


@blp.route("/endpoints")
@blp.arguments(EndpointListArgs, location="query")
@blp.response(200, EndpointList)
@allow()
def list_endpoints(args):
    """Endpoints, SIP accounts first, with this month's spend and calls in progress

    Not paged (an operator has some thousands at most). A customer token lists its own."""
    wanted = args.get("customer_id")
    own = scope()
    if own is not None and wanted not in (None, own):
        return {"items": []}
    return {"items": endpoints.listing(dbapi.connection(), customer_id=own if own is not None else wanted)}


@blp.route("/endpoints/<int:endpoint_id>")
@blp.response(200, EndpointSchema)
@allow()
def get_endpoint(endpoint_id: int):
    """One endpoint"""
    return endpoints.one(dbapi.connection(), endpoint_id, customer_id=scope())


@blp.route("/endpoints", methods=["POST"])
@blp.arguments(EndpointInSchema)
@blp.response(201, CreatedEndpointSchema)
@allow(write=True)
def create_endpoint(data):
    """Create an endpoint

    An IP range belongs to one customer (a customer's own ranges may nest); a SIP
    account without a password gets a generated one, returned once as `sip_password`."""
    endpoint = Endpoint()
    values = _checked(data, None)
    generated = changes.save_endpoint(endpoint, values, data.get("password"))
    answer = endpoints.one(dbapi.connection(), endpoint.id) | {"sip_password": generated}
    return answer, 201, location("endpoints.get_endpoint", endpoint_id=endpoint.id)


@blp.route("/endpoints/<int:endpoint_id>", methods=["PATCH"])
@blp.arguments(EndpointInSchema(partial=True))
@blp.response(200, EndpointSchema)
@allow(write=True, owner=owned_by(Endpoint))
def update_endpoint(data, endpoint_id: int):
    """Change an endpoint (only the fields sent)"""
    endpoint = db.session.get(Endpoint, endpoint_id) or abort(404)
    values = _checked(data, endpoint)
    changes.save_endpoint(endpoint, values, data.get("password"))
    return endpoints.one(dbapi.connection(), endpoint_id)


@blp.route("/endpoints/<int:endpoint_id>", methods=["DELETE"])
@blp.response(204)
@allow(write=True, owner=owned_by(Endpoint))
def delete_endpoint(endpoint_id: int):
    """Delete an endpoint"""
    endpoint = db.session.get(Endpoint, endpoint_id) or abort(404)
    changes.delete(Endpoint, endpoint, "endpoint", f"Endpoint {endpoint.name}")
