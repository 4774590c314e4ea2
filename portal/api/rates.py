"""Ratecards (sell prices) and their rates, with a bulk upsert that has the rate deck
import's checks and all-or-nothing."""
from __future__ import annotations

import marshmallow as ma
from flask import abort
from sqlalchemy import select

from ..admin.manage import services as changes
from ..extensions import db
from ..models import Ratecard, SellRate
from . import blueprint
from ._rate_rows import (BulkResultSchema, BulkSchema, RateInSchema, RateListArgs, RatePage, RateSchema, bulk,
                         delete_rate, rate_page, save_rate, shown)
from .access import allow
from .common import Currency, IdCursorArgs, Name, Strict, by_id_page, envelope, location

blp = blueprint("rates", "Ratecards: what customers are charged per prefix.")


class RatecardSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    currency = ma.fields.String()


class RatecardInSchema(Strict):
    name = Name(required=True)
    currency = Currency(load_default="EUR")


RatecardPage = envelope(RatecardSchema, "RatecardPage")


class SellRateSchema(RateSchema):
    ratecard_id = ma.fields.Integer()


def _card(ratecard_id: int) -> Ratecard:
    return db.session.get(Ratecard, ratecard_id) or abort(404)


@blp.route("/ratecards")
@blp.arguments(IdCursorArgs, location="query")
@blp.response(200, RatecardPage)
@allow(staff=True)
def list_ratecards(args):
    """Ratecards by id"""
    query = select(Ratecard).order_by(Ratecard.id).limit(args["limit"] + 1)
    if args.get("cursor") is not None:
        query = query.where(Ratecard.id > args["cursor"])
    return by_id_page(db.session.scalars(query).all(), args["limit"], key=lambda r: r.id)


@blp.route("/ratecards", methods=["POST"])
@blp.arguments(RatecardInSchema)
@blp.response(201, RatecardSchema)
@allow(write=True, staff=True)
def create_ratecard(data):
    """Create a ratecard"""
    card = changes.save(Ratecard(), data, "ratecard")
    return card, 201, location("rates.get_ratecard", ratecard_id=card.id)


@blp.route("/ratecards/<int:ratecard_id>")
@blp.response(200, RatecardSchema)
@allow(staff=True)
def get_ratecard(ratecard_id: int):
    """One ratecard"""
    return _card(ratecard_id)


@blp.route("/ratecards/<int:ratecard_id>", methods=["PATCH"])
@blp.arguments(RatecardInSchema(partial=True))
@blp.response(200, RatecardSchema)
@allow(write=True, staff=True)
def update_ratecard(data, ratecard_id: int):
    """Rename a ratecard or change its currency"""
    return changes.save(_card(ratecard_id), data, "ratecard")


@blp.route("/ratecards/<int:ratecard_id>", methods=["DELETE"])
@blp.response(204)
@allow(write=True, staff=True)
def delete_ratecard(ratecard_id: int):
    """Delete a ratecard no customer uses (otherwise 409) with its rates"""
    card = _card(ratecard_id)
    changes.delete(Ratecard, card, "ratecard", f"Ratecard {card.name}")


@blp.route("/ratecards/<int:ratecard_id>/rates")
@blp.arguments(RateListArgs, location="query")
@blp.response(200, RatePage)
@allow(staff=True)
def list_rates(args, ratecard_id: int):
    """The ratecard's rate rows by id (past, current, future and blocked ones)"""
    _card(ratecard_id)
    return rate_page("ratecard", ratecard_id, args)


@blp.route("/ratecards/<int:ratecard_id>/rates", methods=["POST"])
@blp.arguments(RateInSchema)
@blp.response(201, SellRateSchema)
@allow(write=True, staff=True)
def create_rate(data, ratecard_id: int):
    """Add one rate row"""
    _card(ratecard_id)
    rate = save_rate(SellRate(), data, "ratecard_id", ratecard_id, "rate")
    return shown(rate) | {"ratecard_id": ratecard_id}, 201, location("rates.get_rate", rate_id=rate.id)


@blp.route("/ratecards/<int:ratecard_id>/rates/bulk", methods=["POST"])
@blp.arguments(BulkSchema)
@blp.response(200, BulkResultSchema)
@allow(write=True, staff=True)
def bulk_rates(data, ratecard_id: int):
    """Bulk upsert of rates, all or nothing

    The rate deck import over JSON: the same checks (each error names its record, e.g.
    `rates[41].rate`), the same diff and the same all-or-nothing apply. `update` changes
    only the prefixes sent; `replace` closes the others at `effective_from` and needs
    `confirm_removed` (what a dry run reports as `counts.removed`)."""
    _card(ratecard_id)
    return bulk("ratecard", ratecard_id, data)


@blp.route("/rates/<int:rate_id>")
@blp.response(200, SellRateSchema)
@allow(staff=True)
def get_rate(rate_id: int):
    """One sell rate row"""
    rate = db.session.get(SellRate, rate_id) or abort(404)
    return shown(rate) | {"ratecard_id": rate.ratecard_id}


@blp.route("/rates/<int:rate_id>", methods=["PATCH"])
@blp.arguments(RateInSchema(partial=True))
@blp.response(200, SellRateSchema)
@allow(write=True, staff=True)
def update_rate(data, rate_id: int):
    """Change one sell rate row"""
    rate = db.session.get(SellRate, rate_id) or abort(404)
    save_rate(rate, data, "ratecard_id", rate.ratecard_id, "rate")
    return shown(rate) | {"ratecard_id": rate.ratecard_id}


@blp.route("/rates/<int:rate_id>", methods=["DELETE"])
@blp.response(204)
@allow(write=True, staff=True)
def delete_sell_rate(rate_id: int):
    """Delete one sell rate row"""
    delete_rate(SellRate, rate_id, "ratecard_id", "rate")
