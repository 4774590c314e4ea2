"""Exchange rates (billing.exchange_rates, 0110): list, one, add a version, close, and
the bulk import -- views over portal/exchange/services.py, the back office's own
services, so a rate is checked, versioned, audited and imported exactly as on the
Exchange rates page and by its CSV import (docs/billing.md, "Currencies").

Rates are exact (numeric(24, 12)): a JSON string with 12 decimals, never a number and
never rounded. The operator's data: read and write tokens; a customer token gets 403
(404 with an id), as for providers."""
from __future__ import annotations

from decimal import Decimal

import marshmallow as ma
from flask import abort
from marshmallow import validate

from ..exchange import services
from ..extensions import db
from ..models import ExchangeRate
from . import blueprint
from .access import allow, caller
from .common import Currency, IdCursorArgs, Strict, by_id_page, envelope, location
from .problems import field_error, problem

blp = blueprint("exchange_rates", "Exchange rates between currencies: versions of a pair, closing, bulk import.")

TWELVE = Decimal(10) ** -services.RATE_PLACES
WHEN_TEXT = ("ISO 8601 date-time (with an offset, or in the operator's BILLING_TIMEZONE without one) "
             "or a date (midnight there).")


class Parsed(ma.fields.String):
    """A string the exchange-rate services parse (the back office's rules); their refusal
    becomes this field's error."""

    def __init__(self, parse, **kwargs):
        super().__init__(**kwargs)
        self.parse = parse

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return self.parse(text)
        except services.ExchangeRateError as exc:
            raise ma.ValidationError(exc.sentence) from None


class RateValue(Parsed):
    """1 from_currency = this many to_currency: a string with 12 decimals, exactly as stored."""

    def __init__(self, **kwargs):
        metadata = {"example": "0.087100000000", "format": "decimal",
                    "pattern": rf"^[0-9]{{1,12}}([.,][0-9]{{1,{services.RATE_PLACES}}})?$",
                    "description": "1 unit of from_currency = this many to_currency: a string (never a JSON "
                                   f"number) above 0, at most {services.RATE_PLACES} decimals (never rounded); "
                                   f"answered with {services.RATE_PLACES}."}
        super().__init__(services.parse_rate, metadata=metadata | kwargs.pop("metadata", {}), **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else format(Decimal(value).quantize(TWELVE), "f")


def _when(value):
    return services.parse_when(value, required=True)


def CurrencyCode(**kw):  # noqa: N802 (a field factory)
    return Parsed(services.parse_currency, metadata={"example": "SEK", "description": "Three letters (ISO 4217)."},
                  **kw)


def When(**kw):  # noqa: N802
    metadata = {"example": "2026-12-01T00:00:00+01:00", "description": WHEN_TEXT} | kw.pop("metadata", {})
    return Parsed(_when, metadata=metadata, **kw)


class ExchangeRateSchema(ma.Schema):
    id = ma.fields.Integer()
    from_currency = ma.fields.String(metadata={"description": "The provider's currency (what a cost is in)."})
    to_currency = ma.fields.String(metadata={"description": "The customer's currency (what it is converted into)."})
    rate = RateValue()
    valid_from = ma.fields.DateTime()
    valid_to = ma.fields.DateTime(allow_none=True, metadata={"description": "Exclusive; null: open."})
    created_by = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()


class AddedExchangeRateSchema(ExchangeRateSchema):
    closed_ids = ma.fields.List(ma.fields.Integer(), metadata={
        "description": "Earlier versions of the pair that now end where this one starts."})
    in_the_past = ma.fields.Boolean(metadata={
        "description": "It starts before now: calls already billed keep their converted cost until their period is "
                       "re-rated (back office, Re-rate)."})


class ExchangeRateInSchema(Strict):
    from_currency = CurrencyCode(required=True)
    to_currency = CurrencyCode(required=True)
    rate = RateValue(required=True)
    valid_from = When(allow_none=True, metadata={"description": "Default now. The pair's rate valid then ends "
                                                                "there (a new version). " + WHEN_TEXT})
    valid_to = When(allow_none=True, metadata={"description": "Default open (or the end of the rate it "
                                                              "replaces). " + WHEN_TEXT})


class CloseSchema(Strict):
    at = When(allow_none=True, metadata={"description": "Default now. A rate that has not started by then is "
                                                        "removed (answer 204). " + WHEN_TEXT})


class ExchangeRateListArgs(IdCursorArgs):
    currency = Currency(metadata={"description": "Rates from or to this currency."})
    from_currency = Currency()
    to_currency = Currency()
    as_of = When(metadata={"description": "Only the rates conversions use at this moment: per pair, of the rates "
                                          "valid then, the one that started last. " + WHEN_TEXT})
    state = ma.fields.String(validate=validate.OneOf(["current", "future", "ended"]), metadata={
        "description": "current: valid now; future: starting later; ended."})


class ImportRecordSchema(Strict):
    """One line of the CSV import, as text where the file has text."""
    from_currency = ma.fields.String(required=True, metadata={"example": "SEK"})
    to_currency = ma.fields.String(required=True, metadata={"example": "EUR"})
    rate = ma.fields.String(required=True, metadata={"example": "0.0871",
                                                     "description": "A string, never a JSON number."})
    valid_from = ma.fields.String(required=True, metadata={"example": "2026-12-01", "description": WHEN_TEXT})
    valid_to = ma.fields.String(allow_none=True, metadata={"description": "Empty or null: open. " + WHEN_TEXT})


class ImportSchema(Strict):
    rates = ma.fields.List(ma.fields.Nested(ImportRecordSchema), required=True,
                           validate=validate.Length(1, services.MAX_IMPORT_LINES))


class ImportResultSchema(ma.Schema):
    imported = ma.fields.Integer()
    closed = ma.fields.Integer(metadata={"description": "Earlier versions closed by the imported rates."})
    in_the_past = ma.fields.Boolean(metadata={"description": "Some start before now: re-rate their period."})
    items = ma.fields.List(ma.fields.Nested(ExchangeRateSchema), metadata={
        "description": "The rates added, by pair and start."})


ExchangeRatePage = envelope(ExchangeRateSchema, "ExchangeRatePage")


def _rate(exchange_rate_id: int) -> ExchangeRate:
    return db.session.get(ExchangeRate, exchange_rate_id) or abort(404)


def _refused(exc: services.ExchangeRateError, errors: list[dict] | None = None, detail: str | None = None):
    """The services' refusal as a problem: 409 when another rate is in the way (a pair
    and start taken), else 422; nothing of the request is kept."""
    db.session.rollback()
    if errors is None and exc.field:
        errors = [field_error(exc.field, exc.sentence)]
    return problem(409 if exc.conflict else 422, detail or exc.sentence, code="conflict" if exc.conflict else "refused",
                   errors=errors)


@blp.route("/exchange-rates")
@blp.arguments(ExchangeRateListArgs, location="query")
@blp.response(200, ExchangeRatePage)
@allow(staff=True)
def list_exchange_rates(args):
    """Exchange rates by id"""
    query = services.listing(args.get("currency"), args.get("state"), from_currency=args.get("from_currency"),
                             to_currency=args.get("to_currency"), in_force_at=args.get("as_of"))
    query = query.order_by(None).order_by(ExchangeRate.id).limit(args["limit"] + 1)
    if args.get("cursor") is not None:
        query = query.where(ExchangeRate.id > args["cursor"])
    return by_id_page(db.session.scalars(query).all(), args["limit"], key=lambda r: r.id)


@blp.route("/exchange-rates", methods=["POST"])
@blp.arguments(ExchangeRateInSchema)
@blp.response(201, AddedExchangeRateSchema)
@blp.alt_response(409, response="CONFLICT")
@allow(write=True, staff=True)
def create_exchange_rate(data):
    """Add a rate of a pair (a new version)

    The pair's rate valid at `valid_from` ends there (history is kept); rates scheduled
    later stay. A start in the past is allowed: calls already billed change only when
    their period is re-rated. A second rate of the pair with the same start is refused
    (409), so a retried request with an explicit `valid_from` adds the rate once."""
    try:
        added = services.add(data["from_currency"], data["to_currency"], data["rate"], data.get("valid_from"),
                             data.get("valid_to"), actor=caller().actor)
    except services.ExchangeRateError as exc:
        return _refused(exc)
    db.session.commit()
    body = {name: getattr(added.rate, name) for name in ExchangeRateSchema().fields} | {
        "closed_ids": [old.id for old in added.closed], "in_the_past": added.in_the_past}
    return body, 201, location("exchange_rates.get_exchange_rate", exchange_rate_id=added.rate.id)


@blp.route("/exchange-rates/<int:exchange_rate_id>")
@blp.response(200, ExchangeRateSchema)
@allow(staff=True)
def get_exchange_rate(exchange_rate_id: int):
    """One exchange rate"""
    return _rate(exchange_rate_id)


@blp.route("/exchange-rates/<int:exchange_rate_id>/close", methods=["POST"])
@blp.arguments(CloseSchema)
@blp.response(200, ExchangeRateSchema)
@blp.alt_response(204, description="The rate had not started by `at`: it was removed (it never applied).")
@blp.alt_response(409, response="CONFLICT")
@allow(write=True, staff=True)
def close_exchange_rate(data, exchange_rate_id: int):
    """End a rate at `at` (default now)

    After its end, routes in `from_currency` are not offered to customers paying in
    `to_currency` unless another rate of the pair is valid."""
    _rate(exchange_rate_id)
    try:
        closed = services.close(exchange_rate_id, data.get("at"), actor=caller().actor)
    except services.ExchangeRateError as exc:
        return _refused(exc)
    db.session.commit()
    if closed is None:
        return "", 204
    return closed


@blp.route("/exchange-rates/import", methods=["POST"])
@blp.arguments(ImportSchema)
@blp.response(200, ImportResultSchema)
@allow(write=True, staff=True)
def import_exchange_rates(data):
    """Import rates, all or nothing (the CSV import over JSON)

    The back office's CSV import on JSON records: the same checks of every record
    (currencies, rate, dates, a pair and start twice), then each is added as a version,
    pair by pair in order of start. Any error imports nothing; each is named in
    `errors[]` by its record (`rates[3].rate`)."""
    # records are numbered from 1 as a file's lines are; rates[line - 1] in the answer
    records = [(number, {name: record.get(name) or "" for name in services.CSV_COLUMNS})
               for number, record in enumerate(data["rates"], start=1)]
    try:
        result = services.import_records(records, actor=caller().actor, label=lambda line: f"rates[{line - 1}]")
    except services.ExchangeRateError as exc:
        errors = [field_error(f"rates[{e['line'] - 1}]" + (f".{e['column']}" if e.get("column") else "")
                              if e.get("line") else "rates", e["message"]) for e in exc.errors]
        errors = errors or [field_error("rates", exc.sentence)]
        detail = "Nothing was imported: " + "; ".join(f"{e['field']}: {e['detail']}" for e in errors[:10]) + \
            (f"; and {len(errors) - 10} more" if len(errors) > 10 else "") + "."
        return _refused(exc, errors, detail)
    db.session.commit()
    return {"imported": len(result.added), "closed": result.closed, "in_the_past": result.in_the_past,
            "items": [a.rate for a in result.added]}

