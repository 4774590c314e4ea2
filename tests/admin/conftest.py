"""Fixtures of the back-office tests: a small catalogue and helpers to read pages."""
from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from portal import security

from portal.extensions import db
from portal.models import AuditLog
from tests import factories


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    """Real argon2id with minimal cost: these tests sign in often, and the production cost
    (tens of milliseconds, more on a busy machine) would dominate their run time."""
    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture()
def catalogue(db_session):
    """weights local/mobile, permission standard (both), destinations 33 and 336."""
    local, mobile = factories.weight("local"), factories.weight("mobile")
    standard = factories.permission([local, mobile], name="standard")
    factories.destination("33", local, "France")
    factories.destination("336", mobile, "France Mobile")
    return {"local": local, "mobile": mobile, "standard": standard}


def audit_rows(entity: str, action: str | None = None) -> list[AuditLog]:
    stmt = select(AuditLog).where(AuditLog.entity == entity).order_by(AuditLog.id)
    if action:
        stmt = stmt.where(AuditLog.action == action)
    return list(db.session.scalars(stmt))


def field_error(html: str, field: str) -> str | None:
    """The error shown beside `field` (the invalid-feedback after its control), or None when it has none."""
    control = re.search(r'<(?:input|select|textarea)[^>]*\bid="%s"[^>]*>' % re.escape(field), html)
    assert control, f"no field {field} on the page"
    if "is-invalid" not in control.group(0):
        return None
    feedback = re.search(r'<div class="invalid-feedback[^"]*">([^<]*)</div>', html[control.end():])
    return feedback.group(1).strip() if feedback else ""


def flashes(html: str) -> list[str]:
    return [re.sub(r"\s+", " ", m).strip() for m in re.findall(r'<div class="alert[^"]*"[^>]*role="alert">\s*(.*?)<button', html, re.S)]
