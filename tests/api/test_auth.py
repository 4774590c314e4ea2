"""Tokens: how a request is refused without a live token, the scopes of read and write
tokens, the per-token rate limit shared through PostgreSQL, last-used time, audit."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from portal.apitokens import services as tokens
from portal.models import ApiToken, AuditLog

from .conftest import ApiClient, problem_of


def test_no_token_is_401_with_a_bearer_challenge(app, world):
    response = ApiClient(app, None).get("/api/v1/customers")
    body = problem_of(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert "Authorization: Bearer" in body["detail"]


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-token",
                                    "Bearer vbk_" + "x" * 43])
def test_anything_but_a_known_token_is_401(app, world, header):
    response = ApiClient(app, None).get("/api/v1/customers", headers={"Authorization": header})
    problem_of(response, 401, "unauthorized")


def test_the_token_is_stored_hashed_and_shown_once(db_session, world):
    row, token = tokens.issue("crm", "read", customer_id=None, expires_at=None, actor="admin@example.net")
    assert token.startswith("vbk_") and len(token) == 47
    assert row.token_hash != token.encode() and token not in repr(row.__dict__)
    assert row.token_prefix == token[:12]
    assert db_session.scalar(select(AuditLog).where(AuditLog.entity == "api_token", AuditLog.action == "create"))


def test_revoked_and_expired_tokens_are_refused(app, db_session, world, token_of):
    live = token_of("read")
    revoked = token_of("read")
    tokens.revoke(db_session.scalar(select(ApiToken.id).where(ApiToken.token_prefix == revoked[:12])), "admin")
    expired = token_of("read")
    db_session.execute(text("UPDATE billing.api_tokens SET expires_at = now() - interval '1 second' "
                            "WHERE token_prefix = :p"), {"p": expired[:12]})
    assert ApiClient(app, live).get("/api/v1/customers").status_code == 200
    assert "revoked" in problem_of(ApiClient(app, revoked).get("/api/v1/customers"), 401)["detail"]
    assert "expired" in problem_of(ApiClient(app, expired).get("/api/v1/customers"), 401)["detail"]


def test_last_used_time_is_recorded(app, db_session, world, token_of):
    token = token_of("read")
    row = db_session.scalar(select(ApiToken).where(ApiToken.token_prefix == token[:12]))
    assert row.last_used_at is None
    ApiClient(app, token).get("/api/v1/calls")
    db_session.refresh(row)
    assert row.last_used_at is not None and row.last_used_at > datetime.now(timezone.utc) - timedelta(minutes=1)


def test_a_read_token_cannot_change_anything(reader, world):
    for method, path, body in [("POST", "/api/v1/customers", {"name": "x1"}),
                               ("PATCH", f"/api/v1/customers/{world.a.customer.id}", {"enabled": False}),
                               ("DELETE", f"/api/v1/endpoints/{world.a.ip.id}", None),
                               ("POST", "/api/v1/ratecards", {"name": "rc-x"})]:
        problem_of(reader.open(method, path, json=body), 403, "insufficient_scope")
    assert reader.get(f"/api/v1/customers/{world.a.customer.id}").status_code == 200


def test_rate_limit_per_token_with_headers(app, world, token_of, monkeypatch):
    monkeypatch.setitem(app.config, "API_RATE_LIMIT_PER_MINUTE", 3)
    busy, other = ApiClient(app, token_of("read")), ApiClient(app, token_of("read"))
    answers = [busy.get("/api/v1/calls") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    refused = busy.get("/api/v1/calls")
    problem_of(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert other.get("/api/v1/calls").status_code == 200     # per token, not per address


def test_counts_live_in_postgresql(app, db_session, world, token_of):
    """The count every worker shares: one row per token and minute."""
    token = token_of("read")
    client = ApiClient(app, token)
    for _ in range(4):
        client.get("/api/v1/calls")
    token_id = db_session.scalar(select(ApiToken.id).where(ApiToken.token_prefix == token[:12]))
    assert db_session.execute(text("SELECT sum(requests) FROM billing.api_request_counts WHERE token_id = :t"),
                              {"t": token_id}).scalar_one() == 4


def test_writes_are_audited_with_the_token_as_actor(staff, db_session, world):
    response = staff.patch(f"/api/v1/customers/{world.a.customer.id}", json={"max_calls": 7})
    assert response.status_code == 200 and response.get_json()["max_calls"] == 7
    row = db_session.scalar(select(AuditLog).where(AuditLog.entity == "customer", AuditLog.action == "update")
                            .order_by(AuditLog.id.desc()))
    assert row.actor.startswith("api:test write#")
    assert row.details == {"max_calls": [None, 7]}


def test_portal_pages_keep_their_html_errors(client):
    """Problem details are the API's: a page of the portal still answers HTML."""
    response = client.get("/admin/no-such-page")
    assert response.status_code == 404 and response.mimetype == "text/html"


def test_bad_input_is_a_problem_never_a_500(staff, world):
    problem_of(staff.get("/api/v1/customers?q=%00"), 400, "bad_request")
    far = problem_of(staff.get("/api/v1/cdrs?date_to=9999-12-31"), 422, "validation_failed")
    assert far["errors"][0] == {"field": "date_to", "in": "query", "detail": far["errors"][0]["detail"]}
    problem_of(staff.get(f"/api/v1/customers/{world.a.customer.id}/ledger?date_from=0001-01-01"), 422)
    # (no operation in the document to check these two against)
    not_allowed = staff.open("PUT", "/api/v1/customers", check=False)
    problem_of(not_allowed, 405, "method_not_allowed")
    assert "POST" in not_allowed.headers["Allow"]
    problem_of(staff.get("/api/v1/nothing-here", check=False), 404, "not_found")
    problem_of(staff.post("/api/v1/customers", data="{not json", headers={"Content-Type": "application/json"}),
               400)
    problem_of(staff.get("/api/v1/customers?cursor=-1"), 422, "validation_failed")
