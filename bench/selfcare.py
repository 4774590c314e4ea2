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
import secrets
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg2  # noqa: E402

from portal import create_app, dbmigrate  # noqa: E402
from portal.config import Config  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.selfcare import _services as s  # noqa: E402

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


def timed(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        db.session.rollback()
    return statistics.median(times) * 1000


def main():
    t = time.perf_counter()
    url = setup()
    print(f"setup: {ROWS} calls and ledger rows per customer, 2 customers, {time.perf_counter() - t:.0f} s")
    app = create_app(Config, DATABASE_URL=url, SECRET_KEY=secrets.token_hex(32))
    with app.app_context():
        from datetime import timedelta
        from sqlalchemy import text

        today = s.today()
        month = s.CdrFilter(date_from=today.replace(day=1))
        everything = s.CdrFilter()
        _, older, _ = s.cdr_page(1, everything)
        deep = None
        for _ in range(20):  # 20 pages down
            _, deep, _ = s.cdr_page(1, everything, before=deep or older)
        cases = {
            "baseline: count(*) of the customer's CDRs": lambda: db.session.execute(
                text("SELECT count(*) FROM billing.cdr WHERE customer_id = 1")).scalar(),
            "overview: funds": lambda: s.funds(1),
            "overview: month summary": lambda: s.month_summary(1),
            "overview: recent calls": lambda: s.recent_calls(1),
            "calls: first page": lambda: s.cdr_page(1, month),
            "calls: page 21 (keyset)": lambda: s.cdr_page(1, everything, before=deep),
            "calls: totals this month": lambda: s.cdr_totals(1, month),
            "calls: totals all 90 days": lambda: s.cdr_totals(1, everything),
            "calls: prefix filter page": lambda: s.cdr_page(1, s.CdrFilter(prefix="55")),
            "ledger: first page": lambda: s.ledger_page(1),
            "ledger: page 200 (offset)": lambda: s.ledger_page(1, page=200),
            "ledger: last 7 days": lambda: s.ledger_page(1, date_from=today - timedelta(days=7)),
            "ledger: per day, 90 days": lambda: s.ledger_days(1),
            "ledger: period summary 30 days": lambda: s.ledger_period(1, date_from=today - timedelta(days=30)),
            "rates: first page (20000 prefixes)": lambda: s.rates_page(1),
            "rates: name search": lambda: s.rates_page(1, "Country 7"),
            "rates: CSV all prefixes": lambda: sum(len(b) for b in s.iter_rates(1)),
            "calls: CSV this month": lambda: sum(len(b) for b in s.iter_cdrs(1, month)),
        }
        results = {name: timed(fn, 3 if "CSV" in name or "all 90" in name else 5) for name, fn in cases.items()}
        base = results["baseline: count(*) of the customer's CDRs"]
        print(f"{'query':45} {'ms':>9} {'x baseline':>11}")
        for name, ms in results.items():
            print(f"{name:45} {ms:9.1f} {ms / base:11.2f}")
    with app.app_context():
        db.engine.dispose()


if __name__ == "__main__":
    main()
