"""Who may call which route of the API: the token, its scope, its rate limit.

Every view declares its rule with `@allow(...)` (placed right above the function, so
the rule travels with it through flask-smorest's decorators); a view without one is
refused (fail closed), and tests/api/test_access.py fails for it.

* `allow()`: a read. Staff tokens (read, write) see every customer; a customer token
  sees its customer only: the view passes `scope()` to the services, which answer
  another customer's row with NotFound (404), exactly like a missing one.
* `allow(write=True)`: a change; write tokens only.
* `allow(staff=True)`: the operator's own data (carriers, ratecards, routing rules).

A customer token asking for what it may not have gets 403 when the object is its own
(or the route names no object) and 404 when the object is another customer's or not a
customer's at all: it can neither change its data nor learn what exists beyond it.
`owner` tells whose object a route names (from the URL's ids).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from flask import current_app, g, request

from ..apitokens import services as tokens
from .problems import problem

RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


@dataclass(frozen=True)
class Rule:
    write: bool = False
    staff: bool = False
    owner: Callable[[dict], int | None] | None = None


def allow(*, write: bool = False, staff: bool = False, owner: Callable[[dict], int | None] | None = None):
    """Declare who may call the view (see the module's docstring)."""
    rule = Rule(write, staff, owner)

    def decorate(view):
        view._api_rule = rule
        return view
    return decorate


def caller() -> tokens.Caller:
    return g.api_caller


def scope() -> int | None:
    """The customer scope of the request: None for staff tokens, else the token's customer."""
    return g.api_caller.customer_id


def _unauthorized(detail: str, error: str = "invalid_token"):
    return problem(401, detail, code="unauthorized",
                   headers={"WWW-Authenticate": f'Bearer realm="api", error="{error}"'})


REFUSALS = {
    "malformed": "The token is not one of this API's (vbk_ followed by 43 characters).",
    "unknown": "No such token: it was mistyped, or deleted with its customer.",
    "revoked": "This token was revoked by an admin.",
    "expired": "This token has expired: ask an admin for a new one.",
}


def authenticate():
    """before_request of every API blueprint: the token, the rate limit, then the rule."""
    view = current_app.view_functions.get(request.endpoint)
    rule = getattr(view, "_api_rule", None)
    if getattr(view, "_api_public", False):
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _unauthorized("Send the API token as `Authorization: Bearer <token>` (admins create tokens under "
                             "Settings → API tokens).", "invalid_request")
    result = tokens.check(token.strip())
    if result.caller is None:
        return _unauthorized(REFUSALS[result.problem])
    limit = current_app.config["API_RATE_LIMIT_PER_MINUTE"]
    g.api_rate = (limit, max(limit - result.requests, 0), result.reset_seconds)
    g.api_caller, g.api_actor = result.caller, result.caller.actor
    if result.requests > limit:
        return problem(429, f"This token made more than {limit} requests this minute; try again in "
                            f"{result.reset_seconds} s.", code="rate_limited",
                       headers={"Retry-After": str(result.reset_seconds)})
    if rule is None:
        return problem(403, "This route has no access rule.", code="insufficient_scope")
    return _refusal(result.caller, rule, request.view_args or {})


def _refusal(who: tokens.Caller, rule: Rule, view_args: dict):
    if who.staff:
        if rule.write and not who.can_write:
            return problem(403, "This token may read only: changes need a token of scope write.",
                           code="insufficient_scope")
        return None
    if not (rule.write or rule.staff):
        return None
    owner = rule.owner(view_args) if rule.owner else None
    if owner is not None and owner == who.customer_id:
        return problem(403, "A customer token may read its customer's data only.", code="insufficient_scope")
    if view_args:
        return problem(404, "There is nothing at this address, or it is not yours to see.", code="not_found")
    return problem(403, "A customer token may read its customer's data only; this needs a token of the operator.",
                   code="insufficient_scope")


def rate_headers(response):
    """after_request: the rate limit of the token on every answer."""
    rate = g.get("api_rate")
    if rate:
        for name, value in zip(RATE_HEADERS, rate):
            response.headers[name] = str(value)
    return response


def public(view):
    """A route anybody may read (the OpenAPI document, the docs page)."""
    view._api_public = True
    return view


def owned_by(model) -> Callable[[dict], int | None]:
    """`owner` of a route whose first id is a row of `model` with a customer_id."""
    def owner(view_args: dict) -> int | None:
        from ..extensions import db

        ident = next(iter(view_args.values()), None)
        row = db.session.get(model, ident) if isinstance(ident, int) else None
        return getattr(row, "customer_id", None)
    return owner


def customer_in_path(view_args: dict) -> int | None:
    return view_args.get("customer_id")
