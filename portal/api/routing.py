"""Routing rules: which providers may serve a prefix for a customer."""
from __future__ import annotations

import marshmallow as ma
from flask import abort
from marshmallow import validate
from sqlalchemy import select

from ..admin.manage import services as changes
from ..errors import Refused
from ..extensions import db
from ..models import Customer, Provider, RoutingRule
from . import blueprint
from .access import allow, owned_by
from .common import Digits, IdCursorArgs, Strict, by_id_page, envelope, location

blp = blueprint("routing", "Routing rules: the providers that may serve a prefix for a customer.")


class RoutingRuleSchema(ma.Schema):
    id = ma.fields.Integer()
    customer_id = ma.fields.Integer()
    prefix = ma.fields.String()
    provider_ids = ma.fields.List(ma.fields.Integer())


class RoutingRuleInSchema(Strict):
    customer_id = ma.fields.Integer(required=True)
    prefix = Digits(required=True, metadata={"description": "Matched against the canonical destination; the "
                                                            "longest rule wins."})
    provider_ids = ma.fields.List(ma.fields.Integer(), required=True, validate=validate.Length(1, 100))


class RuleListArgs(IdCursorArgs):
    customer_id = ma.fields.Integer()


RoutingRulePage = envelope(RoutingRuleSchema, "RoutingRulePage")


def shown(rule: RoutingRule) -> dict:
    return {"id": rule.id, "customer_id": rule.customer_id, "prefix": rule.prefix,
            "provider_ids": [p.id for p in rule.providers]}


def _save(rule: RoutingRule, customer_id: int, prefix: str, provider_ids: list[int]) -> RoutingRule:
    if db.session.get(Customer, customer_id) is None:
        raise Refused(f"no customer has the id {customer_id}", "customer_id")
    known = set(db.session.scalars(select(Provider.id).where(Provider.id.in_(provider_ids))))
    missing = [i for i in provider_ids if i not in known]
    if missing:
        raise Refused(f"no provider has the id {missing[0]}", "provider_ids")
    return changes.save_routing_rule(rule, customer_id, prefix, provider_ids)


@blp.route("/routing-rules")
@blp.arguments(RuleListArgs, location="query")
@blp.response(200, RoutingRulePage)
@allow(staff=True)
def list_rules(args):
    """Routing rules by id"""
    query = select(RoutingRule).order_by(RoutingRule.id).limit(args["limit"] + 1)
    if args.get("cursor") is not None:
        query = query.where(RoutingRule.id > args["cursor"])
    if args.get("customer_id") is not None:
        query = query.where(RoutingRule.customer_id == args["customer_id"])
    rows = [shown(r) for r in db.session.scalars(query)]
    return by_id_page(rows, args["limit"])


@blp.route("/routing-rules", methods=["POST"])
@blp.arguments(RoutingRuleInSchema)
@blp.response(201, RoutingRuleSchema)
@allow(write=True, staff=True)
def create_rule(data):
    """Create a routing rule"""
    rule = _save(RoutingRule(), data["customer_id"], data["prefix"], data["provider_ids"])
    return shown(rule), 201, location("routing.get_rule", rule_id=rule.id)


@blp.route("/routing-rules/<int:rule_id>")
@blp.response(200, RoutingRuleSchema)
@allow(staff=True, owner=owned_by(RoutingRule))
def get_rule(rule_id: int):
    """One routing rule"""
    return shown(db.session.get(RoutingRule, rule_id) or abort(404))


@blp.route("/routing-rules/<int:rule_id>", methods=["PATCH"])
@blp.arguments(RoutingRuleInSchema(partial=True))
@blp.response(200, RoutingRuleSchema)
@allow(write=True, staff=True, owner=owned_by(RoutingRule))
def update_rule(data, rule_id: int):
    """Change a routing rule (only the fields sent)"""
    rule = db.session.get(RoutingRule, rule_id) or abort(404)
    current = shown(rule)
    rule = _save(rule, data.get("customer_id", current["customer_id"]), data.get("prefix", current["prefix"]),
                 data.get("provider_ids", current["provider_ids"]))
    return shown(rule)


@blp.route("/routing-rules/<int:rule_id>", methods=["DELETE"])
@blp.response(204)
@allow(write=True, staff=True, owner=owned_by(RoutingRule))
def delete_rule(rule_id: int):
    """Delete a routing rule"""
    rule = db.session.get(RoutingRule, rule_id) or abort(404)
    changes.delete(RoutingRule, rule, "routing_rule", f"Routing rule {rule.prefix}")
