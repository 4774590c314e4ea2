"""Benchmark of the operations pages (a script, not a test): prints its figures.

    python bench/portal.py [--dsn postgresql://postgres@127.0.0.1:5432/bench_portal]
                           [--cdrs 10000000] [--deck-rows 1000000] [--runs 40]

* Builds (or reuses) its own database with N CDRs generated in SQL with
  generate_series: one month of calls per partition, loaded into an unindexed table,
  then ATTACHed to billing.cdr (PostgreSQL builds each partition's indexes in one sort
  instead of N index insertions). A second run reuses the data.
* CDR browser: p50/p95 of the full page (Flask test client, logged-in admin: form
  choices, keyset query, template) for the first page, a deep page (via its cursor)
  and filtered pages; also the totals of a filtered month.
* Rate deck: a CSV of deck-rows prefixes imported end to end (COPY -> validate ->
  stage -> diff -> apply -> commit) into an empty ratecard, then a second deck with
  10 % changed, 5 % left out and 5 % new prefixes over the first, in replace mode (the
  5 % are closed; rolled back) and in update mode (the 5 % are kept); baseline in the
  same run: a plain COPY of the same file into an unindexed table.

The machine is shared and noisy: compare the ratios with the baseline, not absolute
figures across runs.
"""
from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from portal import dbmigrate  # noqa: E402

ADMIN = ("bench@example.net", "bench-password-1")
CUSTOMERS = 1000
PROVIDERS = 10


def admin_dsn(dsn: str) -> str:
    return dsn.rsplit("/", 1)[0] + "/postgres"


def ensure_database(dsn: str) -> None:
    name = dsn.rsplit("/", 1)[1].split("?")[0]
    conn = psycopg2.connect(admin_dsn(dsn))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    dbmigrate.upgrade(dsn)


def ensure_world(conn) -> None:
    """Customers, endpoints, providers, gateways, destinations, an admin (idempotent)."""
    from portal.security import hash_password

    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM billing.customers")
        if cur.fetchone()[0] >= CUSTOMERS:
            return
        cur.execute("INSERT INTO billing.weights (name) VALUES ('bench') RETURNING id")
        weight = cur.fetchone()[0]
        cur.execute("INSERT INTO billing.permissions (name) VALUES ('bench') RETURNING id")
        perm = cur.fetchone()[0]
        cur.execute("INSERT INTO billing.permission_weights VALUES (%s, %s)", (perm, weight))
        cur.execute("""INSERT INTO billing.destinations (prefix, name, weight_id)
                       SELECT p::text, 'Destination ' || p, %s FROM generate_series(10, 99) p""", (weight,))
        cur.execute("""INSERT INTO billing.customers (name) SELECT 'cust' || i FROM generate_series(1, %s) i""",
                    (CUSTOMERS,))
        cur.execute("""INSERT INTO billing.endpoints (customer_id, name, auth, ip, permission_id)
                       SELECT id, 'ep' || id, 'ip', ('10.' || (id / 256) || '.' || (id %% 256) || '.1/32')::cidr, %s
                         FROM billing.customers""", (perm,))
        cur.execute("INSERT INTO billing.providers (name) SELECT 'prov' || i FROM generate_series(1, %s) i", (PROVIDERS,))
        cur.execute("""INSERT INTO billing.gateways (provider_id, name, host)
                       SELECT id, 'gw' || id, '192.0.2.' || id FROM billing.providers""")
        cur.execute("INSERT INTO billing.users (email, password_hash, role) VALUES (%s, %s, 'admin') "
                    "ON CONFLICT DO NOTHING", (ADMIN[0], hash_password(ADMIN[1])))
    conn.commit()


def months_back(n: int) -> list[date]:
    first = datetime.now(timezone.utc).date().replace(day=1)
    months = []
    for _ in range(n):
        months.append(first)
        first = (first - timedelta(days=1)).replace(day=1)
    return sorted(months)


def ensure_cdrs(conn, total: int, months: int = 10) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM billing.cdr")
        have = cur.fetchone()[0]
    conn.commit()
    if have >= total:
        print(f"cdrs: reusing {have:,} rows")
        return
    if have:
        with conn.cursor() as cur:
            cur.execute("TRUNCATE billing.cdr")
        conn.commit()
    per_month = total // months
    t0 = time.perf_counter()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT min(id), max(id) FROM billing.customers")
        cmin, _ = cur.fetchone()
        cur.execute("SELECT min(id) FROM billing.endpoints")
        emin = cur.fetchone()[0]
        cur.execute("SELECT min(id) FROM billing.providers")
        pmin = cur.fetchone()[0]
        cur.execute("SET maintenance_work_mem = '256MB'")
        for m, month in enumerate(months_back(months)):
            nxt = (month + timedelta(days=32)).replace(day=1)
            name = f"cdr_{month:%Y_%m}"
            cur.execute("SELECT to_regclass(%s)", (f"billing.{name}",))
            if cur.fetchone()[0]:
                cur.execute("SELECT 1 FROM pg_inherits WHERE inhrelid = %s::regclass", (f"billing.{name}",))
                if cur.fetchone():
                    cur.execute(f"ALTER TABLE billing.cdr DETACH PARTITION billing.{name}")
                cur.execute(f"DROP TABLE billing.{name}")
            cur.execute(f"CREATE UNLOGGED TABLE billing.{name} (LIKE billing.cdr INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
            base = m * per_month
            seconds = int((nxt - month).total_seconds())
            cur.execute(f"""
                INSERT INTO billing.{name} (id, fs_cdr_id, uuid, customer_id, endpoint_id, provider_id, gateway,
                    caller_id, destination, sell_prefix, start_stamp, answer_stamp, end_stamp, duration, billsec,
                    billed_seconds, cost_billed_seconds, sell_rate, sell_amount, cost_rate, cost_amount, margin,
                    hangup_cause, route_seq, status, unrated_reason, rated_at)
                SELECT g.id, g.id, 'bench-' || g.id, %(cmin)s + c, %(emin)s + c, %(pmin)s + p, 'gw' || (%(pmin)s + p),
                       '100' || c, dest, left(dest, 4), st,
                       CASE WHEN bs > 0 THEN st + interval '4 seconds' END, st + (bs + 6) * interval '1 second',
                       bs + 6, bs, bs, bs, 0.02, round(bs * 0.02 / 60, 6), 0.012, round(bs * 0.012 / 60, 6),
                       round(bs * 0.02 / 60, 6) - round(bs * 0.012 / 60, 6),
                       CASE WHEN bs > 0 THEN 'NORMAL_CLEARING' ELSE 'NO_ANSWER' END, 1 + g.i %% 3,
                       CASE WHEN g.i %% 5000 = 0 THEN 'unrated' ELSE 'rated' END,
                       CASE WHEN g.i %% 5000 = 0 THEN 'no sell rate' END, st
                  FROM (SELECT i, %(base)s + i AS id FROM generate_series(1::bigint, %(n)s::bigint) i) g,
                       LATERAL (SELECT (g.i * 7919) %% %(customers)s AS c, (g.i * 31) %% %(providers)s AS p,
                                       CASE WHEN g.i %% 10 < 3 THEN 0 ELSE (g.i * 37) %% 900 + 1 END AS bs,
                                       (10 + (g.i * 13) %% 90)::text || lpad(((g.i * 104729) %% 10000000)::text, 7, '0') AS dest,
                                       %(month)s::timestamptz + (((g.i - 1)::bigint * %(seconds)s) / %(n)s) * interval '1 second' AS st) x
            """, {"cmin": cmin - 0, "emin": emin, "pmin": pmin, "customers": CUSTOMERS, "providers": PROVIDERS,
                  "base": base, "n": per_month, "seconds": seconds,
                  "month": datetime.combine(month, datetime.min.time(), timezone.utc)})
            cur.execute(f"ALTER TABLE billing.{name} SET LOGGED")
            cur.execute(f"ALTER TABLE billing.{name} ADD CONSTRAINT ck_{name}_range "
                        f"CHECK (start_stamp >= %s AND start_stamp < %s)",
                        (datetime.combine(month, datetime.min.time(), timezone.utc),
                         datetime.combine(nxt, datetime.min.time(), timezone.utc)))
            cur.execute(f"ALTER TABLE billing.cdr ATTACH PARTITION billing.{name} FOR VALUES FROM (%s) TO (%s)",
                        (datetime.combine(month, datetime.min.time(), timezone.utc),
                         datetime.combine(nxt, datetime.min.time(), timezone.utc)))
            cur.execute(f"ALTER TABLE billing.{name} DROP CONSTRAINT ck_{name}_range")
            print(f"  {name}: {per_month:,} rows, {time.perf_counter() - t0:.0f} s so far", flush=True)
        cur.execute("SELECT setval(pg_get_serial_sequence('billing.cdr', 'id'), %s)", (months * per_month + 1,))
        cur.execute("ANALYZE billing.cdr")
    conn.autocommit = False
    print(f"cdrs: generated {months * per_month:,} rows in {time.perf_counter() - t0:.0f} s")


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def timed_get(client, url: str, runs: int) -> dict:
    client.get(url)  # warm
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return {"p50": statistics.median(times), "p95": percentile(times, 0.95), "max": max(times)}


def bench_browser(dsn: str, runs: int) -> dict:
    from portal import create_app
    from portal.config import Config

    class BenchConfig(Config):
        SECRET_KEY = secrets.token_hex(32)
        WTF_CSRF_ENABLED = False

    app = create_app(BenchConfig, DATABASE_URL=dsn)
    client = app.test_client()
    assert client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1]}).status_code == 302
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM billing.customers ORDER BY id OFFSET 500 LIMIT 1")
        customer = cur.fetchone()[0]
        cur.execute("SELECT max(start_stamp) FROM billing.cdr")
        last = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM billing.cdr WHERE start_stamp > %s", (last - timedelta(days=40),))
        depth = min(500_000, cur.fetchone()[0] // 2)
        cur.execute("SELECT start_stamp, id FROM billing.cdr ORDER BY start_stamp DESC, id DESC OFFSET %s LIMIT 1", (depth,))
        deep = cur.fetchone()
        cur.execute("SELECT id, destination FROM billing.cdr WHERE start_stamp > %s ORDER BY start_stamp DESC LIMIT 1",
                    (last - timedelta(days=2),))
        recent_id, recent_destination = cur.fetchone()
    conn.close()
    month_from = (last.date().replace(day=1) - timedelta(days=1)).replace(day=1)
    from portal.cdrs.services import Cursor

    urls = {
        "first page (no filter)": "/admin/cdrs",
        f"deep page (cursor {depth:,} rows back)": f"/admin/cdrs?older={quote(Cursor(*deep).encode())}",
        "customer filter": f"/admin/cdrs?customer_id={customer}",
        "customer + month + answered": f"/admin/cdrs?customer_id={customer}&date_from={month_from}&date_to={last.date()}&answered=yes",
        "destination prefix 4412": "/admin/cdrs?prefix=4412",
        "provider + hangup cause": f"/admin/cdrs?provider_id={customer % PROVIDERS + 1}&hangup_cause=NO_ANSWER",
        "totals: customer, 2 months (JSON)": f"/admin/cdrs/totals?customer_id={customer}&date_from={month_from}&date_to={last.date()}",
        "totals: all customers, one day (JSON)": f"/admin/cdrs/totals?date_from={last.date()}&date_to={last.date()}",
        "number: caller or destination starts with 7 digits": f"/admin/cdrs?number={recent_destination[:7]}",
        "number: contains 6 digits, last 31 days": f"/admin/cdrs?number={recent_destination[-6:]}&match=contains",
        "call detail page": f"/admin/cdrs/{recent_id}",
    }
    results = {}
    for label, url in urls.items():
        results[label] = timed_get(client, url, runs)
        r = results[label]
        print(f"  {label:45s} p50 {r['p50']:7.1f} ms   p95 {r['p95']:7.1f} ms   max {r['max']:7.1f} ms", flush=True)
    with app.app_context():
        from portal.extensions import db
        db.engine.dispose()
    return results


def write_deck(path: str, rows: int, seed: int, change: bool = False) -> None:
    """rows unique prefixes; with `change`, 10 % get a new rate, 5 % dropped, 5 % new."""
    rnd = random.Random(seed)
    with open(path, "w") as f:
        f.write("prefix,rate,connect_fee,increment,destination\n")
        for i in range(rows):
            rate = f"0.{rnd.randint(1000, 99999):05d}"   # drawn first: same sequence in both decks
            if change and i % 20 == 0:
                continue                                   # removed
            prefix = str(10_000_000 + i * 7)
            if change and i % 10 == 1:
                rate = "0.123400"                          # changed
            f.write(f"{prefix},{rate},0,60/60,Bench {prefix[:4]}\n")
        if change:
            for i in range(rows // 20):
                f.write(f"{90_000_000 + i},0.0500,0,1/1,New {i}\n")   # new


def bench_import(dsn: str, rows: int) -> dict:
    from portal.rateimport import services

    tmp = tempfile.mkdtemp(prefix="bench_portal_")
    deck1, deck2 = os.path.join(tmp, "deck1.csv"), os.path.join(tmp, "deck2.csv")
    write_deck(deck1, rows, 1)
    write_deck(deck2, rows, 1, change=True)
    size = os.path.getsize(deck1) / 1e6
    conn = psycopg2.connect(dsn)
    results = {}
    with conn.cursor() as cur:
        cur.execute("INSERT INTO billing.ratecards (name) VALUES (%s) RETURNING id", (f"bench_{int(time.time())}",))
        card = cur.fetchone()[0]
    conn.commit()

    # Baseline: plain COPY of the same file into an unindexed table.
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_copy_baseline")
        cur.execute("CREATE UNLOGGED TABLE bench_copy_baseline (prefix text, rate text, connect_fee text, increment text, destination text)")
        conn.commit()
        t = time.perf_counter()
        with open(deck1) as f:
            cur.copy_expert("COPY bench_copy_baseline FROM STDIN WITH (FORMAT csv, HEADER true)", f)
        conn.commit()
        results["baseline COPY (unindexed, unlogged)"] = time.perf_counter() - t
        cur.execute("DROP TABLE bench_copy_baseline")
    conn.commit()

    mapping = services.ImportOptions(mapping={"prefix": 0, "rate": 1, "connect_fee": 2, "increment": 3,
                                              "destination_name": 4})
    effective1 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    effective2 = datetime(2026, 2, 1, tzinfo=timezone.utc)
    phases = {}

    def progress(phase, processed):
        phases.setdefault(phase, time.perf_counter())

    t = time.perf_counter()
    result = services.preview(conn, "ratecard", card, deck1, mapping, effective1, services.Progress(progress))
    conn.commit()
    results["preview deck 1 (validate + diff, rolled back)"] = time.perf_counter() - t
    assert result.counts == {"new": rows}, result.counts

    phases.clear()
    t = time.perf_counter()
    result = services.apply(conn, "ratecard", card, deck1, mapping, effective1, services.Progress(progress))
    conn.commit()
    results["import deck 1 into an empty ratecard"] = time.perf_counter() - t
    first_phases = {k: v - t for k, v in phases.items()}

    # Deck 2 in both modes over the same deck 1: replace (rolled back), then update.
    replace = services.ImportOptions(mapping=dict(mapping.mapping), mode="replace")
    t = time.perf_counter()
    planned = services.preview(conn, "ratecard", card, deck2, replace, effective2)
    conn.commit()
    results["preview deck 2, replace mode (rolled back)"] = time.perf_counter() - t
    t = time.perf_counter()
    result = services.apply(conn, "ratecard", card, deck2, replace, effective2,
                            confirm_removed=planned.counts.get("removed", 0))
    results["import deck 2 over deck 1, replace (10% changed, 5% removed, 5% new)"] = time.perf_counter() - t
    conn.rollback()
    print(f"  deck 2 changes, replace mode: {result.counts}")

    phases.clear()
    t = time.perf_counter()
    result = services.apply(conn, "ratecard", card, deck2, mapping, effective2, services.Progress(progress))
    conn.commit()
    results["import deck 2 over deck 1, update (10% changed, 5% kept, 5% new)"] = time.perf_counter() - t
    print(f"  deck 2 changes, update mode: {result.counts}")
    conn.close()
    print(f"  deck: {rows:,} lines, {size:.1f} MB; phase start offsets of deck 1: "
          + ", ".join(f"{k} {v:.1f}s" for k, v in first_phases.items()))
    for label, seconds in results.items():
        print(f"  {label:62s} {seconds:6.2f} s", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default=os.environ.get("BENCH_PORTAL_DSN", "postgresql://postgres@127.0.0.1:5432/bench_portal"))
    parser.add_argument("--cdrs", type=int, default=10_000_000)
    parser.add_argument("--deck-rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--skip-import", action="store_true")
    args = parser.parse_args()
    ensure_database(args.dsn)
    conn = psycopg2.connect(args.dsn)
    ensure_world(conn)
    ensure_cdrs(conn, args.cdrs)
    conn.close()
    if not args.skip_browser:
        print(f"CDR browser, {args.runs} requests each (full page through Flask):")
        bench_browser(args.dsn, args.runs)
    if not args.skip_import:
        print("Rate deck import:")
        bench_import(args.dsn, args.deck_rows)


if __name__ == "__main__":
    main()
