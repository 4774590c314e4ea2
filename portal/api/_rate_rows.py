"""The rate rows of both sides (ratecards sell, providers buy) have the same columns:
one set of schemas and one implementation of their routes (list, create, change,
delete, bulk upsert) serves both, as the back office's pages do (admin/manage/rates.py)."""
from __future__ import annotations

from datetime import datetime, timezone

import marshmallow as ma
from flask import abort
from marshmallow import validate

from .. import audit, dbapi
from ..admin.manage import services as changes
from ..errors import Refused
from ..extensions import db
from ..rateimport import services as rateimport
from ..rates import services as rates
from .common import Digits, IdCursorArgs, Strict, by_id_page, envelope
from .fields import Increment, Money
from .problems import field_error, problem

MAX_BULK = 50_000


class RateSchema(ma.Schema):
    id = ma.fields.Integer()
    prefix = ma.fields.String()
    rate = Money(metadata={"description": "Per minute."})
    connect_fee = Money()
    min_duration = ma.fields.Integer()
    increment = Increment()
    valid_from = ma.fields.DateTime(allow_none=True)
    valid_to = ma.fields.DateTime(allow_none=True)
    blocked = ma.fields.Boolean()


class RateInSchema(Strict):
    prefix = Digits(required=True)
    rate = Money(required=True, minimum=0, maximum=100000000)
    connect_fee = Money(minimum=0, maximum=100000000)
    min_duration = ma.fields.Integer(validate=validate.Range(0, 86400))
    increment = Increment()
    valid_from = ma.fields.AwareDateTime(allow_none=True, metadata={"description": "With an offset; null: open."})
    valid_to = ma.fields.AwareDateTime(allow_none=True)
    blocked = ma.fields.Boolean()

    @ma.validates_schema(skip_on_field_errors=False)
    def _dates(self, data, **kwargs):
        if data.get("valid_to") and data.get("valid_from") and data["valid_to"] <= data["valid_from"]:
            raise ma.ValidationError("Must be after valid_from.", "valid_to")


class RateListArgs(IdCursorArgs):
    prefix = ma.fields.String(validate=validate.Regexp(r"^[0-9]{1,20}$"),
                              metadata={"description": "Prefixes starting with these digits."})
    valid_now = ma.fields.Boolean(load_default=False, metadata={"description": "Only the rows valid now."})


class BulkRateSchema(Strict):
    """One rate of a bulk upsert: the columns of a rate deck, as text where a deck has text."""
    prefix = ma.fields.String(required=True, metadata={"example": "33"})
    rate = ma.fields.String(required=True, metadata={"example": "0.012500",
                                                     "description": "Money as a string (never a JSON number)."})
    connect_fee = ma.fields.String(allow_none=True)
    min_duration = ma.fields.Integer(allow_none=True)
    increment = ma.fields.String(allow_none=True, metadata={"example": "60/60"})
    valid_from = ma.fields.String(allow_none=True, metadata={"example": "2026-01-01 00:00+00"})
    valid_to = ma.fields.String(allow_none=True)
    blocked = ma.fields.Boolean(allow_none=True)
    destination_name = ma.fields.String(allow_none=True)


class BulkSchema(Strict):
    mode = ma.fields.String(load_default="update", validate=validate.OneOf(rateimport.MODES), metadata={
        "description": "update: only these prefixes change; replace: these are the whole deck, other prefixes "
                       "are closed at effective_from."})
    effective_from = ma.fields.AwareDateTime(allow_none=True, metadata={
        "description": "When the changes take effect (default: now)."})
    confirm_removed = ma.fields.Integer(allow_none=True, metadata={
        "description": "replace mode: the number of prefixes it closes (as a dry run reports it in counts.removed)."})
    dry_run = ma.fields.Boolean(load_default=False, metadata={"description": "Report what would change; change nothing."})
    default_increment = ma.fields.String(load_default="60/60")
    rates = ma.fields.List(ma.fields.Nested(BulkRateSchema), required=True,
                           validate=validate.Length(1, MAX_BULK))


class BulkResultSchema(ma.Schema):
    dry_run = ma.fields.Boolean()
    rows = ma.fields.Integer()
    counts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(),
                            metadata={"description": "Prefixes per change: new, changed, removed, unchanged, …"})


def rate_page(target: str, owner_id: int, args: dict) -> dict:
    rows = rates.rows(dbapi.connection(), target, owner_id, prefix=args.get("prefix"), valid_now=args["valid_now"],
                      after=args.get("cursor"), limit=args["limit"] + 1)
    for row in rows:
        row["increment"] = (row["increment_first"], row["increment_next"])
    return by_id_page(rows, args["limit"])


def shown(rate) -> dict:
    return {"id": rate.id, "prefix": rate.prefix, "rate": rate.rate, "connect_fee": rate.connect_fee,
            "min_duration": rate.min_duration, "increment": (rate.increment_first, rate.increment_next),
            "valid_from": rate.valid_from, "valid_to": rate.valid_to, "blocked": rate.blocked}


def save_rate(rate, data: dict, owner_field: str, owner_id: int, entity: str):
    values = {k: v for k, v in data.items() if k != "increment"}
    if "increment" in data:
        values["increment_first"], values["increment_next"] = data["increment"]
    if rate.id is None:
        values.setdefault("connect_fee", 0)
        values.setdefault("min_duration", 0)
        values.setdefault("increment_first", 60)
        values.setdefault("increment_next", 60)
        values.setdefault("blocked", False)
    start = values.get("valid_from", rate.valid_from)
    end = values.get("valid_to", rate.valid_to)
    if start and end and end <= start:
        raise Refused("'Valid to' must be after 'valid from'.", "valid_to")
    values[owner_field] = owner_id
    return changes.save(rate, values, entity)


def delete_rate(model, rate_id: int, owner_field: str, entity: str):
    rate = db.session.get(model, rate_id) or abort(404)
    changes.delete(model, rate, entity, f"Rate for prefix {rate.prefix}")


def bulk(target: str, owner_id: int, data: dict):
    """The deck import over JSON records: same checks, diff, all or nothing."""
    records = data["rates"]
    effective = data.get("effective_from") or datetime.now(timezone.utc)
    try:
        result = rateimport.import_records(dbapi.connection(), target, owner_id, records, effective,
                                           mode=data["mode"], confirm_removed=data.get("confirm_removed"),
                                           dry_run=data["dry_run"], default_increment=data["default_increment"])
    except rateimport.RateImportError as exc:
        db.session.rollback()
        errors = []
        for e in exc.errors:
            line, column = e.get("line") or 0, e.get("column") or ""
            if line and 1 <= line <= len(records):
                path = f"rates[{line - 1}]" + (f".{column}" if column else "")
            else:
                path = "confirm_removed" if "confirm" in e.get("message", "") else "rates"
            errors.append(field_error(path, e.get("message", ""), "body"))
        return problem(422, str(exc), code="refused", errors=errors)
    if not data["dry_run"]:
        audit.record("bulk_upsert", target, owner_id, mode=data["mode"], effective_from=effective.isoformat(),
                     rows=result.rows, counts=result.counts)
    db.session.commit()
    return {"dry_run": data["dry_run"], "rows": result.rows, "counts": result.counts}


RatePage = envelope(RateSchema, "RatePage")
