"""Errors of the REST API as RFC 9457 problem details (application/problem+json).

Every error under /api/ is answered here, whoever raised it: the access rules (401,
403, 404, 429), webargs' validation of the request (422 with every wrong field), the
domain services' refusals (`Refused` with its field, `NotFound`), the back office's
refusals of the database (`AdminError`: a unique name taken, a row still in use), and
the portal's own errors (400 for a NUL character, 404 for no such route, 405, 500,
503 when the database is unreachable).

    {"type": "about:blank", "title": "Unprocessable Content", "status": 422,
     "detail": "amount: 1.1234567 has more than 6 decimal places",
     "code": "validation_failed", "instance": "/api/v1/customers/7/ledger",
     "errors": [{"field": "amount", "in": "body", "pointer": "#/amount",
                 "detail": "1.1234567 has more than 6 decimal places"}]}

`type` is about:blank (the status says what happened, RFC 9457 section 4.2.1); `code`
is a stable word for programs: docs/api.md lists them.
"""
from __future__ import annotations

import json
from http import HTTPStatus

from flask import Response, request

API_PREFIX = "/api/"
MEDIA_TYPE = "application/problem+json"

# status -> the `code` when nothing more precise is known
DEFAULT_CODES = {400: "bad_request", 401: "unauthorized", 403: "insufficient_scope", 404: "not_found",
                 405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "too_large",
                 415: "unsupported_media_type", 422: "validation_failed", 429: "rate_limited",
                 500: "internal_error", 503: "unavailable"}
# where webargs found the input -> the word `in` uses (OpenAPI's parameter locations)
LOCATIONS = {"json": "body", "query": "query", "headers": "header", "view_args": "path", "form": "body"}


def handles(req=None) -> bool:
    """Whether the request is the API's (its errors are problem details)."""
    return (req or request).path.startswith(API_PREFIX)


def problem(status: int, detail: str | None = None, *, code: str | None = None, errors: list[dict] | None = None,
            headers: dict | None = None) -> Response:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
            "code": code or DEFAULT_CODES.get(status, "error"), "instance": request.path}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def field_error(field: str | None, detail: str, where: str = "body") -> dict:
    error = {"field": field, "in": where, "detail": detail}
    if field and where == "body":
        error["pointer"] = "#/" + field.replace("[", "/").replace("].", "/").replace("]", "").replace(".", "/")
    return error


def _flatten(messages, prefix: str = "") -> list[tuple[str, str]]:
    """webargs/marshmallow messages ({field: [msg]} nested by field or index) as (path, msg)."""
    found = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            elif key == "_schema":
                path = prefix
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            found += _flatten(value, path)
    elif isinstance(messages, (list, tuple)):
        if all(isinstance(m, str) for m in messages):
            found += [(prefix, m) for m in messages]
        else:
            for m in messages:
                found += _flatten(m, prefix)
    else:
        found.append((prefix, str(messages)))
    return found


def validation_problem(messages: dict, status: int = 422) -> Response:
    """The problem of webargs' messages ({location: {field: [message]}})."""
    errors = []
    for location, fields in (messages or {}).items():
        where = LOCATIONS.get(location, location)
        if not isinstance(fields, dict):
            fields = {"_schema": fields}
        for path, message in _flatten(fields):
            errors.append(field_error(path or None, message, where))
    detail = "; ".join(f"{e['field']}: {e['detail']}" if e["field"] else e["detail"] for e in errors) \
        or "The request is not valid."
    return problem(status, detail, code="validation_failed" if status == 422 else None, errors=errors)


def from_http_exception(e) -> Response:
    """An HTTPException raised under /api/ (flask-smorest's abort, werkzeug's routing,
    the portal's own aborts) as a problem."""
    status = getattr(e, "code", None) or 500
    data = getattr(e, "data", None) or {}
    headers = dict(data.get("headers") or {})
    if status == 405 and getattr(e, "valid_methods", None):
        headers["Allow"] = ", ".join(e.valid_methods)
    messages = data.get("messages") or data.get("errors")
    if messages:
        response = validation_problem(messages, status)
        for name, value in headers.items():
            response.headers[name] = value
        return response
    detail = data.get("message") or getattr(e, "description", None)
    if status == 404 and (not detail or detail.startswith("The requested URL was not found")):
        detail = "There is nothing at this address, or it is not yours to see."
    if status == 500:
        detail = "Something went wrong on the server; the error was logged. Try again, or tell the operator."
    return problem(status, detail, code=data.get("code"), headers=headers)


def refused(e) -> Response:
    """A domain service's refusal: NotFound is 404, anything else 422 with its field."""
    from ..errors import NotFound

    message = str(e)
    message = message[:1].upper() + message[1:]
    if isinstance(e, NotFound):
        return problem(404, message, code="not_found")
    field = getattr(e, "field", None)
    return problem(422, message, code="refused", errors=[field_error(field, message)] if field else None)


def admin_refused(e) -> Response:
    """A change the database refused (AdminError): a check constraint is invalid input
    (422), anything else (a name taken, a row still in use) a conflict (409); with the
    field when known."""
    field = getattr(e, "field", None)
    invalid = (getattr(e, "constraint", None) or "").startswith("ck_")
    return problem(422 if invalid else 409, str(e), code="refused" if invalid else "conflict",
                   errors=[field_error(field, str(e))] if field else None)
