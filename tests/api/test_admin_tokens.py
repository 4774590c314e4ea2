"""Admins make and revoke API tokens in the back office; the token is shown once."""
from __future__ import annotations

import hashlib
import re

from sqlalchemy import select

from portal.models import ApiToken, AuditLog
from tests import factories
from tests.conftest import login

from .conftest import ApiClient, problem_of


def test_create_show_once_use_and_revoke(app, admin_client, db_session, world):
    page = admin_client.get("/admin/api-tokens")
    assert page.status_code == 200 and "API tokens" in page.get_data(as_text=True)
    made = admin_client.post("/admin/api-tokens/new", data={"name": "CRM sync", "scope": "customer",
                                                             "customer_id": world.a.customer.id, "expires_on": ""})
    assert made.status_code == 200
    token = re.search(r'value="(vbk_[A-Za-z0-9_-]{43})"', made.get_data(as_text=True)).group(1)
    row = db_session.scalar(select(ApiToken).where(ApiToken.name == "CRM sync"))
    assert row.token_hash == hashlib.sha256(token.encode()).digest() and row.created_by == "admin@example.net"
    assert (row.scope, row.customer_id) == ("customer", world.a.customer.id)
    listing = admin_client.get("/admin/api-tokens").get_data(as_text=True)
    assert token not in listing and row.token_prefix in listing
    assert ApiClient(app, token).get(f"/api/v1/customers/{world.a.customer.id}").status_code == 200
    assert admin_client.post(f"/admin/api-tokens/{row.id}/revoke").status_code == 302
    problem_of(ApiClient(app, token).get(f"/api/v1/customers/{world.a.customer.id}"), 401, "unauthorized")
    assert {a.action for a in db_session.scalars(select(AuditLog).where(AuditLog.entity == "api_token"))} == \
        {"create", "revoke"}


def test_a_customer_token_needs_its_customer_and_names_need_text(admin_client, db_session, world):
    refused = admin_client.post("/admin/api-tokens/new", data={"name": "x", "scope": "customer", "customer_id": 0})
    assert refused.status_code == 400 and "needs its customer" in refused.get_data(as_text=True)
    past = admin_client.post("/admin/api-tokens/new", data={"name": "old", "scope": "read", "customer_id": 0,
                                                            "expires_on": "2001-01-01"})
    assert past.status_code == 400 and "future" in past.get_data(as_text=True)
    assert db_session.scalar(select(ApiToken.id)) is None


def test_only_admins_manage_tokens(app, db_session, world):
    for role in ("finance", "support"):
        factories.user(f"{role}@operator.example", "staff-password-long-1", role=role)
        client = app.test_client()
        login(client, f"{role}@operator.example", "staff-password-long-1")
        assert client.get("/admin/api-tokens").status_code == 403
        assert client.post("/admin/api-tokens/new", data={"name": "x", "scope": "write"}).status_code == 403
        assert client.get("/admin/webhooks").status_code == 403
