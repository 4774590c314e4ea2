"""Benchmark of the REST API under concurrent clients (a script, not a test): prints
p50/p95 of each request and the load average of the machine around the runs.

    python bench/api.py [--dsn postgresql://postgres@127.0.0.1:5432/bench_portal]
                        [--cdrs 10000000] [--clients 8] [--requests 200] [--workers 2 --threads 4]

* Data: bench/portal.py's database (10M CDRs over 10 monthly partitions, 1,000
  customers), built or reused the same way.
* Server: the portal under gunicorn (gthread, --workers x --threads, 8 concurrent
  requests by default) on a free port of 127.0.0.1, as deploy/ runs it minus nginx.
* Clients: --clients threads, each with its own keep-alive HTTP connection, released
  together, each sending --requests requests; every answer must be 200/201.
  - CDR pages of 100: the first page without filter, a customer's calls, and the next
    page through a cursor from 500,000 calls back (keyset: the same range scan).
  - Ledger posts: top-ups, each with its own Idempotency-Key, spread over the 1,000
    customers (and, separately, all on one customer: its balance row serialises them).
* Targets (issue #13): CDR page p95 <= 50 ms at 10M CDRs, ledger post p95 <= 20 ms.

The machine is shared and has 2 cores: the load average is printed with the figures.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.portal import ensure_cdrs, ensure_database, ensure_world, percentile  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_token(dsn: str) -> str:
    """A write token for the run (its row stays; revoked at the end)."""
    import hashlib

    token = "vbk_" + secrets.token_urlsafe(32)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("""INSERT INTO billing.api_tokens (name, token_prefix, token_hash, scope, created_by)
                       VALUES ('bench/api.py', %s, %s, 'write', 'bench')""",
                    (token[:12], hashlib.sha256(token.encode()).digest()))
    return token


def revoke_tokens(dsn: str) -> None:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("UPDATE billing.api_tokens SET revoked_at = now(), revoked_by = 'bench' "
                    "WHERE name = 'bench/api.py' AND revoked_at IS NULL")


def start_server(dsn: str, port: int, workers: int, threads: int) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=dsn, SECRET_KEY=secrets.token_hex(32), API_RATE_LIMIT_PER_MINUTE="100000000",
               PYTHONPATH=str(ROOT))
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--threads", str(threads), "--worker-class", "gthread", "--keep-alive", "30", "--log-level", "warning",
         "wsgi:app"], cwd=ROOT, env=env, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/openapi.json")
            if conn.getresponse().status == 200:
                conn.close()
                return server
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise RuntimeError("gunicorn did not start")


def stop_server(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)


def run(port: int, token: str, clients: int, requests: int, make_request) -> dict:
    """`clients` threads x `requests` requests of make_request(client, n) -> (method, path, body, headers)."""
    barrier = threading.Barrier(clients)
    times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        local = []
        method, path, body, headers = make_request(i, -1)      # one warm-up request per connection
        conn.request(method, path, body=body, headers={"Authorization": f"Bearer {token}", **headers})
        conn.getresponse().read()
        barrier.wait()
        for n in range(requests):
            method, path, body, headers = make_request(i, n)
            t = time.perf_counter()
            conn.request(method, path, body=body, headers={"Authorization": f"Bearer {token}", **headers})
            response = conn.getresponse()
            data = response.read()
            local.append((time.perf_counter() - t) * 1000)
            if response.status not in (200, 201):
                with lock:
                    errors.append(f"{response.status} {data[:200]!r}")
        conn.close()
        with lock:
            times.extend(local)

    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    return {"p50": statistics.median(times), "p95": percentile(times, 0.95), "max": max(times),
            "rps": len(times) / elapsed, "load": (load_before, os.getloadavg()[0])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default=os.environ.get("BENCH_PORTAL_DSN",
                                                        "postgresql://postgres@127.0.0.1:5432/bench_portal"))
    parser.add_argument("--cdrs", type=int, default=10_000_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    ensure_database(args.dsn)
    conn = psycopg2.connect(args.dsn)
    ensure_world(conn)
    ensure_cdrs(conn, args.cdrs)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM billing.cdr")
        total = cur.fetchone()[0]
        cur.execute("SELECT array_agg(id ORDER BY id) FROM billing.customers")
        customers = cur.fetchone()[0]
        cur.execute("SELECT max(start_stamp) FROM billing.cdr")
        last = cur.fetchone()[0]
        cur.execute("SELECT start_stamp, id FROM billing.cdr WHERE start_stamp > %s "
                    "ORDER BY start_stamp DESC, id DESC OFFSET 500000 LIMIT 1", (last - timedelta(days=40),))
        deep = cur.fetchone()
    conn.close()
    from portal.cdrs.services import Cursor

    deep_cursor = quote(Cursor(*deep).encode())
    one_customer = customers[len(customers) // 2]
    token = make_token(args.dsn)
    port = free_port()
    server = start_server(args.dsn, port, args.workers, args.threads)
    run_id = secrets.token_hex(4)
    json_body = {"Content-Type": "application/json"}

    def ledger_post(spread: bool):
        def make(i: int, n: int):
            customer = customers[(i * 7919 + n * 31) % len(customers)] if spread else one_customer
            body = json.dumps({"kind": "topup", "amount": "0.01", "reference": f"bench-{run_id}"})
            return ("POST", f"/api/v1/customers/{customer}/ledger", body,
                    json_body | {"Idempotency-Key": f"bench-{run_id}-{spread}-{i}-{n}"})
        return make

    scenarios = {
        "GET /api/v1/cdrs (first page of 100)":
            lambda i, n: ("GET", "/api/v1/cdrs?limit=100", None, {}),
        "GET /api/v1/cdrs?customer_id= (one customer's calls)":
            lambda i, n: ("GET", f"/api/v1/cdrs?limit=100&customer_id={customers[(i * 97 + n) % len(customers)]}",
                          None, {}),
        "GET /api/v1/cdrs?cursor= (page 500,000 calls back)":
            lambda i, n: ("GET", f"/api/v1/cdrs?limit=100&cursor={deep_cursor}", None, {}),
        "POST ledger top-up (customers spread)": ledger_post(True),
        "POST ledger top-up (all on one customer)": ledger_post(False),
    }
    try:
        print(f"{total:,} CDRs; gunicorn gthread {args.workers} workers x {args.threads} threads; "
              f"{args.clients} clients x {args.requests} requests each; {os.cpu_count()} cores")
        for label, make in scenarios.items():
            r = run(port, token, args.clients, args.requests, make)
            print(f"  {label:55s} p50 {r['p50']:6.1f} ms  p95 {r['p95']:6.1f} ms  max {r['max']:7.1f} ms  "
                  f"{r['rps']:6.0f} req/s  load {r['load'][0]:.1f} -> {r['load'][1]:.1f}", flush=True)
    finally:
        stop_server(server)
        revoke_tokens(args.dsn)


if __name__ == "__main__":
    main()
