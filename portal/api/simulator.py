"""The routing simulator: what happens if this source dials this number (the rows of
billing.route_preview, without placing a hold)."""
from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from .. import dbapi
from ..errors import NotFound, Refused
from ..simulator import services as simulator
from . import blueprint
from .access import allow, scope
from .common import Strict
from .fields import Money

blp = blueprint("simulator", "The routing simulator: route_call's answer without a hold.")


class SimulateInSchema(Strict):
    source_ip = ma.fields.String(allow_none=True, metadata={"example": "198.51.100.7"})
    sip_user = ma.fields.String(allow_none=True, validate=validate.Length(max=64))
    caller_id = ma.fields.String(allow_none=True, validate=validate.Length(max=64))
    destination = ma.fields.String(required=True, validate=validate.Length(1, 64), metadata={"example": "33123456789"})


class RouteSchema(ma.Schema):
    seq = ma.fields.Integer()
    gateway = ma.fields.String()
    dial_string = ma.fields.String()
    provider_id = ma.fields.Integer()
    provider = ma.fields.String(allow_none=True)
    sell_rate = Money()
    cost_rate = Money()
    margin = Money()


class SimulationSchema(ma.Schema):
    ok = ma.fields.Boolean()
    reason = ma.fields.String(allow_none=True, metadata={"description": "route_call's refusal code (CONTRACT 1)."})
    hangup_cause = ma.fields.String(allow_none=True)
    explanation = ma.fields.String(allow_none=True)
    customer_id = ma.fields.Integer(allow_none=True)
    customer = ma.fields.String(allow_none=True)
    currency = ma.fields.String(allow_none=True)
    endpoint_id = ma.fields.Integer(allow_none=True)
    endpoint = ma.fields.String(allow_none=True)
    destination = ma.fields.String(allow_none=True)
    destination_name = ma.fields.String(allow_none=True)
    sell_prefix = ma.fields.String(allow_none=True)
    sell_rate = Money(allow_none=True)
    max_duration = ma.fields.Integer(allow_none=True)
    routes = ma.fields.List(ma.fields.Nested(RouteSchema), metadata={"description": "Staff tokens only."})


@blp.route("/simulate", methods=["POST"])
@blp.arguments(SimulateInSchema)
@blp.response(200, SimulationSchema)
@allow()
def simulate(data):
    """Route a call without placing a hold

    A customer token may simulate its own endpoints' calls only (another source answers
    404) and sees no carriers, costs or routes."""
    try:
        sim = simulator.simulate(dbapi.connection(), data.get("source_ip"), data.get("sip_user"),
                                 data.get("caller_id"), data["destination"])
    except simulator.SimulatorUnavailable as exc:
        raise Refused(str(exc)) from None
    except simulator.SimulatorError as exc:
        message = str(exc)
        field = "source_ip" if "IP" in message else "sip_user" if "SIP user" in message else "destination"
        raise Refused(message, field) from None
    own = scope()
    if own is None:
        return sim
    if sim.customer_id != own:
        raise NotFound("no endpoint of yours matches this source IP or SIP user")
    shown = {k: v for k, v in vars(sim).items() if k != "routes"}
    return shown
