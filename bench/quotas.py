"""Credit in quotas (CONTRACT 1b): how many calls one prepaid customer can hold at once,
and whether 50 connections re-authorizing 10,000 calls at once ever promise more money
than there is.

    .venv/bin/python bench/quotas.py [--calls 10000] [--connections 50] [--quota 300]

On a database of its own (bench_quotas on DATABASE_URL's server):
1. 100.00 prepaid at 0.01/min (1/1): route_call until it refuses, with quota_seconds
   NULL (the whole max_duration held, revision 1) and with --quota: the calls that fit.
2. --connections connections route --calls calls of one customer (quota 60 s) and
   re-authorize each call twice as they go; then every call's CDR arrives one second
   longer than its last grant. Prints calls and re-authorizations per second, their p50 /
   p99, and checks that the holds never exceeded the balance and that the sum of the
   charges is within balance + credit limit (prepaid: balance >= 0).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.dataset import recreate_database  # noqa: E402

DB_NAME = "bench_quotas"


def fresh_database() -> str:
    url = recreate_database(DB_NAME)
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("""
            INSERT INTO billing.weights (name) VALUES ('intl');
            INSERT INTO billing.permissions (name) VALUES ('std');
            INSERT INTO billing.permission_weights SELECT p.id, w.id FROM billing.permissions p, billing.weights w;
            INSERT INTO billing.destinations (prefix, name, weight_id) SELECT '33', 'France', id FROM billing.weights;
            INSERT INTO billing.ratecards (name) VALUES ('rc');
            INSERT INTO billing.rates (ratecard_id, prefix, rate, increment_first, increment_next)
                 SELECT id, '33', 0.01, 1, 1 FROM billing.ratecards;
            INSERT INTO billing.providers (name) VALUES ('carrier');
            INSERT INTO billing.gateways (provider_id, name, host) SELECT id, 'gw1', '192.0.2.1' FROM billing.providers;
            INSERT INTO billing.provider_rates (provider_id, prefix, rate) SELECT id, '33', 0.005 FROM billing.providers;
            INSERT INTO billing.customers (name) VALUES ('wholesale');
            INSERT INTO billing.customer_ratecards SELECT c.id, r.id, 1 FROM billing.customers c, billing.ratecards r;
            INSERT INTO billing.endpoints (customer_id, name, auth, ip, permission_id)
                 SELECT c.id, 'wholesale-pbx', 'ip', '192.0.2.10/32', p.id FROM billing.customers c, billing.permissions p;
        """)
    return url


def reset(url: str, balance: str, quota: int | None, margin: int = 10) -> None:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE billing.call_holds")
        cur.execute("UPDATE billing.settings SET reauth_margin_seconds = least(%s, coalesce(%s, 1000000) - 1), "
                    "quota_seconds = %s, max_call_seconds = 14400", (margin, quota, quota))
        cur.execute("SELECT balance FROM billing.customers")
        current = cur.fetchone()[0]
        cur.execute("INSERT INTO billing.ledger (customer_id, kind, amount) SELECT id, 'adjustment', %s "
                    "FROM billing.customers", (Decimal(balance) - current,))


def simultaneous_calls(url: str, quota: int | None) -> int:
    reset(url, "100.00", quota)
    conn = psycopg2.connect(url)
    conn.autocommit = True
    placed = 0
    with conn.cursor() as cur:
        while True:
            cur.execute("SELECT ok FROM billing.route_call(%s, '192.0.2.10', NULL, '1', '33123456789')",
                        (f"s-{placed}",))
            if not cur.fetchone()[0]:
                break
            placed += 1
    conn.close()
    return placed


def race(url: str, calls: int, connections: int) -> None:
    reset(url, "100.00", 60, margin=5)
    conns = [psycopg2.connect(url) for _ in range(connections)]
    for c in conns:
        c.autocommit = True
    per = calls // connections
    grants: dict[str, int] = {}
    route_ms: list[float] = []
    reauth_ms: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(connections)
    errors: list[BaseException] = []
    refused = [0]

    def work(w: int) -> None:
        try:
            mine: list[list] = []
            timings_route, timings_reauth = [], []
            with conns[w].cursor() as cur:
                barrier.wait(timeout=60)
                for i in range(per):
                    t0 = time.perf_counter()
                    cur.execute("SELECT ok, granted_seconds FROM billing.route_call(%s, '192.0.2.10', NULL, '1',"
                                " '33123456789')", (f"r-{w}-{i}",))
                    ok, granted = cur.fetchone()
                    timings_route.append((time.perf_counter() - t0) * 1000)
                    if ok:
                        mine.append([f"r-{w}-{i}", granted, 0])
                    else:
                        with lock:
                            refused[0] += 1
                    for call in mine[-4:]:
                        if call[2] >= 2:
                            continue
                        t0 = time.perf_counter()
                        cur.execute("SELECT ok, granted_seconds FROM billing.reauthorize_call(%s, %s)",
                                    (call[0], call[1] - 5))
                        ok_more, total = cur.fetchone()
                        timings_reauth.append((time.perf_counter() - t0) * 1000)
                        call[2] += 1
                        if ok_more:
                            call[1] = total
            with lock:
                grants.update({u: g for u, g, _ in mine})
                route_ms.extend(timings_route)
                reauth_ms.extend(timings_reauth)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(connections)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    for c in conns:
        c.close()
    if errors:
        raise errors[0]
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT coalesce(sum(amount), 0), (SELECT balance FROM billing.customers) FROM billing.call_holds")
        held, balance = cur.fetchone()
        cur.execute("SELECT c.id, e.id, p.id FROM billing.customers c, billing.endpoints e, billing.providers p")
        customer_id, endpoint_id, provider_id = cur.fetchone()
        for uuid, granted in grants.items():
            cur.execute("""INSERT INTO billing.fs_cdr (uuid, start_stamp, answer_stamp, end_stamp, duration, billsec,
                                                       billing_customer_id, billing_endpoint_id, billing_destination,
                                                       billing_provider_id, billing_gateway, hangup_cause)
                           VALUES (%s, now(), now(), now(), %s, %s, %s, %s, '33123456789', %s, 'gw1',
                                   'NORMAL_CLEARING')""",
                        (uuid, granted + 1, granted + 1, customer_id, endpoint_id, provider_id))
        cur.execute("SELECT coalesce(sum(sell_amount), 0), sum(overrun_seconds), (SELECT balance FROM billing.customers) "
                    "FROM billing.cdr")
        charged, overrun, balance_after = cur.fetchone()

    def pct(values, p):
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0

    print(f"\n{connections} connections, {per * connections} route_calls, {len(reauth_ms)} re-authorizations "
          f"in {wall:.1f} s: {per * connections / wall:.0f} route_call/s, {len(reauth_ms) / wall:.0f} reauth/s")
    print(f"  route_call p50 {statistics.median(route_ms):.2f} ms, p99 {pct(route_ms, 99):.2f} ms; "
          f"reauthorize_call p50 {statistics.median(reauth_ms):.2f} ms, p99 {pct(reauth_ms, 99):.2f} ms")
    print(f"  calls routed {len(grants)}, refused {refused[0]} (funds); held at the end {held} of balance {balance}")
    print(f"  every call billed at its last grant + 1 s: charged {charged}, overrun {overrun} s, "
          f"balance after {balance_after}")
    assert held <= balance == Decimal("100.00"), "holds exceeded the balance"
    assert charged <= Decimal("100.00") and balance_after >= 0, "charges exceeded the funds"
    print("  invariant held: sum of charges <= balance + credit limit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--quota", type=int, default=300)
    args = parser.parse_args()
    url = fresh_database()
    whole = simultaneous_calls(url, None)
    quota = simultaneous_calls(url, args.quota)
    print(f"100.00 prepaid at 0.01/min: {whole} calls at once holding the whole call (4 h cap, revision 1), "
          f"{quota} with {args.quota} s quotas ({quota / max(whole, 1):.0f}x)")
    race(url, args.calls, args.connections)


if __name__ == "__main__":
    main()
