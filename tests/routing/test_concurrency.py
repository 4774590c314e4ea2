"""Several connections at once, on a committed database of their own (fresh_db):
simultaneous calls of one prepaid customer never hold more than its funds nor exceed
max_calls; the FreeSWITCH role can route calls and read nothing."""
from __future__ import annotations

import threading
from decimal import Decimal

import psycopg2
import pytest
from psycopg2.extensions import make_dsn

CALLS = 50
SOURCE_IP = "192.0.2.10"


def build(url, balance, max_calls, max_call_seconds=60):
    """One customer, one endpoint, 33 at 0.06/min (60/60), one carrier. Committed."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("""
            UPDATE billing.settings SET max_call_seconds = %(cap)s;
            INSERT INTO billing.weights (name) VALUES ('intl');
            INSERT INTO billing.permissions (name) VALUES ('std');
            INSERT INTO billing.permission_weights SELECT p.id, w.id FROM billing.permissions p, billing.weights w;
            INSERT INTO billing.destinations (prefix, name, weight_id) SELECT '33', 'France', id FROM billing.weights;
            INSERT INTO billing.ratecards (name) VALUES ('rc');
            INSERT INTO billing.rates (ratecard_id, prefix, rate) SELECT id, '33', 0.06 FROM billing.ratecards;
            INSERT INTO billing.providers (name) VALUES ('carrier');
            INSERT INTO billing.gateways (provider_id, name, host) SELECT id, 'gw1', '192.0.2.1' FROM billing.providers;
            INSERT INTO billing.provider_rates (provider_id, prefix, rate) SELECT id, '33', 0.01 FROM billing.providers;
            INSERT INTO billing.customers (name, max_calls) VALUES ('racer', %(max_calls)s);
            INSERT INTO billing.ledger (customer_id, kind, amount) SELECT id, 'initial', %(balance)s FROM billing.customers;
            INSERT INTO billing.customer_ratecards SELECT c.id, r.id, 1 FROM billing.customers c, billing.ratecards r;
            INSERT INTO billing.endpoints (customer_id, name, auth, ip, permission_id)
                 SELECT c.id, 'racer-pbx', 'ip', %(ip)s, p.id FROM billing.customers c, billing.permissions p;
        """, {"cap": max_call_seconds, "max_calls": max_calls, "balance": Decimal(balance), "ip": SOURCE_IP + "/32"})


def race(url, calls=CALLS):
    """`calls` connections call route_call at the same moment; returns their first rows."""
    conns = [psycopg2.connect(url) for _ in range(calls)]
    for c in conns:
        c.autocommit = True
    barrier = threading.Barrier(calls)
    results, errors = [None] * calls, []

    def call(i):
        try:
            with conns[i].cursor() as cur:
                barrier.wait(timeout=30)
                cur.execute("SELECT ok, reason, max_duration FROM billing.route_call(%s, %s, NULL, '100', '33123456789')",
                            (f"race-{i}", SOURCE_IP))
                results[i] = cur.fetchone()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(calls)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for c in conns:
            c.close()
    assert errors == []
    return results


def held(url):
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), coalesce(sum(amount), 0), (SELECT balance FROM billing.customers) FROM billing.call_holds")
        return cur.fetchone()


def test_simultaneous_calls_never_hold_more_than_the_funds(fresh_db):
    build(fresh_db, balance="1.00", max_calls=None)       # 60 s at 0.06 = 0.06 per call: 16 fit
    results = race(fresh_db)
    ok = [r for r in results if r[0]]
    assert len(ok) == 16
    assert {r[1] for r in results if not r[0]} == {"insufficient_funds"}
    count, total, balance = held(fresh_db)
    assert count == 16 and total == Decimal("0.96") and total <= balance


def test_simultaneous_calls_never_exceed_max_calls(fresh_db):
    build(fresh_db, balance="100", max_calls=10)
    results = race(fresh_db)
    assert sum(1 for r in results if r[0]) == 10
    assert {r[1] for r in results if not r[0]} == {"too_many_calls"}
    assert held(fresh_db)[0] == 10


def test_freeswitch_role_can_route_but_not_read(fresh_db):
    build(fresh_db, balance="1.00", max_calls=None)
    conn = psycopg2.connect(make_dsn(fresh_db, user="billing_freeswitch"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user")
            assert cur.fetchone()[0] == "billing_freeswitch"
            cur.execute("SELECT ok, gateway FROM billing.route_call('fs-1', %s, NULL, '100', '33123456789')",
                        (SOURCE_IP,))
            assert cur.fetchall() == [(True, "gw1")]
            for forbidden in ("SELECT * FROM billing.customers",
                              "SELECT * FROM billing.call_holds",
                              "SELECT * FROM billing.route_preview('p', '192.0.2.10', NULL, '1', '33123')",
                              "SELECT * FROM billing_private.route_decide('p', '192.0.2.10', NULL, '1', '33123', true)"):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(forbidden)
    finally:
        conn.close()
    assert held(fresh_db)[0] == 1


def test_concurrent_reauthorizations_never_promise_more_than_the_funds(fresh_db):
    """CONTRACT 1b: 50 connections route 2,000 calls of one prepaid customer and
    re-authorize them while others still arrive; every call is then billed for one
    second more than it was granted. The sum of the charges never exceeds the balance.
    (bench/quotas.py runs the same with 10,000 calls.)"""
    build(fresh_db, balance="25.00", max_calls=None, max_call_seconds=3600)
    with psycopg2.connect(fresh_db) as conn, conn.cursor() as cur:
        cur.execute("UPDATE billing.settings SET quota_seconds = 60, reauth_margin_seconds = 5")
    workers, per_worker = 50, 40
    conns = [psycopg2.connect(fresh_db) for _ in range(workers)]
    for c in conns:
        c.autocommit = True
    grants: dict[str, int] = {}
    errors = []
    lock = threading.Lock()
    barrier = threading.Barrier(workers)

    def work(w):
        try:
            with conns[w].cursor() as cur:
                barrier.wait(timeout=30)
                mine = []
                for i in range(per_worker):
                    uuid = f"q-{w}-{i}"
                    cur.execute("SELECT ok, granted_seconds FROM billing.route_call(%s, %s, NULL, '1', '33123456789')",
                                (uuid, SOURCE_IP))
                    ok, granted = cur.fetchone()
                    if ok:
                        mine.append([uuid, granted])
                    # re-authorize every call of this worker once more, in turn
                    for call in mine[-3:]:
                        cur.execute("SELECT ok, granted_seconds FROM billing.reauthorize_call(%s, %s)",
                                    (call[0], call[1] - 5))
                        ok_more, total = cur.fetchone()
                        if ok_more:
                            call[1] = total
                with lock:
                    grants.update({u: g for u, g in mine})
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        for c in conns:
            c.close()
    assert errors == []
    count, total_held, balance = held(fresh_db)
    assert count == len(grants) > 100 and total_held <= balance == Decimal("25.00")
    with psycopg2.connect(fresh_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT c.id, e.id, p.id FROM billing.customers c, billing.endpoints e, billing.providers p")
        customer_id, endpoint_id, provider_id = cur.fetchone()
        for uuid, granted in grants.items():
            cur.execute("""INSERT INTO billing.fs_cdr (uuid, start_stamp, answer_stamp, end_stamp, duration, billsec,
                                                       billing_customer_id, billing_endpoint_id, billing_destination,
                                                       billing_provider_id, billing_gateway, hangup_cause)
                           VALUES (%s, now(), now(), now(), %s, %s, %s, %s, '33123456789', %s, 'gw1', 'NORMAL_CLEARING')""",
                        (uuid, granted + 1, granted + 1, customer_id, endpoint_id, provider_id))
        cur.execute("SELECT sum(sell_amount), (SELECT balance FROM billing.customers) FROM billing.cdr")
        charged, balance_after = cur.fetchone()
    assert charged <= Decimal("25.00") and balance_after >= 0
    assert balance_after == Decimal("25.00") - charged
