"""Isolation: a customer user sees only their own customer's data.

`test_every_selfcare_route_*` walk app.url_map, so a route added later (the invoices
pages included) is checked without anyone remembering to: with ids of customer B,
every GET and POST by customer A answers 404 and shows nothing of B; routes without
ids show only A's data. A route whose URL takes an argument this file cannot fill
fails with a message saying where to teach it (ID_RESOLVERS).
"""
from __future__ import annotations

import pytest
from sqlalchemy import text

from portal.extensions import db
from tests.conftest import CUSTOMER_PASSWORD

from .conftest import assert_no_b

STRONG = "Str0ng-Passw0rd!x"
# A POST body that a careless view would happily accept.
PAYLOAD = {"password": STRONG, "confirm": STRONG, "current_password": CUSTOMER_PASSWORD,
           "new_password": STRONG, "low_balance_alert": "1", "email": "x@attacker.example",
           "daily_balance_email": "y"}

# URL argument -> how to get the id of one row of customer `who` ("a" or "b").
def _email_token(world, who: str) -> str:
    """A live e-mail verification link of a user of customer `who`."""
    from datetime import timedelta

    from portal.auth import tokens

    token = tokens.issue(world.side(who).user, "email_verification", timedelta(hours=1), email=f"new-{who}@example.net")
    db.session.flush()
    return token


ID_RESOLVERS = {
    "endpoint_id": lambda world, who: world.side(who).sip.id,
    "cdr_id": lambda world, who: world.side(who).cdr_ids[0],
    "token": _email_token,
}


def _generic_id(arg: str, customer_id: int):
    """`<thing>_id` -> a row of billing.<thing>s owned by the customer, if that table exists."""
    if not arg.endswith("_id"):
        return None
    table = arg[:-3] + "s"
    exists = db.session.execute(text("""
        SELECT 1 FROM information_schema.columns
         WHERE table_schema = 'billing' AND table_name = :t AND column_name = 'customer_id'"""), {"t": table}).first()
    if not exists:
        return None
    return db.session.execute(text(f'SELECT id FROM billing."{table}" WHERE customer_id = :c ORDER BY id LIMIT 1'),
                              {"c": customer_id}).scalar()


def resolve(world, rule, who: str) -> dict:
    args = {}
    for arg in sorted(rule.arguments):
        if arg in ID_RESOLVERS:
            value = ID_RESOLVERS[arg](world, who)
        else:
            value = _generic_id(arg, world.side(who).customer.id)
        if value is None:
            pytest.fail(f"{rule.endpoint} ({rule.rule}) takes <{arg}>: add how to get a row of customer "
                        f"{who.upper()} to ID_RESOLVERS in tests/selfcare/test_isolation.py (and create one "
                        f"for both customers in tests/selfcare/conftest.py), so its isolation is tested")
        args[arg] = value
    return args


def selfcare_rules(app):
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("selfcare.")]
    assert len(rules) >= 10, "self-care routes are missing"
    return sorted(rules, key=lambda r: r.rule)


def snapshot_b(world) -> list:
    """Everything of B a POST could change."""
    return db.session.execute(text("""
        SELECT to_jsonb(c) FROM billing.customers c WHERE c.id = :c
        UNION ALL SELECT to_jsonb(e) FROM billing.endpoints e WHERE e.customer_id = :c
        UNION ALL SELECT to_jsonb(u) FROM billing.users u WHERE u.customer_id = :c
        UNION ALL SELECT to_jsonb(l) FROM billing.ledger l WHERE l.customer_id = :c"""),
        {"c": world.b.customer.id}).scalars().all()


def _body(response) -> bytes:
    return b"".join(response.response) if response.is_streamed else response.data


def test_every_selfcare_route_with_b_ids_is_404_for_a(app, client_a, world):
    before = snapshot_b(world)
    checked = 0
    for rule in selfcare_rules(app):
        if not rule.arguments:
            continue
        url = rule.build(resolve(world, rule, "b"))[1]
        own_url = rule.build(resolve(world, rule, "a"))[1]
        if "GET" in rule.methods:
            response = client_a.get(url)
            assert response.status_code == 404, f"GET {url} ({rule.endpoint}) answered {response.status_code}"
            assert_no_b(_body(response), f"GET {url}")
            assert client_a.get(own_url).status_code == 200, f"GET {own_url}: A's own row should open"
        if "POST" in rule.methods:
            response = client_a.post(url, data=PAYLOAD)
            assert response.status_code == 404, f"POST {url} ({rule.endpoint}) answered {response.status_code}"
            assert_no_b(_body(response), f"POST {url}")
        missing = rule.build({arg: 2**62 for arg in rule.arguments})[1]
        assert client_a.get(missing).status_code in (404, 405), f"GET {missing}: a missing id must be 404"
        checked += 1
    assert checked >= 1
    db.session.expire_all()
    assert snapshot_b(world) == before, "a POST by A changed B's data"


def test_every_selfcare_route_without_ids_shows_only_a(app, client_a, world):
    before = snapshot_b(world)
    for rule in selfcare_rules(app):
        if rule.arguments:
            continue
        url = rule.build({})[1]
        if "GET" in rule.methods:
            response = client_a.get(url)
            assert response.status_code == 200, f"GET {url} answered {response.status_code}"
            body = _body(response)
            assert_no_b(body, f"GET {url}")
            # ids of B in the query string (filters) are refused like ids in the path
            probe = client_a.get(url, query_string={"endpoint": world.b.ip.id, "endpoint_id": world.b.ip.id,
                                                    "customer_id": world.b.customer.id, "customer": world.b.customer.id})
            assert probe.status_code in (200, 404), f"GET {url} with B's ids answered {probe.status_code}"
            assert_no_b(_body(probe), f"GET {url} with B's ids in the query string")
        if "POST" in rule.methods:
            response = client_a.post(url, data={**PAYLOAD, "customer_id": world.b.customer.id})
            assert response.status_code in (200, 302), f"POST {url} answered {response.status_code}"
            assert_no_b(_body(response), f"POST {url}")
    db.session.expire_all()
    assert snapshot_b(world) == before, "a POST by A changed B's data"


def test_cdr_filter_with_b_endpoint_is_404(client_a, world):
    for url in ("/my/cdrs", "/my/cdrs.csv"):
        assert client_a.get(url, query_string={"endpoint_id": world.b.sip.id}).status_code == 404
        assert client_a.get(url, query_string={"endpoint_id": 2**62}).status_code == 404
        assert client_a.get(url, query_string={"endpoint_id": world.a.sip.id}).status_code == 200


def test_b_sip_password_cannot_be_changed_by_a(client_a, world):
    old = world.b.sip.password
    response = client_a.post(f"/my/endpoints/{world.b.sip.id}/password", data={"password": STRONG, "confirm": STRONG})
    assert response.status_code == 404
    db.session.expire_all()
    assert world.b.sip.password == old


def test_ip_endpoint_has_no_password_page(client_a, world):
    assert client_a.get(f"/my/endpoints/{world.a.ip.id}/password").status_code == 404


def test_admin_gets_403_on_every_selfcare_route(app, admin_client, world):
    for rule in selfcare_rules(app):
        url = rule.build({arg: 1 for arg in rule.arguments})[1]
        if "GET" in rule.methods:
            assert admin_client.get(url).status_code == 403, url
        if "POST" in rule.methods:
            assert admin_client.post(url, data=PAYLOAD).status_code == 403, url


def test_anonymous_is_sent_to_login_on_every_selfcare_route(app, client, world):
    for rule in selfcare_rules(app):
        url = rule.build(resolve(world, rule, "a"))[1]
        for method in ("GET", "POST") if "POST" in rule.methods else ("GET",):
            response = client.open(url, method=method, data=PAYLOAD if method == "POST" else None)
            assert response.status_code == 302 and "/login" in response.headers["Location"], f"{method} {url}"


def test_csrf_is_required_on_every_selfcare_form(app, client_a, world, monkeypatch):
    """With CSRF on (as in production), every self-care POST without the token is
    refused with 400 and changes nothing."""
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    query = text("SELECT to_jsonb(c) FROM billing.customers c WHERE id = :c")
    before = db.session.execute(query, {"c": world.a.customer.id}).scalar()
    posts = [r for r in selfcare_rules(app) if "POST" in r.methods]
    assert posts
    for rule in posts:
        url = rule.build(resolve(world, rule, "a"))[1]
        assert client_a.post(url, data=PAYLOAD).status_code == 400, url
    db.session.expire_all()
    assert db.session.execute(query, {"c": world.a.customer.id}).scalar() == before
