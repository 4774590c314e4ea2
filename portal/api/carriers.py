"""Providers (carriers), their gateways and their cost rates."""
from __future__ import annotations

import marshmallow as ma
from flask import abort
from marshmallow import validate
from sqlalchemy import select

from ..admin.manage import services as changes
from ..errors import Refused
from ..extensions import db
from ..models import Gateway, Provider, ProviderRate
from . import blueprint
from ._rate_rows import (BulkResultSchema, BulkSchema, RateInSchema, RateListArgs, RatePage, RateSchema, bulk,
                         delete_rate, rate_page, save_rate, shown)
from .access import allow
from .common import Codecs, Currency, IdCursorArgs, Name, Strict, by_id_page, envelope, location

blp = blueprint("carriers", "Providers (carriers), their gateways and their cost rates.")


class ProviderSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    enabled = ma.fields.Boolean()
    priority = ma.fields.Integer(metadata={"description": "For the provider-priority strategy: lower goes first."})
    currency = ma.fields.String()


class ProviderInSchema(Strict):
    name = Name(required=True)
    enabled = ma.fields.Boolean(load_default=True)
    priority = ma.fields.Integer(load_default=1, validate=validate.Range(0, 1000))
    currency = Currency(load_default="EUR")


class GatewaySchema(ma.Schema):
    id = ma.fields.Integer()
    provider_id = ma.fields.Integer()
    name = ma.fields.String(metadata={"description": "The sofia gateway name."})
    enabled = ma.fields.Boolean()
    host = ma.fields.String()
    port = ma.fields.Integer()
    transport = ma.fields.String(metadata={"enum": ["udp", "tcp", "tls"]})
    priority = ma.fields.Integer()
    max_channels = ma.fields.Integer(allow_none=True)
    strip_digits = ma.fields.Integer()
    add_prefix = ma.fields.String()
    codecs = ma.fields.String(allow_none=True)
    username = ma.fields.String(allow_none=True)
    register = ma.fields.Boolean()
    bypass_media = ma.fields.Boolean()
    ignore_early_media = ma.fields.Boolean()


class GatewayInSchema(Strict):
    name = Name(required=True)
    enabled = ma.fields.Boolean()
    host = ma.fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9.:\[\]-]{1,253}$",
                                                                    error="A host name or IP address."))
    port = ma.fields.Integer(validate=validate.Range(1, 65535))
    transport = ma.fields.String(validate=validate.OneOf(["udp", "tcp", "tls"]))
    priority = ma.fields.Integer(validate=validate.Range(0, 1000))
    max_channels = ma.fields.Integer(allow_none=True, validate=validate.Range(1, 1000000))
    strip_digits = ma.fields.Integer(validate=validate.Range(0, 20))
    add_prefix = ma.fields.String(validate=validate.Regexp(r"^[0-9]{0,20}$", error="Digits only, at most 20."))
    codecs = Codecs()
    username = ma.fields.String(allow_none=True, validate=validate.Regexp(
        r"^[A-Za-z0-9_.@+-]{1,64}$", error="Letters, digits and _ . @ + - only."))
    password = ma.fields.String(load_only=True, allow_none=True, validate=validate.Length(max=128),
                                metadata={"description": "Registration password (write-only)."})
    register = ma.fields.Boolean()
    bypass_media = ma.fields.Boolean()
    ignore_early_media = ma.fields.Boolean()


class CostRateSchema(RateSchema):
    provider_id = ma.fields.Integer()


ProviderPage = envelope(ProviderSchema, "ProviderPage")


class GatewayList(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(GatewaySchema))


def _provider(provider_id: int) -> Provider:
    return db.session.get(Provider, provider_id) or abort(404)


def _gateway(gateway_id: int) -> Gateway:
    return db.session.get(Gateway, gateway_id) or abort(404)


# ----------------------------------------------------------------------------- providers

@blp.route("/providers")
@blp.arguments(IdCursorArgs, location="query")
@blp.response(200, ProviderPage)
@allow(staff=True)
def list_providers(args):
    """Providers by id"""
    query = select(Provider).order_by(Provider.id).limit(args["limit"] + 1)
    if args.get("cursor") is not None:
        query = query.where(Provider.id > args["cursor"])
    return by_id_page(db.session.scalars(query).all(), args["limit"], key=lambda p: p.id)


@blp.route("/providers", methods=["POST"])
@blp.arguments(ProviderInSchema)
@blp.response(201, ProviderSchema)
@allow(write=True, staff=True)
def create_provider(data):
    """Create a provider"""
    provider = changes.save(Provider(), data, "provider")
    return provider, 201, location("carriers.get_provider", provider_id=provider.id)


@blp.route("/providers/<int:provider_id>")
@blp.response(200, ProviderSchema)
@allow(staff=True)
def get_provider(provider_id: int):
    """One provider"""
    return _provider(provider_id)


@blp.route("/providers/<int:provider_id>", methods=["PATCH"])
@blp.arguments(ProviderInSchema(partial=True))
@blp.response(200, ProviderSchema)
@allow(write=True, staff=True)
def update_provider(data, provider_id: int):
    """Change a provider (only the fields sent)"""
    return changes.save(_provider(provider_id), data, "provider")


@blp.route("/providers/<int:provider_id>", methods=["DELETE"])
@blp.response(204)
@allow(write=True, staff=True)
def delete_provider(provider_id: int):
    """Delete a provider with its gateways and rates"""
    provider = _provider(provider_id)
    changes.delete(Provider, provider, "provider", f"Provider {provider.name}")


# ----------------------------------------------------------------------------- gateways

@blp.route("/providers/<int:provider_id>/gateways")
@blp.response(200, GatewayList)
@allow(staff=True)
def list_gateways(provider_id: int):
    """The provider's gateways by priority (never a registration password)"""
    return {"items": _provider(provider_id).gateways}


@blp.route("/providers/<int:provider_id>/gateways", methods=["POST"])
@blp.arguments(GatewayInSchema)
@blp.response(201, GatewaySchema)
@allow(write=True, staff=True)
def create_gateway(data, provider_id: int):
    """Add a gateway to the provider"""
    _provider(provider_id)
    gateway = changes.save(Gateway(), _gateway_values(data, None) | {"provider_id": provider_id}, "gateway")
    return gateway, 201, location("carriers.get_gateway", gateway_id=gateway.id)


def _gateway_values(data: dict, gateway: Gateway | None) -> dict:
    values = dict(data)
    register = values.get("register", gateway.register if gateway else False)
    username = values.get("username", gateway.username if gateway else None)
    password = values.get("password", gateway.password if gateway else None)
    if register and not (username and password):
        raise Refused("Registration needs a user name and a password.", "register")
    if gateway is None:
        values.setdefault("add_prefix", "")
    return values


@blp.route("/gateways/<int:gateway_id>")
@blp.response(200, GatewaySchema)
@allow(staff=True)
def get_gateway(gateway_id: int):
    """One gateway"""
    return _gateway(gateway_id)


@blp.route("/gateways/<int:gateway_id>", methods=["PATCH"])
@blp.arguments(GatewayInSchema(partial=True))
@blp.response(200, GatewaySchema)
@allow(write=True, staff=True)
def update_gateway(data, gateway_id: int):
    """Change a gateway (only the fields sent)"""
    gateway = _gateway(gateway_id)
    return changes.save(gateway, _gateway_values(data, gateway), "gateway")


@blp.route("/gateways/<int:gateway_id>", methods=["DELETE"])
@blp.response(204)
@allow(write=True, staff=True)
def delete_gateway(gateway_id: int):
    """Delete a gateway"""
    gateway = _gateway(gateway_id)
    changes.delete(Gateway, gateway, "gateway", f"Gateway {gateway.name}")


# ----------------------------------------------------------------------------- cost rates

@blp.route("/providers/<int:provider_id>/rates")
@blp.arguments(RateListArgs, location="query")
@blp.response(200, RatePage)
@allow(staff=True)
def list_provider_rates(args, provider_id: int):
    """The provider's cost rate rows by id"""
    _provider(provider_id)
    return rate_page("provider", provider_id, args)


@blp.route("/providers/<int:provider_id>/rates", methods=["POST"])
@blp.arguments(RateInSchema)
@blp.response(201, CostRateSchema)
@allow(write=True, staff=True)
def create_provider_rate(data, provider_id: int):
    """Add one cost rate row"""
    _provider(provider_id)
    rate = save_rate(ProviderRate(), data, "provider_id", provider_id, "provider_rate")
    return shown(rate) | {"provider_id": provider_id}, 201, location("carriers.get_provider_rate",
                                                                     rate_id=rate.id)


@blp.route("/providers/<int:provider_id>/rates/bulk", methods=["POST"])
@blp.arguments(BulkSchema)
@blp.response(200, BulkResultSchema)
@allow(write=True, staff=True)
def bulk_provider_rates(data, provider_id: int):
    """Bulk upsert of cost rates, all or nothing (the rate deck import over JSON)"""
    _provider(provider_id)
    return bulk("provider", provider_id, data)


@blp.route("/provider-rates/<int:rate_id>")
@blp.response(200, CostRateSchema)
@allow(staff=True)
def get_provider_rate(rate_id: int):
    """One cost rate row"""
    rate = db.session.get(ProviderRate, rate_id) or abort(404)
    return shown(rate) | {"provider_id": rate.provider_id}


@blp.route("/provider-rates/<int:rate_id>", methods=["PATCH"])
@blp.arguments(RateInSchema(partial=True))
@blp.response(200, CostRateSchema)
@allow(write=True, staff=True)
def update_provider_rate(data, rate_id: int):
    """Change one cost rate row"""
    rate = db.session.get(ProviderRate, rate_id) or abort(404)
    save_rate(rate, data, "provider_id", rate.provider_id, "provider_rate")
    return shown(rate) | {"provider_id": rate.provider_id}


@blp.route("/provider-rates/<int:rate_id>", methods=["DELETE"])
@blp.response(204)
@allow(write=True, staff=True)
def delete_provider_rate(rate_id: int):
    """Delete one cost rate row"""
    delete_rate(ProviderRate, rate_id, "provider_id", "provider_rate")
