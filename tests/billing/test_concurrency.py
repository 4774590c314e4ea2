"""Several connections at once, as several FreeSWITCH nodes would: nothing is billed
twice, nothing is lost, the ledger reconciles."""
from __future__ import annotations

import threading
from decimal import Decimal

import psycopg2

from tests.billing.conftest import balance, build_world_sql, ids_row, insert_cdr, scalar

THREADS = 6
CALLS_PER_THREAD = 25


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
                insert_cdr(conn, row)
                conn.commit()
        except Exception as exc:  # surfaced below; a failed INSERT is what must never happen
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=node, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    expected = sum(Decimal("0.02") * -(-r["billsec"] // 60) for r in rows)   # 60/60 increments
    assert scalar(admin, "SELECT count(*) FROM billing.fs_cdr") == len(rows)
    assert scalar(admin, "SELECT count(*) FROM billing.cdr") == len(rows)
    assert scalar(admin, "SELECT -sum(amount) FROM billing.ledger WHERE kind = 'call'") == expected
    assert balance(admin, ids.customer_id) == Decimal("100.00") - expected
    assert balance(admin, ids.customer_id) == scalar(
        admin, "SELECT sum(amount) FROM billing.ledger WHERE customer_id = %s", ids.customer_id)
    admin.close()
