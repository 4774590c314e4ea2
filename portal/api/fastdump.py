"""A compiled serializer for the API's hottest answers (CDR pages): marshmallow walks
every field of every row through several layers of calls (about 15 ms for a page of 100
calls of 31 fields, more than the query); this builds, once per schema, one function
per field from the field's type, with the same output. tests/api/test_fastdump.py checks
it against marshmallow's own dump, so the OpenAPI document (made from the schema) stays
the truth."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Callable

import marshmallow as ma

from .fields import SIX, Figure, Fraction, Money


def _converter(field: ma.fields.Field) -> Callable | None:
    """value -> JSON value for one field type; None: the value as it is."""
    if isinstance(field, Money):
        return lambda v: format(Decimal(v).quantize(SIX), "f")
    if isinstance(field, Figure):
        return lambda v: format(Decimal(v), "f")
    if isinstance(field, Fraction):
        return lambda v: format(Decimal(v).quantize(Decimal("0.0001")), "f")
    if isinstance(field, ma.fields.DateTime) and getattr(field, "format", None) in (None, "iso", "iso8601"):
        return datetime.isoformat
    if isinstance(field, ma.fields.Date):
        return date.isoformat
    if isinstance(field, (ma.fields.Integer, ma.fields.String, ma.fields.Boolean)) and type(field) in (
            ma.fields.Integer, ma.fields.String, ma.fields.Boolean):
        return None
    if isinstance(field, ma.fields.Nested):
        return compile_dump(field.schema)
    if isinstance(field, ma.fields.List):
        inner = _converter(field.inner)
        return (lambda v: list(v)) if inner is None else (lambda v: [inner(x) for x in v])
    raise TypeError(f"fastdump cannot compile {type(field).__name__}")


def compile_dump(schema: ma.Schema | type[ma.Schema]) -> Callable[[dict], dict]:
    """row (a dict) -> what `schema.dump(row)` gives, for schemas of the types above.
    Like marshmallow, a key missing from the row is left out; None stays None."""
    schema = schema() if isinstance(schema, type) else schema
    plan = []
    for name, field in schema.dump_fields.items():
        plan.append((field.attribute or name, field.data_key or name, _converter(field)))

    def dump(row: dict) -> dict:
        out = {}
        for attribute, key, convert in plan:
            if attribute in row:
                value = row[attribute]
                out[key] = value if value is None or convert is None else convert(value)
        return out
    return dump
