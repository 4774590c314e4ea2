"""Audit log of changes: who did what to which entity. Who: the signed-in user, or the
API token of the request (`api:<name>#<id>`), or "system" (jobs, commands)."""
from __future__ import annotations

from decimal import Decimal

from flask import g, has_request_context
from flask_login import current_user

from .extensions import db
from .models import AuditLog


def _jsonable(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def current_actor() -> str:
    """Who is acting in this request: the API token (portal/api sets `g.api_actor`), the
    signed-in user, else "system"."""
    if has_request_context() and g.get("api_actor"):
        return g.api_actor
    return current_user.email if getattr(current_user, "is_authenticated", False) else "system"


def record(action: str, entity: str, entity_id=None, actor: str | None = None, **details) -> None:
    """Add an audit row to the current transaction (committed with the change)."""
    if actor is None:
        actor = current_actor()
    db.session.add(AuditLog(actor=actor, action=action, entity=entity,
                            entity_id=None if entity_id is None else str(entity_id),
                            details=_jsonable(details)))
