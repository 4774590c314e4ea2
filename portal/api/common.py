"""Pieces shared by the resources: page arguments, the list envelope, Location."""
from __future__ import annotations

import marshmallow as ma
from flask import url_for
from marshmallow import validate

from ..admin.manage.forms import CODECS_RE, NAME_ERROR, NAME_RE   # one rule for names on pages and in the API

MAX_LIMIT = 1000


def Day(**kw):  # noqa: N802
    """A date of a filter: 1970-01-01 to 2999-12-31 (the pages' sane_date rule)."""
    from ..validators import EARLIEST_DATE, LATEST_DATE

    return ma.fields.Date(validate=validate.Range(EARLIEST_DATE, LATEST_DATE,
                                                  error=f"Choose a date between {EARLIEST_DATE} and {LATEST_DATE}."),
                          **kw)
def _text(pattern: str, error: str, defaults: dict, **kw) -> ma.fields.String:
    return ma.fields.String(validate=validate.Regexp(pattern, error=error),
                            metadata=defaults | kw.pop("metadata", {}), **kw)


def Name(**kw):  # noqa: N802 (a field factory, used like a field class)
    return _text(NAME_RE, NAME_ERROR, {"example": "acme", "description": "Letters, digits, . _ -; at most 64."}, **kw)


def Digits(**kw):  # noqa: N802
    return _text(r"^[0-9]{1,20}$", "Digits only, at most 20.", {"example": "33"}, **kw)


def Codecs(**kw):  # noqa: N802
    return _text(CODECS_RE, "A codec string such as PCMA,PCMU,G729.", {"example": "PCMA,PCMU"}, allow_none=True, **kw)


def Currency(**kw):  # noqa: N802
    return _text(r"^[A-Z]{3}$", "A three-letter ISO code such as EUR.", {"example": "EUR"}, **kw)


def schema_name(schema) -> str:
    """Component names: the class name without 'Schema'; a partial instance (PATCH
    bodies) gets 'Patch'."""
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__.removesuffix("Schema")
    return name + "Patch" if not isinstance(schema, type) and schema.partial else name


class Strict(ma.Schema):
    """Request bodies: an unknown field is an error (a typo must not pass silently)."""
    class Meta:
        unknown = ma.RAISE


class PageArgs(ma.Schema):
    cursor = ma.fields.String(metadata={"description": "`next_cursor` of the previous page; absent: the first page."})
    limit = ma.fields.Integer(load_default=100, validate=validate.Range(1, MAX_LIMIT))


class IdCursorArgs(PageArgs):
    """Lists paged by id: the cursor is the last id of the previous page."""
    cursor = ma.fields.Integer(validate=validate.Range(0), metadata={
        "description": "`next_cursor` of the previous page (the last id it listed); absent: the first page."})


def envelope(item_schema, name: str):
    """A list answer: `items` and `next_cursor` (null on the last page)."""
    return type(name, (ma.Schema,), {
        "items": ma.fields.List(ma.fields.Nested(item_schema), required=True),
        "next_cursor": ma.fields.String(allow_none=True, required=True,
                                        metadata={"description": "Pass as `cursor` for the next page; null: no more."}),
    })


def by_id_page(rows: list, limit: int, key=lambda row: row["id"]) -> dict:
    """The envelope of a page fetched with limit + 1 rows."""
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": str(key(rows[-1])) if more and rows else None}


def location(endpoint: str, **values) -> dict:
    return {"Location": url_for(endpoint, **values)}
