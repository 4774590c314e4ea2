"""The REST API, /api/v1: the third audience over the domain services (docs/api.md).

JSON over HTTPS for operators' own systems (CRM, payment provider, NOC tools), with
API tokens (portal/apitokens, made by admins), scopes and a per-token rate limit
(access.py), errors as RFC 9457 problem details (problems.py), and an OpenAPI 3
document generated from the code by flask-smorest (marshmallow schemas, apispec) at
/api/v1/openapi.json, browsable at /api/v1/docs (Swagger UI, vendored under static/).

Each resource is a module with a flask-smorest Blueprint `blp`; views are thin like the
back office's: parse the arguments (a schema), call a service with the caller's scope,
shape the answer (a schema). Changes are audited with the token as the actor.
"""
from __future__ import annotations

import http
import importlib

import flask_smorest
import marshmallow as ma
from flask import Blueprint, render_template
from flask_smorest.utils import prepare_response

from . import access, fields, problems

PREFIX = "/api/v1"
RESOURCES = ["customers", "ledger", "endpoints", "rates", "carriers", "exchange_rates", "routing", "cdrs", "calls",
             "invoices", "simulator"]

DESCRIPTION = """\
The billing platform's REST API. Every request carries an API token made by an admin
(Settings → API tokens): `Authorization: Bearer vbk_…`.

* **Scopes**: `read` (every customer, no changes), `write` (read and change), `customer`
  (one customer's own data, read-only; another customer's objects answer 404).
* **Money** is never a JSON number: amounts and rates are strings with 6 decimals
  (`"12.500000"`), exactly as stored; requests may send fewer decimals, never more.
  Exchange rates have 12 (`"0.087100000000"`), as stored.
* **Errors** are RFC 9457 problem details (`application/problem+json`) with `code` and,
  for invalid input, `errors[]` naming each wrong field.
* **Pagination**: lists return `items` and `next_cursor`; pass it back as `cursor` for
  the next page (CDRs are keyset pages over start time and id).
* **Rate limit**: per token and minute, shared by every server; `RateLimit-*` headers on
  every answer, 429 with `Retry-After` beyond it.
* **Idempotency**: ledger posts need an `Idempotency-Key` header; a retry with the same
  key and body posts once and gets the first answer again.

Guide, webhooks and their signatures: docs/api.md in the source tree.
"""


class ProblemItemSchema(ma.Schema):
    field = ma.fields.String(allow_none=True, metadata={"description": "The input that was wrong (a.b[2].c)."})
    in_ = ma.fields.String(data_key="in", metadata={"description": "body, query, header or path"})
    pointer = ma.fields.String(metadata={"description": "JSON pointer into the request body."})
    detail = ma.fields.String()


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details."""
    type = ma.fields.String(metadata={"example": "about:blank"})
    title = ma.fields.String(metadata={"example": "Unprocessable Content"})
    status = ma.fields.Integer(metadata={"example": 422})
    detail = ma.fields.String()
    instance = ma.fields.String()
    code = ma.fields.String(metadata={"description": "A stable word for programs: validation_failed, refused, "
                                                     "not_found, unauthorized, insufficient_scope, rate_limited, "
                                                     "conflict, idempotency_key_reused, …"})
    errors = ma.fields.List(ma.fields.Nested(ProblemItemSchema))


class Api(flask_smorest.Api):
    """flask-smorest with problem details: its error answers are documented as
    application/problem+json, and errors are answered by problems.py for /api/ only
    (the portal's pages keep their HTML error pages)."""
    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self):
        pass   # problems.install() answers every error under /api/

    def _register_responses(self):
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, problems.MEDIA_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "A problem (RFC 9457): every error of every route", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, problems.MEDIA_TYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def blueprint(name: str, description: str) -> flask_smorest.Blueprint:
    """A resource's blueprint: authenticated, rate-limited, CSRF-exempt (no cookies)."""
    blp = flask_smorest.Blueprint(name, __name__, description=description)
    blp.before_request(access.authenticate)
    blp.after_request(access.rate_headers)
    return blp


docs_page = Blueprint("api_docs", __name__)


@docs_page.route(f"{PREFIX}/docs")
@access.public
def docs():
    """The browsable API reference (Swagger UI from static/vendor, no CDN)."""
    return render_template("api/docs.html", spec_url=f"{PREFIX}/openapi.json")


def init_app(app) -> None:
    from ..extensions import csrf

    app.config.setdefault("API_TITLE", "VoIP billing API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("API_SPEC_OPTIONS", {
        "info": {"description": DESCRIPTION},
        "servers": [{"url": "/", "description": "this portal"}],
        "security": [{"bearerAuth": []}],
        "components": {"securitySchemes": {"bearerAuth": {
            "type": "http", "scheme": "bearer", "bearerFormat": "vbk_ followed by 43 characters",
            "description": "An API token made by an admin under Settings → API tokens."}}},
    })
    from apispec.ext.marshmallow import MarshmallowPlugin

    from .common import schema_name

    api = Api(spec_kwargs={"marshmallow_plugin": MarshmallowPlugin(schema_name_resolver=schema_name)})
    api.init_app(app)
    fields.register(api)
    for name in RESOURCES:
        module = importlib.import_module(f"{__name__}.{name}")
        api.register_blueprint(module.blp, url_prefix=PREFIX)
        csrf.exempt(module.blp)
    app.register_blueprint(docs_page)
    app.extensions["billing_api"] = api
