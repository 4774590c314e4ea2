"""Benchmark of billing.route_call against pgbench -S on the same server, in one run.

    .venv/bin/python bench/route.py                 # default: 15 s per measurement, 1 round
    .venv/bin/python bench/route.py --seconds 10 --rounds 3 --compare-prefix --explain

1. ``bench.dataset.ensure_dataset`` builds (once) the data set in ``bench_route``
   (20k destinations, 1M sell rates, 1M provider rates, 10k customers, 20k endpoints).
2. A pgbench-initialised database ``bench_route_pgbench`` (scale 10) is the baseline.
3. Each round measures, with pgbench ``-M prepared`` at 2 and 4 clients:
   ``pgbench -S``; ``route_call`` (random customer, half by IP and half by SIP user,
   random 11-digit number, a fresh uuid per call so every call places a hold);
   ``route_preview`` (the same without the hold's write); and ``route_call`` with
   ``synchronous_commit`` left on (a copy of the function without its SET LOCAL).
   Holds are truncated before each measurement; the customers' funds (1,000,000)
   and their unlimited call counts keep every call routable however many pile up.
4. Per measurement: transactions/s, ratio to pgbench -S at the same client count, and
   p50 / p99 latency from pgbench's per-transaction log.

``--compare-prefix`` times the two longest-prefix techniques on the same lookups
(destination catalogue; all providers' rates): btree ``prefix = ANY(prefixes)``
against the ``prefix`` extension's ``prefix_range`` with a GiST index. ``--explain``
prints EXPLAIN (ANALYZE, BUFFERS) of every statement of one route_call (auto_explain).

Other processes share the machine: compare ratios, and run more than one round.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
from psycopg2.extensions import make_dsn, parse_dsn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.dataset import DATASET, ensure_database, ensure_dataset  # noqa: E402

DEFAULT_DSN = os.environ.get("BENCH_DSN", "postgresql://postgres@127.0.0.1:5432/bench_route")

CALL_SCRIPT = r"""
\set c random(1, {customers})
\set s random(0, 1)
\set n random(10000000000, 99999999999)
SELECT count(*) FROM {function}(gen_random_uuid()::text,
    CASE WHEN :s = 0 THEN ('10.' || (:c >> 16) || '.' || ((:c >> 8) & 255) || '.' || (:c & 255))::inet END,
    CASE WHEN :s = 1 THEN 'bsip' || :c END, '100', :n::text);
"""

# Lookups for --compare-prefix: the same question asked with each technique.
PREFIX_SCRIPTS = {
    "destination, btree = ANY(prefixes)": r"""
\set n random(10000000000, 99999999999)
SELECT d.weight_id FROM billing.destinations d
 WHERE d.prefix = ANY (billing_private.prefixes(:n::text)) ORDER BY length(d.prefix) DESC LIMIT 1;
""",
    "destination, prefix_range GiST": r"""
\set n random(10000000000, 99999999999)
SELECT d.weight_id FROM billing.destinations d
 WHERE d.prefix::text::prefix_range @> :n::text ORDER BY length(d.prefix) DESC LIMIT 1;
""",
    "all providers' rates, btree = ANY(prefixes)": r"""
\set n random(10000000000, 99999999999)
SELECT count(*) FROM (SELECT DISTINCT ON (pr.provider_id) pr.provider_id, pr.rate FROM billing.provider_rates pr
 WHERE pr.prefix = ANY (billing_private.prefixes(:n::text)) AND NOT pr.blocked
 ORDER BY pr.provider_id, length(pr.prefix) DESC) s;
""",
    "all providers' rates, prefix_range GiST": r"""
\set n random(10000000000, 99999999999)
SELECT count(*) FROM (SELECT DISTINCT ON (pr.provider_id) pr.provider_id, pr.rate FROM billing.provider_rates pr
 WHERE pr.prefix::text::prefix_range @> :n::text AND NOT pr.blocked
 ORDER BY pr.provider_id, length(pr.prefix) DESC) s;
""",
}
PREFIX_SETUP = """
CREATE EXTENSION IF NOT EXISTS prefix;
CREATE INDEX IF NOT EXISTS bench_destinations_prefix_range ON billing.destinations USING gist ((prefix::text::prefix_range));
CREATE INDEX IF NOT EXISTS bench_provider_rates_prefix_range ON billing.provider_rates USING gist ((prefix::text::prefix_range));
ANALYZE billing.destinations, billing.provider_rates;
"""


def log(msg: str) -> None:
    print(msg, flush=True)


def conninfo(dsn: str) -> dict:
    info = parse_dsn(dsn)
    return {k: info[k] for k in ("host", "port", "user", "dbname") if k in info}


def pgbench_args(dsn: str) -> list[str]:
    info = conninfo(dsn)
    args = []
    for key, flag in (("host", "-h"), ("port", "-p"), ("user", "-U")):
        if key in info:
            args += [flag, str(info[key])]
    return args


def _cpu_seconds(pids) -> float:
    """utime + stime of the processes still alive, in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _backend_pids(dsn: str, clients: int) -> list[int]:
    for _ in range(50):
        rows = sql(make_dsn(dsn, dbname="postgres"),
                   "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' AND datname = "
                   + "'" + conninfo(dsn)["dbname"].replace("'", "''") + "'", fetch=True)
        if len(rows) >= clients:
            return [r[0] for r in rows]
        time.sleep(0.05)
    return [r[0] for r in rows]


def run_pgbench(dsn: str, clients: int, seconds: int, script: str | None = None, select_only=False) -> dict:
    """One pgbench run: tps, latency percentiles (ms) from its transaction log, and the
    CPU time per transaction of the server backends and of pgbench itself, measured
    over a window inside the run (from /proc, so other load on the machine does not
    inflate it the way it inflates wall-clock figures)."""
    work = tempfile.mkdtemp(prefix="bench_route_")
    try:
        cmd = ["pgbench", *pgbench_args(dsn), "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients),
               "-T", str(seconds), "-l", "--log-prefix", os.path.join(work, "tx")]
        if select_only:
            cmd.append("-S")
        else:
            path = os.path.join(work, "script.sql")
            Path(path).write_text(script)
            cmd += ["-f", path]
        cmd.append(conninfo(dsn)["dbname"])
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(min(1.0, seconds / 4))
        pids = _backend_pids(dsn, clients)
        t1, server1, client1 = time.time(), _cpu_seconds(pids), _cpu_seconds([proc.pid])
        time.sleep(max(0.5, seconds - 2 * min(1.0, seconds / 4)))
        t2, server2, client2 = time.time(), _cpu_seconds(pids), _cpu_seconds([proc.pid])
        stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"pgbench failed: {stderr.strip() or stdout.strip()}")
        tps = float(re.search(r"tps = ([\d.]+)", stdout).group(1))
        failed = re.search(r"number of failed transactions: (\d+)", stdout)
        latencies, in_window = [], 0
        for name in glob.glob(os.path.join(work, "tx*")):
            with open(name) as fh:
                for line in fh:
                    f = line.split()
                    if len(f) < 6:
                        continue
                    latencies.append(int(f[2]))
                    if t1 <= int(f[4]) + int(f[5]) / 1e6 < t2:
                        in_window += 1
        latencies.sort()
        q = statistics.quantiles(latencies, n=100) if len(latencies) > 100 else [float("nan")] * 99
        per_tx = (lambda cpu: cpu / in_window * 1e6 if in_window else float("nan"))
        return {"tps": tps, "p50": q[49] / 1000, "p99": q[98] / 1000, "n": len(latencies),
                "failed": int(failed.group(1)) if failed else 0,
                "server_us": per_tx(server2 - server1), "client_us": per_tx(client2 - client1)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ensure_pgbench_db(dsn: str, scale: int = 10) -> None:
    created = ensure_database(dsn)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('public.pgbench_accounts') IS NOT NULL")
        ready = cur.fetchone()[0]
    if created or not ready:
        log(f"initialising {conninfo(dsn)['dbname']} with pgbench -i -s {scale} ...")
        subprocess.run(["pgbench", *pgbench_args(dsn), "-i", "-q", "-s", str(scale), conninfo(dsn)["dbname"]],
                       check=True, capture_output=True)


def sql(dsn: str, statement: str, fetch=False):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchall() if fetch else None
    finally:
        conn.close()


def install_sync_commit_variant(dsn: str) -> None:
    """bench.route_call_sync_rows: route_call's logic with synchronous_commit left on."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_get_functiondef('billing_private.route_decide(text,inet,text,text,text,boolean)'::regprocedure)")
            body = cur.fetchone()[0]
            if "SET LOCAL synchronous_commit = off;" not in body:
                raise RuntimeError("route_decide no longer sets synchronous_commit: update the benchmark")
            body = body.replace("SET LOCAL synchronous_commit = off;", "NULL;")
            body = body.replace("billing_private.route_decide(", "bench.route_decide_sync(", 1)
            cur.execute("CREATE SCHEMA IF NOT EXISTS bench")
            cur.execute(body)
            cur.execute("""
                CREATE OR REPLACE FUNCTION bench.route_call_sync_rows(p_call_uuid text, p_source_ip inet, p_sip_user text,
                    p_caller_id text, p_destination text)
                RETURNS bigint LANGUAGE sql AS
                $$ SELECT count(*) FROM bench.route_decide_sync(p_call_uuid, p_source_ip, p_sip_user, p_caller_id, p_destination, true) $$
            """)
    finally:
        conn.close()


def explain_one_call(dsn: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement of one warm route_call, via auto_explain."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    plans = []
    conn.notices = plans
    try:
        with conn.cursor() as cur:
            for i in range(20):  # warm the plan cache: the generic plans are what runs
                cur.execute("SELECT count(*) FROM billing.route_preview('warm', NULL, %s, '1', %s)",
                            (f"bsip{i + 1}", str(33123456789 + i)))
            cur.execute("LOAD 'auto_explain'")
            cur.execute("SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;"
                        "SET auto_explain.log_analyze = on; SET auto_explain.log_buffers = on;"
                        "SET auto_explain.log_level = notice; SET client_min_messages = notice")
            del plans[:]
            cur.execute("SELECT * FROM billing.route_call('explain-1', '10.0.1.44', NULL, '100', '33123456789')")
            cur.execute("TRUNCATE billing.call_holds")
    finally:
        conn.close()
    return "\n".join(p.strip() for p in plans)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dsn", default=DEFAULT_DSN, help="benchmark database (created if missing)")
    ap.add_argument("--baseline-db", default="bench_route_pgbench", help="database for pgbench -S")
    ap.add_argument("--seconds", type=int, default=15, help="duration of each measurement")
    ap.add_argument("--rounds", type=int, default=1, help="repeat every measurement this many times")
    ap.add_argument("--clients", default="2,4", help="comma-separated client counts")
    ap.add_argument("--compare-prefix", action="store_true", help="time btree ANY(prefixes) vs prefix_range GiST")
    ap.add_argument("--explain", action="store_true", help="print the plans of one route_call")
    ap.add_argument("--skip-sync", action="store_true", help="skip the synchronous_commit=on variant")
    args = ap.parse_args(argv)

    info = ensure_dataset(args.dsn, log=log)
    log(f"data set v{info['version']} ({'built now' if info['built'] else 'reused'}): "
        + ", ".join(f"{k}={v:,}" for k, v in DATASET.items()))
    baseline_dsn = make_dsn(args.dsn, dbname=args.baseline_db)
    ensure_pgbench_db(baseline_dsn)
    sql(args.dsn, "TRUNCATE billing.call_holds")
    sql(args.dsn, "VACUUM ANALYZE billing.call_holds")
    if not args.skip_sync:
        install_sync_commit_variant(args.dsn)

    if args.explain:
        log("\n== EXPLAIN (ANALYZE, BUFFERS) of one warm route_call ==\n" + explain_one_call(args.dsn))

    clients = [int(c) for c in args.clients.split(",")]
    customers = DATASET["customers"]
    variants = [("route_call", CALL_SCRIPT.format(customers=customers, function="billing.route_call")),
                ("route_preview (no hold)", CALL_SCRIPT.format(customers=customers, function="billing.route_preview"))]
    if not args.skip_sync:
        variants.append(("route_call, sync commit on",
                         CALL_SCRIPT.replace("SELECT count(*) FROM {function}(", "SELECT bench.route_call_sync_rows(")
                         .format(customers=customers)))
    load = os.getloadavg()
    log(f"\nload average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs; "
        f"{args.seconds} s per measurement, {args.rounds} round(s)")
    header = (f"{'round':>5} {'clients':>7}  {'what':<28} {'tx/s':>9} {'x -S':>6} {'p50 ms':>7} {'p99 ms':>7}"
              f" {'srv us/tx':>9} {'cli us/tx':>9}")
    log(header)
    log("-" * len(header))
    summary = {}
    for rnd in range(1, args.rounds + 1):
        for c in clients:
            base = run_pgbench(baseline_dsn, c, args.seconds, select_only=True)
            log(f"{rnd:>5} {c:>7}  {'pgbench -S (baseline)':<28} {base['tps']:>9.0f} {1:>6.2f} "
                f"{base['p50']:>7.3f} {base['p99']:>7.3f} {base['server_us']:>9.0f} {base['client_us']:>9.0f}")
            summary.setdefault(("pgbench -S", c), []).append(
                (base["tps"], 1.0, base["p50"], base["p99"], base["server_us"], base["client_us"]))
            for name, script in variants:
                sql(args.dsn, "TRUNCATE billing.call_holds")
                r = run_pgbench(args.dsn, c, args.seconds, script=script)
                ratio = r["tps"] / base["tps"]
                summary.setdefault((name, c), []).append(
                    (r["tps"], ratio, r["p50"], r["p99"], r["server_us"], r["client_us"]))
                fail = f"  ({r['failed']} failed)" if r["failed"] else ""
                log(f"{rnd:>5} {c:>7}  {name:<28} {r['tps']:>9.0f} {ratio:>6.2f} {r['p50']:>7.3f} {r['p99']:>7.3f}"
                    f" {r['server_us']:>9.0f} {r['client_us']:>9.0f}{fail}")
    sql(args.dsn, "TRUNCATE billing.call_holds")

    log("\nmedian over rounds (tx/s, ratio to pgbench -S, p50 ms, p99 ms, CPU us per transaction):")
    for (name, c), rows in summary.items():
        med = [statistics.median(col) for col in zip(*rows)]
        log(f"  {name:<28} {c} clients: {med[0]:>7.0f} tx/s  {med[1]:.2f} x  p50 {med[2]:.3f}  p99 {med[3]:.3f}"
            f"  server {med[4]:.0f} us  pgbench {med[5]:.0f} us")
    # What the CPU figures predict for this machine with nothing else running: every
    # core busy with either the server or pgbench, no other load.
    cores = os.cpu_count() or 1
    log(f"\nprojection for {cores} idle cores from CPU per transaction (server + pgbench):")
    base_cpu = {c: statistics.median(r[4] + r[5] for r in rows)
                for (name, c), rows in summary.items() if name == "pgbench -S"}
    for (name, c), rows in summary.items():
        cpu = statistics.median(r[4] + r[5] for r in rows)
        log(f"  {name:<28} {c} clients: {cores / cpu * 1e6:>8.0f} tx/s  ({base_cpu[c] / cpu:.2f} x pgbench -S)")
    log("targets: >= 5,000 route_call/s, >= 0.33 x pgbench -S, p99 <= 5 ms (2 CPUs, nothing else running)")

    if args.compare_prefix:
        log("\n== longest-prefix techniques, 1 client, same random numbers ==")
        sql(args.dsn, PREFIX_SETUP)
        for rnd in range(1, args.rounds + 1):
            for name, script in PREFIX_SCRIPTS.items():
                r = run_pgbench(args.dsn, 1, max(3, args.seconds // 3), script=script)
                log(f"  round {rnd}: {name:<45} {r['tps']:>8.0f} q/s  p50 {r['p50']:.3f} ms  p99 {r['p99']:.3f} ms"
                    f"  server {r['server_us']:.0f} us/q")
    load = os.getloadavg()
    log(f"\nload average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
