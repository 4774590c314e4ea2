#!/usr/bin/env python3
"""CDR billing throughput, side by side with pgbench -N on the same server, same run.

What it measures (figures go to docs/performance-cdr.md):

1. Row-at-a-time INSERTs into billing.fs_cdr, each its own transaction, from 2 and 4
   client processes -- what mod_cdr_pg_csv does at the end of every call (one
   connection per FreeSWITCH node, so 2 and 4 clients = 2 and 4 switches). The INSERT
   is a literal statement sent with the simple query protocol, as FreeSWITCH sends it.
   Every row is really billed by the trigger (sell + cost rating, cdr, ledger, hold
   release, month spend, gateway stats).
2. pgbench's builtin "simple update" (-N) with the same number of clients, right
   before each CDR run: the baseline of what this server does with small write
   transactions at that moment (other work on the machine moves both alike).
3. billing_private.rerate over --rerate-rows raw CDRs (default 1,000,000): first pass
   (rows loaded without the trigger, so every call is rated and booked from scratch),
   a pass after a price change of every rate, and a pass with nothing to change.

Usage: python bench/cdr.py [--dsn postgresql://postgres@127.0.0.1:5432/bench_cdr]
                           [--seconds 15] [--rerate-rows 1000000] [--skip-rerate]
The database is created if missing and migrated with the project's runner. The data
set comes from bench/dataset.py (the routing benchmark's) when present, otherwise from
the built-in generator below (same shape: many customers, ratecards and carriers).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import re
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from portal import dbmigrate  # noqa: E402

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/bench_cdr"


def server_dsn(dsn: str, dbname: str = "postgres") -> str:
    p = urlsplit(dsn)
    return urlunsplit((p.scheme, p.netloc, "/" + dbname, p.query, p.fragment))


def ensure_database(dsn: str) -> None:
    name = urlsplit(dsn).path.lstrip("/")
    conn = psycopg2.connect(server_dsn(dsn))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if not cur.fetchone():
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    dbmigrate.upgrade(dsn)


# --------------------------------------------------------------------------- data set

def builtin_dataset(dsn: str) -> None:
    """500 customers on 5 ratecards of 4,000 prefixes; 20 carriers x 2 gateways with
    4,000 prefixes each. Idempotent: does nothing when the customers exist."""
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM billing.customers WHERE name LIKE 'bc%'")
        if cur.fetchone()[0]:
            return
        cur.execute("""
            INSERT INTO billing.weights (name) VALUES ('bench') ON CONFLICT DO NOTHING;
            INSERT INTO billing.permissions (name) VALUES ('bench') ON CONFLICT DO NOTHING;
            INSERT INTO billing.permission_weights
                 SELECT p.id, w.id FROM billing.permissions p, billing.weights w
                  WHERE p.name = 'bench' AND w.name = 'bench' ON CONFLICT DO NOTHING;
            INSERT INTO billing.ratecards (name) SELECT 'brc' || i FROM generate_series(1, 5) i;
            -- country codes 1..99 and 4,000 longer prefixes below them
            CREATE TEMP TABLE bench_prefixes AS
                SELECT DISTINCT p FROM (
                    SELECT (10 + (random() * 89)::int)::text AS p FROM generate_series(1, 89)
                    UNION ALL
                    SELECT (10 + (random() * 89)::int)::text || lpad((random() * 99999)::int::text, 1 + (random() * 4)::int, '0')
                      FROM generate_series(1, 4000)) x;
            INSERT INTO billing.rates (ratecard_id, prefix, rate, connect_fee, increment_first, increment_next)
                 SELECT rc.id, p.p, round((0.005 + random() * 0.2)::numeric, 4), 0, 60, 60
                   FROM billing.ratecards rc, bench_prefixes p WHERE rc.name LIKE 'brc%'
                 ON CONFLICT DO NOTHING;
            INSERT INTO billing.providers (name, priority) SELECT 'bprov' || i, i FROM generate_series(1, 20) i;
            INSERT INTO billing.gateways (provider_id, name, host)
                 SELECT pr.id, pr.name || '_gw' || g, '192.0.2.' || (pr.id % 250 + 1)
                   FROM billing.providers pr, generate_series(1, 2) g WHERE pr.name LIKE 'bprov%';
            INSERT INTO billing.provider_rates (provider_id, prefix, rate, increment_first, increment_next)
                 SELECT pr.id, p.p, round((0.001 + random() * 0.1)::numeric, 4), 1, 1
                   FROM billing.providers pr, bench_prefixes p WHERE pr.name LIKE 'bprov%'
                 ON CONFLICT DO NOTHING;
            INSERT INTO billing.customers (name, billing_type, credit_limit, low_balance_alert)
                 SELECT 'bc' || i, 'postpaid', 1000000, 100 FROM generate_series(1, 500) i;
            INSERT INTO billing.customer_ratecards (customer_id, ratecard_id, priority)
                 SELECT c.id, (SELECT id FROM billing.ratecards WHERE name = 'brc' || (1 + c.id % 5)), 1
                   FROM billing.customers c WHERE c.name LIKE 'bc%';
            INSERT INTO billing.ledger (customer_id, kind, amount)
                 SELECT id, 'initial', 100000 FROM billing.customers WHERE name LIKE 'bc%';
            INSERT INTO billing.endpoints (customer_id, name, auth, ip, permission_id)
                 SELECT c.id, c.name || '_ep', 'ip', ('10.' || (c.id / 250) || '.' || (c.id % 250) || '.1/32')::cidr,
                        (SELECT id FROM billing.permissions WHERE name = 'bench')
                   FROM billing.customers c WHERE c.name LIKE 'bc%';
            ANALYZE;
        """)
    conn.close()


def load_world(dsn: str):
    """(customer_id, endpoint_id, [(prefix)], [(provider_id, gateway)]) for generating CDRs."""
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT c.id, min(e.id) FROM billing.customers c JOIN billing.endpoints e ON e.customer_id = c.id "
                    "JOIN billing.customer_ratecards cr ON cr.customer_id = c.id GROUP BY c.id")
        customers = cur.fetchall()
        cur.execute("SELECT DISTINCT prefix FROM billing.rates")
        prefixes = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT g.provider_id, g.name FROM billing.gateways g")
        gateways = cur.fetchall()
    conn.close()
    return customers, prefixes, gateways


def fake_cdr(rng: random.Random, world, start: datetime) -> dict:
    customers, prefixes, gateways = world
    cust, ep = rng.choice(customers)
    prov, gw = rng.choice(gateways)
    number = rng.choice(prefixes) + "".join(rng.choice("0123456789") for _ in range(6))
    number = number[:15]
    answered = rng.random() < 0.6
    billsec = rng.randint(1, 600) if answered else 0
    ring = rng.randint(2, 20)
    return {
        "uuid": str(uuid.UUID(int=rng.getrandbits(128))), "caller_id_number": "1000", "destination_number": number,
        "start_stamp": start.isoformat(), "answer_stamp": (start + timedelta(seconds=ring)).isoformat() if answered else None,
        "end_stamp": (start + timedelta(seconds=ring + billsec)).isoformat(), "duration": ring + billsec,
        "billsec": billsec, "hangup_cause": "NORMAL_CLEARING" if answered else "NO_ANSWER",
        "sip_hangup_disposition": "send_bye", "billing_customer_id": cust, "billing_endpoint_id": ep,
        "billing_destination": number, "billing_route_seq": 1, "billing_gateway": gw, "billing_provider_id": prov,
    }


def insert_statement(cur, row: dict) -> bytes:
    """One raw CDR as mod_cdr_pg_csv sends it: a literal INSERT (cur only quotes)."""
    cols = list(row)
    return cur.mogrify(f"INSERT INTO billing.fs_cdr ({','.join(cols)}) VALUES ({','.join(['%s'] * len(cols))})",
                       [row[c] for c in cols])


# --------------------------------------------------------------------------- CDR inserts

PREBUILT_PER_SECOND = 2500   # per client; more than one connection can insert


def _cdr_worker(dsn, world, seconds, seed, barrier, out):
    rng = random.Random(seed)
    conn = psycopg2.connect(dsn)
    conn.autocommit = True   # each INSERT its own transaction, as FreeSWITCH does
    cur = conn.cursor()
    base = datetime.now(timezone.utc).replace(microsecond=0)

    def statement() -> bytes:
        return insert_statement(cur, fake_cdr(rng, world, base - timedelta(seconds=rng.randint(0, 86400))))

    # The statements are written before the clock starts, so that the client's Python
    # (~40 us per CDR) does not take CPU from the server on the same two cores: the
    # switch builds its CDRs on its own machine, and pgbench's client is that cheap.
    ready = [statement() for _ in range(seconds * PREBUILT_PER_SECOND)]
    cpu0 = backend_cpu_seconds(conn)
    barrier.wait()
    done, t_end = 0, time.monotonic() + seconds
    latencies = []
    while time.monotonic() < t_end:
        sql = ready[done] if done < len(ready) else statement()
        t0 = time.perf_counter()
        cur.execute(sql)
        latencies.append(time.perf_counter() - t0)
        done += 1
    cpu1 = backend_cpu_seconds(conn)
    cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else float("nan")
    conn.close()
    latencies.sort()
    out.put((done, latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)], cpu))


def run_cdr(dsn, world, clients, seconds):
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(clients + 1), ctx.Queue()
    procs = [ctx.Process(target=_cdr_worker, args=(dsn, world, seconds, 1000 + k + int(time.time()), barrier, out))
             for k in range(clients)]
    for p in procs:
        p.start()
    barrier.wait()
    t0 = time.monotonic()
    results = [out.get() for _ in procs]
    elapsed = time.monotonic() - t0
    for p in procs:
        p.join()
    total = sum(r[0] for r in results)
    cpu_per_cdr = sum(r[3] for r in results) / max(total, 1)
    return total / max(elapsed, seconds), max(r[1] for r in results), max(r[2] for r in results), cpu_per_cdr


def pgbench_env(dsn):
    p = urlsplit(dsn)
    env = dict(os.environ, PGHOST=p.hostname or "127.0.0.1", PGPORT=str(p.port or 5432),
               PGUSER=p.username or "postgres", PGDATABASE=p.path.lstrip("/"))
    if p.password:
        env["PGPASSWORD"] = p.password
    return env


def pgbench_init(dsn, scale=10):
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('public.pgbench_accounts') IS NOT NULL")
        exists = cur.fetchone()[0]
    conn.close()
    if not exists:
        subprocess.run(["pgbench", "-i", "-q", "-s", str(scale)], env=pgbench_env(dsn), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_pgbench(dsn, clients, seconds):
    out = subprocess.run(["pgbench", "-N", "-n", "-c", str(clients), "-j", str(clients), "-T", str(seconds)],
                         env=pgbench_env(dsn), check=True, capture_output=True, text=True).stdout
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out) or re.search(r"tps = ([0-9.]+)", out)
    return float(match.group(1))


# --------------------------------------------------------------------------- rerate

def bulk_load(dsn, world, rows, start, end):
    """rows raw CDRs between start and end, loaded with the trigger disabled (COPY)."""
    import io
    rng = random.Random(7)
    conn = psycopg2.connect(dsn)
    cols = ["uuid", "caller_id_number", "destination_number", "start_stamp", "answer_stamp", "end_stamp",
            "duration", "billsec", "hangup_cause", "sip_hangup_disposition", "billing_customer_id",
            "billing_endpoint_id", "billing_destination", "billing_route_seq", "billing_gateway",
            "billing_provider_id"]
    span = (end - start).total_seconds()
    with conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE billing.fs_cdr DISABLE TRIGGER tg_fs_cdr__bill")
        chunk = 100_000
        for offset in range(0, rows, chunk):
            buf = io.StringIO()
            for _ in range(min(chunk, rows - offset)):
                r = fake_cdr(rng, world, start + timedelta(seconds=rng.random() * span))
                buf.write("\t".join("\\N" if r[c] is None else str(r[c]) for c in cols) + "\n")
            buf.seek(0)
            cur.copy_expert(f"COPY billing.fs_cdr ({', '.join(cols)}) FROM STDIN", buf)
        cur.execute("ALTER TABLE billing.fs_cdr ENABLE TRIGGER tg_fs_cdr__bill")
    with conn.cursor() as cur:
        conn.autocommit = True
        cur.execute("VACUUM ANALYZE billing.fs_cdr")
    conn.close()


def backend_cpu_seconds(conn) -> float | None:
    """CPU time used so far by this connection's server process (same machine only):
    on a shared, busy machine it says what the work costs, whatever the wall clock."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vacuum_period(dsn):
    """VACUUM the CDR tables before a timed re-rate, as autovacuum would have done since
    the previous pass on a maintained server (autovacuum may be off on a benchmark
    machine): a re-rate updates every row, and the dead versions of the previous pass
    would otherwise fill the room the partition keeps for in-place (HOT) updates."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT c.oid::regclass::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'billing.cdr'::regclass")
        for (partition,) in cur.fetchall():
            cur.execute(f"VACUUM (ANALYZE) {partition}")
        cur.execute("VACUUM (ANALYZE) billing.fs_cdr")
        cur.execute("VACUUM (ANALYZE) billing.ledger")
    conn.close()


def timed_rerate(dsn, start, end):
    vacuum_period(dsn)
    conn = psycopg2.connect(dsn)
    cpu0 = backend_cpu_seconds(conn)
    t0 = time.monotonic()
    with conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM billing_private.rerate(%s, %s)", (start, end))
        result = cur.fetchone()
    elapsed = time.monotonic() - t0
    cpu = backend_cpu_seconds(conn)
    conn.close()
    return elapsed, (cpu - cpu0 if cpu is not None and cpu0 is not None else float("nan")), result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", default=os.environ.get("BENCH_CDR_DSN", DEFAULT_DSN))
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--clients", default="2,4", help="comma separated; empty to skip the insert runs")
    ap.add_argument("--rerate-rows", type=int, default=1_000_000)
    ap.add_argument("--skip-rerate", action="store_true")
    args = ap.parse_args()

    ensure_database(args.dsn)
    try:
        from bench.dataset import ensure_dataset  # the routing benchmark's data set
    except ImportError:
        ensure_dataset = builtin_dataset
    ensure_dataset(args.dsn)
    world = load_world(args.dsn)
    print(f"data set: {len(world[0])} customers, {len(world[1])} sell prefixes, {len(world[2])} gateways")
    pgbench_init(args.dsn)

    print(f"\n{'clients':>7} {'pgbench -N tps':>15} {'CDRs/s':>9} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'server CPU ms/CDR':>18}")
    for clients in (int(c) for c in args.clients.split(",") if c.strip()):
        tps = run_pgbench(args.dsn, clients, args.seconds)
        rate, p50, p99, cpu = run_cdr(args.dsn, world, clients, args.seconds)
        print(f"{clients:>7} {tps:>15.0f} {rate:>9.0f} {rate / tps:>6.2f} {p50 * 1000:>7.2f} {p99 * 1000:>7.2f} "
              f"{cpu * 1000:>18.3f}", flush=True)

    if args.skip_rerate:
        return
    # A period of its own (last month) so the live-insert rows above are not included.
    end = datetime.now(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (end - timedelta(days=1)).replace(day=1)
    conn = psycopg2.connect(args.dsn)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM billing.fs_cdr WHERE start_stamp >= %s AND start_stamp < %s", (start, end))
        have = cur.fetchone()[0]
    conn.close()
    if have < args.rerate_rows:
        t0 = time.monotonic()
        bulk_load(args.dsn, world, args.rerate_rows - have, start, end)
        print(f"\nloaded {args.rerate_rows - have} raw CDRs in {time.monotonic() - t0:.1f} s (COPY, trigger off)")
    def report(label):
        elapsed, cpu, result = timed_rerate(args.dsn, start, end)
        print(f"rerate {label}: {elapsed:6.1f} s wall, {cpu:6.1f} s server CPU; "
              f"rerated/adjusted/still unrated = {result}", flush=True)

    report("pass 1 (nothing rated yet) ")
    conn = psycopg2.connect(args.dsn)
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE billing.rates SET rate = rate + 0.0010")
    conn.close()
    report("pass 2 (every rate changed)")
    report("pass 3 (nothing changed)   ")


if __name__ == "__main__":
    main()
