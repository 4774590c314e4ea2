"""A retried payment posts once, also when the retries arrive at the same moment on
several connections: the portal served by a real threaded server on a database of its
own, N clients with the same Idempotency-Key released together by a barrier."""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from decimal import Decimal

import psycopg2
import pytest

from portal import create_app
from portal.apitokens import services as tokens
from portal.config import TestingConfig
from portal.extensions import db
from portal.models import Customer
from tests.conftest import serving

CLIENTS = 8


@pytest.fixture()
def served(fresh_db):
    app = create_app(TestingConfig, DATABASE_URL=fresh_db)
    with app.app_context():
        customer = Customer(name="concurrent", billing_type="prepaid", currency="EUR")
        db.session.add(customer)
        db.session.flush()
        _row, token = tokens.issue("retries", "write", customer_id=None, expires_at=None, actor="tests")
        db.session.commit()
        customer_id = customer.id
    with serving(app) as base:
        yield base, token, customer_id, fresh_db


def _post(base: str, token: str, path: str, body: dict, key: str) -> tuple[int, dict, dict]:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def _together(n: int, work) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i):
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _ledger(url: str, customer_id: int) -> list[tuple]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT kind, amount, reference FROM billing.ledger WHERE customer_id = %s ORDER BY id",
                    (customer_id,))
        rows = cur.fetchall()
        cur.execute("SELECT balance FROM billing.customers WHERE id = %s", (customer_id,))
        return rows + [("balance", cur.fetchone()[0], None)]


@pytest.mark.slow
def test_concurrent_retries_with_one_key_post_once(served):
    base, token, customer_id, url = served
    body = {"kind": "payment", "amount": "42.10", "reference": "WIRE-9"}
    path = f"/api/v1/customers/{customer_id}/ledger"
    results = _together(CLIENTS, lambda i: _post(base, token, path, body, "wire-9-once"))
    assert [status for status, _, _ in results] == [201] * CLIENTS, results
    bodies = {json.dumps(b, sort_keys=True) for _, b, _ in results}
    assert len(bodies) == 1                                     # every retry got the first answer
    replayed = [h.get("Idempotent-Replayed") for _, _, h in results]
    assert replayed.count("true") == CLIENTS - 1
    assert _ledger(url, customer_id) == [("payment", Decimal("42.100000"), "WIRE-9"),
                                         ("balance", Decimal("42.100000"), None)]


@pytest.mark.slow
def test_concurrent_posts_with_their_own_keys_all_post(served):
    base, token, customer_id, url = served
    path = f"/api/v1/customers/{customer_id}/ledger"
    results = _together(CLIENTS, lambda i: _post(base, token, path, {"kind": "topup", "amount": "1.01"}, f"t-{i}"))
    assert [status for status, _, _ in results] == [201] * CLIENTS
    assert _ledger(url, customer_id)[-1] == ("balance", Decimal("1.01") * CLIENTS, None)


@pytest.mark.slow
def test_the_same_key_with_another_body_at_once_posts_one_of_them(served):
    base, token, customer_id, url = served
    path = f"/api/v1/customers/{customer_id}/ledger"
    amounts = ["5.00", "6.00"] * (CLIENTS // 2)
    results = _together(CLIENTS, lambda i: _post(base, token, path, {"kind": "topup", "amount": amounts[i]}, "mixed"))
    posted = [amounts[i] for i, (status, _, _) in enumerate(results) if status == 201]
    refused = [b for status, b, _ in results if status == 422]
    assert len(set(posted)) == 1 and len(posted) + len(refused) == CLIENTS
    assert all(b["code"] == "idempotency_key_reused" for b in refused)
    assert _ledger(url, customer_id)[-1] == ("balance", Decimal(posted[0]), None)


def test_api_writes_need_no_csrf_token_where_the_pages_do(fresh_db):
    """The API authenticates by bearer token, never by the session cookie, so it is exempt
    from the pages' CSRF protection; the pages keep it."""
    app = create_app(TestingConfig, DATABASE_URL=fresh_db, WTF_CSRF_ENABLED=True)
    with app.app_context():
        _row, token = tokens.issue("csrf", "write", customer_id=None, expires_at=None, actor="tests")
        db.session.commit()
    client = app.test_client()
    created = client.post("/api/v1/ratecards", json={"name": "csrf-free"}, headers={"Authorization": f"Bearer {token}"})
    assert created.status_code == 201, created.get_data(as_text=True)
    assert client.post("/login", data={"email": "x@example.net", "password": "y"}).status_code == 400
    with app.app_context():
        db.engine.dispose()
