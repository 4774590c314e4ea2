"""Several connections at once, as several FreeSWITCH nodes would: nothing is billed
twice, nothing is lost, the ledger reconciles."""
from __future__ import annotations

import threading
from decimal import Decimal

import psycopg2

from tests.billing.conftest import balance, build_world_sql, ids_row, insert_cdr, scalar

THREADS = 6
CALLS_PER_THREAD = 25


def run_in_parallel(target, errors):
    """THREADS threads running target(k); an exception in one is an outcome to assert on."""
    def guarded(k):
        try:
            target(k)
        except Exception as exc:  # surfaced by the caller's `assert not errors`
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)


def test_parallel_cdr_inserts_with_redeliveries_reconcile(fresh_db):
    admin = psycopg2.connect(fresh_db)
    ids = build_world_sql(admin, balance_="100.00")
    rows = [ids_row(ids, billsec=(i % 7) * 20) for i in range(THREADS * CALLS_PER_THREAD)]
    errors = []

    def node(k):
        conn = psycopg2.connect(fresh_db)
        try:
            # every node also re-delivers its neighbour's calls: duplicates racing originals
            mine = rows[k::THREADS] + rows[(k + 1) % THREADS::THREADS]
            for row in mine:
                insert_cdr(conn, row)   # a failed INSERT is what must never happen
                conn.commit()
        finally:
            conn.close()

    run_in_parallel(node, errors)
    assert not errors, errors
    expected = sum(Decimal("0.02") * -(-r["billsec"] // 60) for r in rows)   # 60/60 increments
    assert scalar(admin, "SELECT count(*) FROM billing.fs_cdr") == len(rows)
    assert scalar(admin, "SELECT count(*) FROM billing.cdr") == len(rows)
    assert scalar(admin, "SELECT -sum(amount) FROM billing.ledger WHERE kind = 'call'") == expected
    assert balance(admin, ids.customer_id) == Decimal("100.00") - expected
    assert balance(admin, ids.customer_id) == scalar(
        admin, "SELECT sum(amount) FROM billing.ledger WHERE customer_id = %s", ids.customer_id)
    admin.close()


def test_parallel_route_call_and_cdrs_never_spend_more_than_the_money(fresh_db):
    """Six 'switches' set up and finish calls for one prepaid customer with 1.00 at
    0.02/min (60/60), calls capped at 5 minutes: most calls last as long as route_call
    allows (their max_duration), several overlap. The total charged can never exceed balance + credit limit."""
    import random
    import uuid as uuidlib

    admin = psycopg2.connect(fresh_db)
    ids = build_world_sql(admin, balance_="1.00")
    with admin.cursor() as cur:   # calls of at most 5 minutes (0.10): about ten fit in the money at once
        cur.execute("UPDATE billing.settings SET max_call_seconds = 300")
    admin.commit()
    outcomes, errors = [], []
    lock = threading.Lock()

    def switch(k):
        rng = random.Random(k)
        conn = psycopg2.connect(fresh_db)
        try:
            for _ in range(8):
                calls = []
                for _ in range(rng.randint(1, 3)):       # up to three calls in progress per switch
                    uid = str(uuidlib.uuid4())
                    with conn.cursor() as cur:
                        cur.execute("SELECT * FROM billing.route_call(%s, %s, NULL, '1000', '33123456789')",
                                    (uid, "198.51.100.7"))
                        names = [d.name for d in cur.description]
                        routes = [dict(zip(names, r)) for r in cur.fetchall()]
                    conn.commit()
                    with lock:
                        outcomes.append(routes[0]["reason"] or "ok")
                    if routes[0]["ok"]:
                        calls.append((uid, routes[0]))
                for uid, r in calls:
                    billsec = r["max_duration"] if rng.random() < 0.7 else rng.randint(0, r["max_duration"])
                    insert_cdr(conn, ids_row(ids, billsec=billsec, uuid=uid, billing_customer_id=r["customer_id"],
                                             billing_endpoint_id=r["endpoint_id"],
                                             billing_destination=r["destination"],
                                             billing_provider_id=r["provider_id"], billing_gateway=r["gateway"]))
                    conn.commit()
        finally:
            conn.close()

    run_in_parallel(switch, errors)
    assert not errors, errors
    charged = scalar(admin, "SELECT coalesce(-sum(amount), 0) FROM billing.ledger WHERE kind = 'call'")
    assert outcomes.count("ok") > 1 and "insufficient_funds" in outcomes, outcomes
    print(f"\noutcomes: ok={outcomes.count('ok')} refused={len(outcomes) - outcomes.count('ok')}, charged {charged}")
    assert Decimal("0") < charged <= Decimal("1.00")
    assert balance(admin, ids.customer_id) >= 0
    assert balance(admin, ids.customer_id) == scalar(
        admin, "SELECT sum(amount) FROM billing.ledger WHERE customer_id = %s", ids.customer_id)
    assert scalar(admin, "SELECT count(*) FROM billing.call_holds") == 0
    assert charged == scalar(admin, "SELECT sum(sell_amount) FROM billing.cdr WHERE status = 'rated'")
    admin.close()
