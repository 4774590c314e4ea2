"""A customer-bound token sees its own customer only. It walks every route of the API
with the ids of another customer's objects (and of the operator's own: carriers,
ratecards) and gets 404 each time, exactly as for ids that do not exist; routes that
name no object answer with its own data only, or 403 when they are the operator's."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from portal.models import Invoice, RoutingRule
from portal.extensions import db
from tests import factories

from .conftest import problem_of
from .test_openapi import api_rules

BODY = {"name": "x", "kind": "payment", "amount": "1.00", "prefix": "33", "rate": "0.01", "rates": []}


@pytest.fixture()
def ids(world):
    """The ids of B's objects, and of the operator's, by URL argument."""
    provider = factories.provider(name="carrier-bravo-zq")
    gateway = factories.gateway(provider, name="gw-bravo-zq")
    cost = factories.provider_rate(provider, "999", "0.1")
    rule = RoutingRule(customer_id=world.b.customer.id, prefix="999", providers=[provider])
    db.session.add(rule)
    db.session.flush()
    invoice = db.session.scalar(db.select(Invoice).where(Invoice.customer_id == world.b.customer.id))
    b_rate = world.b.cards[0]
    sell = db.session.scalar(db.select(factories.SellRate).where(factories.SellRate.ratecard_id == b_rate.id))
    exchange = factories.exchange_rate("SEK", "EUR", "0.0871", datetime(2026, 1, 1, tzinfo=timezone.utc))
    return {"customer_id": world.b.customer.id, "endpoint_id": world.b.sip.id, "cdr_id": world.b.cdr_ids[0],
            "invoice_id": invoice.id, "rule_id": rule.id, "ratecard_id": b_rate.id, "provider_id": provider.id,
            "gateway_id": gateway.id, "rate_id": {"/api/v1/rates/": sell.id, "/api/v1/provider-rates/": cost.id},
            "exchange_rate_id": exchange.id}


def _url(rule, ids) -> str:
    def value(match):
        name = match.group(1)
        found = ids[name]
        if isinstance(found, dict):
            found = next(v for prefix, v in found.items() if rule.rule.startswith(prefix))
        return str(found)
    return re.sub(r"<(?:int:)?([a-z_]+)>", value, rule.rule)


def test_every_route_with_another_customers_ids_is_404(app, customer_a, ids):
    walked = []
    for rule in api_rules(app):
        if not rule.arguments:
            continue
        url = _url(rule, ids)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = customer_a.open(method, url, json=BODY if method in ("POST", "PATCH") else None,
                                       headers={"Idempotency-Key": f"walk-{method}-{url}"})
            assert response.status_code == 404, f"{method} {url}: {response.status_code} {response.get_data()[:200]}"
            problem_of(response, 404, "not_found")
            walked.append(f"{method} {rule.rule}")
    assert len(walked) >= 35, walked


def test_the_same_routes_with_missing_ids_are_404_alike(app, customer_a, ids):
    """Another customer's object and no object at all cannot be told apart."""
    missing = {k: ({p: 2**31 - 1 for p in v} if isinstance(v, dict) else 2**31 - 1) for k, v in ids.items()}
    for rule in api_rules(app):
        if rule.arguments and "GET" in rule.methods:
            assert customer_a.get(_url(rule, missing)).status_code == 404, rule.rule


def test_routes_without_ids_answer_own_data_or_403(customer_a, world):
    a, b = world.a.customer, world.b.customer
    customers = customer_a.get("/api/v1/customers").get_json()["items"]
    assert [c["id"] for c in customers] == [a.id]
    endpoints = customer_a.get("/api/v1/endpoints").get_json()["items"]
    assert {e["customer_id"] for e in endpoints} == {a.id}
    assert customer_a.get(f"/api/v1/endpoints?customer_id={b.id}").get_json()["items"] == []
    cdrs = customer_a.get("/api/v1/cdrs").get_json()["items"]
    assert sorted(c["id"] for c in cdrs) == sorted(world.a.cdr_ids)
    assert all("cost_amount" not in c and "provider" not in c and "customer" not in c for c in cdrs)
    problem_of(customer_a.get(f"/api/v1/cdrs?customer_id={b.id}"), 422, "refused")
    problem_of(customer_a.get("/api/v1/cdrs?provider_id=1"), 422, "refused")
    calls = customer_a.get("/api/v1/calls").get_json()
    assert [c["call_uuid"] for c in calls["items"]] == ["live-a"] and calls["count"] == 1
    assert customer_a.get(f"/api/v1/calls?customer_id={b.id}").get_json()["items"] == []
    invoices = customer_a.get("/api/v1/invoices").get_json()["items"]
    assert invoices and {i["customer_id"] for i in invoices} == {a.id}
    totals = customer_a.get("/api/v1/cdrs/totals").get_json()
    assert totals["calls"] == len(world.a.cdr_ids) and "cost" not in totals and "margin" not in totals
    for path in ("/api/v1/ratecards", "/api/v1/providers", "/api/v1/routing-rules", "/api/v1/exchange-rates"):
        problem_of(customer_a.get(path), 403, "insufficient_scope")
    for path, body in (("/api/v1/customers", {"name": "mine"}), ("/api/v1/ratecards", {"name": "mine"}),
                       ("/api/v1/endpoints", {"name": "mine"})):
        problem_of(customer_a.post(path, json=body), 403, "insufficient_scope")


def test_own_objects_are_readable_but_not_writable(customer_a, world):
    a = world.a
    assert customer_a.get(f"/api/v1/customers/{a.customer.id}").get_json()["balance"] == "125.460000"
    assert customer_a.get(f"/api/v1/endpoints/{a.sip.id}").status_code == 200
    assert customer_a.get(f"/api/v1/cdrs/{a.cdr_ids[0]}").status_code == 200
    assert customer_a.get(f"/api/v1/customers/{a.customer.id}/ledger").status_code == 200
    assert customer_a.get(f"/api/v1/customers/{a.customer.id}/rates").status_code == 200
    problem_of(customer_a.patch(f"/api/v1/customers/{a.customer.id}", json={"max_calls": 1}), 403,
               "insufficient_scope")
    problem_of(customer_a.post(f"/api/v1/customers/{a.customer.id}/ledger", json={"kind": "topup", "amount": "9"},
                               headers={"Idempotency-Key": "free-money"}), 403, "insufficient_scope")
    problem_of(customer_a.delete(f"/api/v1/endpoints/{a.ip.id}"), 403, "insufficient_scope")


def test_simulating_another_customers_source_is_404(customer_a, staff, world):
    b_call = {"source_ip": "203.0.113.99", "destination": "99912345678"}
    assert staff.post("/api/v1/simulate", json=b_call).get_json()["customer_id"] == world.b.customer.id
    problem_of(customer_a.post("/api/v1/simulate", json=b_call), 404, "not_found")
    own = customer_a.post("/api/v1/simulate", json={"source_ip": "198.51.100.7", "destination": "33123456789"})
    assert own.status_code == 200
    assert own.get_json()["customer_id"] == world.a.customer.id and "routes" not in own.get_json()
