"""Self-care page queries on a customer with many calls: prints timings.

    .venv/bin/python bench/selfcare.py [ROWS]      (default 300000 calls)

Builds its own database `bench_selfcare` (dropped and recreated), one big customer
with ROWS CDRs and as many ledger rows spread over 90 days, and a neighbour customer
with the same volume, then times each self-care query (median of 5 runs). The
baseline is `SELECT count(*)` over the customer's CDRs, measured in the same run:
ratios against it are what to compare between machines.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg2  # noqa: E402

from portal import dbapi, dbmigrate  # noqa: E402
from portal.cdrs import services as cdrs  # noqa: E402
from portal.customers import services as customers  # noqa: E402
from portal.ledger import services as ledger  # noqa: E402
from portal.rates import services as rates  # noqa: E402

SERVER = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres").rsplit("/", 1)[0]
NAME = "bench_selfcare"
ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000


def setup() -> str:
    conn = psycopg2.connect(SERVER + "/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {NAME}")
    conn.close()
    url = f"{SERVER}/{NAME}"
    dbmigrate.upgrade(url)
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute("""
            INSERT INTO billing.weights (name) VALUES ('intl');
            INSERT INTO billing.permissions (name) VALUES ('all');
            INSERT INTO billing.destinations (prefix, name, weight_id)
                 SELECT (10 + i)::text, 'Country ' || i, 1 FROM generate_series(1, 89) i;
            INSERT INTO billing.ratecards (name) VALUES ('big');
            INSERT INTO billing.rates (ratecard_id, prefix, rate)
                 SELECT 1, (10 + mod(i, 89))::text || lpad((i / 89)::text, 3, '0'), 0.01 + (mod(i, 50)) / 1000.0
                   FROM generate_series(0, 19999) i;
            INSERT INTO billing.customers (name) VALUES ('big'), ('neighbour');
            INSERT INTO billing.customer_ratecards VALUES (1, 1, 1), (2, 1, 1);
            INSERT INTO billing.endpoints (customer_id, name, auth, ip, permission_id)
                 VALUES (1, 'big-pbx', 'ip', '198.51.100.1/32', 1), (2, 'n-pbx', 'ip', '198.51.100.2/32', 1);
            INSERT INTO billing.ledger (customer_id, kind, amount, created_at)
                 VALUES (1, 'initial', 100000, now() - interval '91 days'), (2, 'initial', 100000, now() - interval '91 days');
        """)
        # Bulk load without the per-row balance trigger (one UPDATE per ledger row would
        # make this quadratic); the balances are set from the ledger's sum afterwards.
        cur.execute("SET session_replication_role = replica")
        for customer in (1, 2):
            cur.execute("""
                INSERT INTO billing.cdr (fs_cdr_id, uuid, customer_id, endpoint_id, destination, start_stamp,
                                         billsec, billed_seconds, sell_rate, sell_amount)
                SELECT i, %(c)s || '-' || i, %(c)s, %(c)s, (10 + mod(i, 89))::text || '1234567',
                       now() - (i * (interval '90 days' / %(n)s)), mod(i, 300), (mod(i, 300) + 59) / 60 * 60, 0.02,
                       ((mod(i, 300) + 59) / 60) * 0.02
                  FROM generate_series(1, %(n)s) i""", {"c": customer, "n": ROWS})
            cur.execute("""
                INSERT INTO billing.ledger (customer_id, kind, amount, call_uuid, created_at)
                SELECT %(c)s, 'call', -(((mod(i, 300) + 59) / 60) * 0.02 + 0.000001), %(c)s || '-' || i,
                       now() - (i * (interval '90 days' / %(n)s))
                  FROM generate_series(1, %(n)s) i""", {"c": customer, "n": ROWS})
        cur.execute("UPDATE billing.customers c SET balance = (SELECT sum(amount) FROM billing.ledger l "
                    "WHERE l.customer_id = c.id)")
        cur.execute("SET session_replication_role = origin")
        cur.execute("ANALYZE")
    conn.close()
    return url


def timed(conn, fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        conn.rollback()
    return statistics.median(times) * 1000


def main():
    t = time.perf_counter()
    url = setup()
    print(f"setup: {ROWS} calls and ledger rows per customer, 2 customers, {time.perf_counter() - t:.0f} s")
    # The services take a DB-API connection: no Flask app is needed to ask them.
    conn = psycopg2.connect(url)
    try:
        today = dbapi.today(conn)
        month = cdrs.CdrFilter(date_from=today.replace(day=1), zone=None)
        everything = cdrs.CdrFilter(zone=None)
        scope = {"customer_id": 1}
        deep = cdrs.page(conn, everything, **scope).older
        for _ in range(20):  # 20 pages down
            deep = cdrs.page(conn, everything, older_than=deep.encode(), **scope).older
        since = lambda days: ledger.LedgerFilter(date_from=today - timedelta(days=days))  # noqa: E731
        cases = {
            "baseline: count(*) of the customer's CDRs": lambda: dbapi.fetch_value(
                conn, "SELECT count(*) FROM billing.cdr WHERE customer_id = 1"),
            "overview: funds": lambda: customers.funds(conn, 1),
            "overview: month summary": lambda: cdrs.totals(conn, month, **scope),
            "overview: recent calls": lambda: cdrs.recent(conn, **scope),
            "calls: first page": lambda: cdrs.page(conn, month, **scope),
            "calls: page 21 (keyset)": lambda: cdrs.page(conn, everything, older_than=deep.encode(), **scope),
            "calls: totals this month": lambda: cdrs.totals(conn, month, **scope),
            "calls: totals all 90 days": lambda: cdrs.totals(conn, everything, **scope),
            "calls: prefix filter page": lambda: cdrs.page(conn, cdrs.CdrFilter(prefix="55", zone=None), **scope),
            "ledger: first page": lambda: ledger.entries(conn, 1),
            "ledger: page 200 (offset)": lambda: ledger.entries(conn, 1, page=200),
            "ledger: last 7 days": lambda: ledger.entries(conn, 1, since(7)),
            "ledger: per day, 90 days": lambda: ledger.days(conn, 1),
            "ledger: period summary 30 days": lambda: ledger.period(conn, 1, since(30)),
            "rates: first page (20000 prefixes)": lambda: rates.applied(conn, 1),
            "rates: name search": lambda: rates.applied(conn, 1, "Country 7"),
            "rates: CSV all prefixes": lambda: sum(len(b) for b in rates.export(1).batches(conn)),
            "calls: CSV this month": lambda: sum(len(b) for b in cdrs.export(month, **scope).batches(conn)),
        }
        results = {name: timed(conn, fn, 3 if "CSV" in name or "all 90" in name else 5) for name, fn in cases.items()}
        base = results["baseline: count(*) of the customer's CDRs"]
        print(f"{'query':45} {'ms':>9} {'x baseline':>11}")
        for name, ms in results.items():
            print(f"{name:45} {ms:9.1f} {ms / base:11.2f}")
    finally:
        conn.close()


if __name__ == "__main__":
    main()
