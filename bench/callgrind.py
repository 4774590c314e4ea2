#!/usr/bin/env python3
"""Instructions per route_call and per CDR insert, counted by callgrind: exact and
repeatable whatever else the machine is doing (seconds are not), so two variants of
the code can be compared to the instruction (docs/performance-route.md and
docs/performance-cdr.md quote these figures).

How: the benchmark database (bench/route.py builds it) is copied into a scratch
cluster; a single-user backend (`postgres --single`) runs under
`valgrind --tool=callgrind`, fed N and then 4N statements (random customers, half by
IP and half by SIP user, random numbers, fixed seed; or bench/cdr.py's CDRs), each
its own transaction. (count(4N) - count(N)) / 3N is the cost of one statement without
the backend's start-up. In single-user mode every statement is parsed and planned
(no prepared statements), so absolute figures are a little above pgbench's.

Usage: python bench/callgrind.py [--source-dsn postgresql://postgres@127.0.0.1:5432/bench_route]
                                 [--workdir /tmp/billing-callgrind] [--n 100] [--what route,cdr]
                                 [--foreign-providers 5]
       python bench/callgrind.py --reuse   # keep the scratch cluster of a previous run

--foreign-providers K makes one provider in K bill in SEK (with a SEK -> EUR exchange
rate) in the scratch cluster before counting: the cost of currency conversion for the
customers (all EUR) whose calls may route through them (docs/performance-route.md).
Needs valgrind, and PostgreSQL's server binaries (pg_config --bindir). Run as root, the
scratch cluster belongs to the postgres user.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cdr import fake_cdr, insert_statement, load_world  # noqa: E402

PORT = 5499


def bindir() -> Path:
    return Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip())


def as_postgres(cmd: str, stdin=None) -> subprocess.CompletedProcess:
    """Run a shell command as the postgres user when we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        return subprocess.run(["su", "postgres", "-c", cmd], stdin=stdin, capture_output=True, text=True)
    return subprocess.run(["sh", "-c", cmd], stdin=stdin, capture_output=True, text=True)


def scratch_dsn(workdir: Path) -> str:
    return f"postgresql://postgres@/bench_route?host={workdir}&port={PORT}"


def build_cluster(source_dsn: str, workdir: Path) -> None:
    data = workdir / "data"
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    shutil.chown(workdir, "postgres") if os.geteuid() == 0 else None
    b = bindir()
    out = as_postgres(f"{b}/initdb -D {data} -A trust -U postgres --locale=C.UTF-8")
    if out.returncode:
        raise SystemExit(out.stderr)
    start_cluster(workdir)
    dump = workdir / "source.dump"
    subprocess.run(["pg_dump", "-Fc", "-f", str(dump), source_dsn], check=True)
    dsn = scratch_dsn(workdir)
    admin = dsn.replace("/bench_route?", "/postgres?")
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE bench_route")
        for role in ("billing_freeswitch", "billing_portal"):
            cur.execute(f"DO $$ BEGIN CREATE ROLE {role}; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    conn.close()
    subprocess.run(["pg_restore", "-d", dsn, "-j", "2", str(dump)], check=False, capture_output=True)
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE")   # pg_restore leaves no statistics: plans would differ
    conn.close()
    stop_cluster(workdir)


def start_cluster(workdir: Path) -> None:
    # Unix socket in the work directory only: no TCP port to collide with
    out = as_postgres(f"{bindir()}/pg_ctl -D {workdir / 'data'} -o '-p {PORT} -k {workdir} -c listen_addresses=' "
                      f"-l {workdir / 'server.log'} -w start")
    if out.returncode:
        raise SystemExit(out.stderr or out.stdout)


def stop_cluster(workdir: Path) -> None:
    as_postgres(f"{bindir()}/pg_ctl -D {workdir / 'data'} -w stop")


def foreign_providers(workdir: Path, every: int) -> None:
    """One provider in `every` bills in SEK, converted at a SEK -> EUR rate (0110)."""
    start_cluster(workdir)
    try:
        conn = psycopg2.connect(scratch_dsn(workdir))
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE billing.providers SET currency = 'SEK' WHERE id %% %s = 0 AND currency <> 'SEK'",
                        (every,))
            cur.execute("""INSERT INTO billing.exchange_rates (from_currency, to_currency, rate, valid_from)
                           VALUES ('SEK', 'EUR', 0.0871, '2020-01-01') ON CONFLICT DO NOTHING""")
        conn.close()
    finally:
        stop_cluster(workdir)


def route_statements(n: int) -> list[str]:
    rng = random.Random(42)
    lines = ["TRUNCATE billing.call_holds;"]   # in both runs: cancels out
    for i in range(n):
        c = rng.randint(1, 10000)
        num = rng.randint(10**10, 10**11 - 1)
        ip = f"'10.{c >> 16}.{(c >> 8) & 255}.{c & 255}'" if i % 2 == 0 else "NULL"
        sip = "NULL" if i % 2 == 0 else f"'bsip{c}'"
        lines.append(f"SELECT count(*) FROM billing.route_call('{uuid.UUID(int=rng.getrandbits(128))}', "
                     f"{ip}, {sip}, '100', '{num}');")
    return lines


def cdr_statements(cur, n: int, world) -> list[str]:
    rng = random.Random(7)
    base = datetime.now(timezone.utc).replace(microsecond=0)
    lines = []
    for _ in range(n):
        row = fake_cdr(rng, world, base - timedelta(seconds=rng.randint(0, 86400)))
        row["uuid"] = str(uuid.uuid4())   # fresh uuids for every run: none is a duplicate
        lines.append(insert_statement(cur, row).decode() + ";")
    return lines


def count(workdir: Path, lines: list[str], tag: str) -> int:
    sql = workdir / f"{tag}.sql"
    sql.write_text("\n".join(lines) + "\n")
    out_file = workdir / f"{tag}.callgrind"
    b = bindir()
    as_postgres(f"valgrind --tool=callgrind --callgrind-out-file={out_file} {b}/postgres --single "
                f"-D {workdir / 'data'} -c autovacuum=off bench_route < {sql} > {workdir / (tag + '.log')} 2>&1")
    text = out_file.read_text(errors="replace")
    match = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    if not match:
        raise SystemExit(f"no callgrind total in {out_file}")
    log = (workdir / f"{tag}.log").read_text(errors="replace")
    if "ERROR" in log:
        raise SystemExit(f"a statement failed, see {workdir / (tag + '.log')}")
    return int(match.group(1))


def per_statement(workdir: Path, small_lines: list[str], large_lines: list[str], tag: str) -> int:
    """Instructions of one statement: (count(4N) - count(N)) / 3N."""
    n = len(small_lines)
    small, large = count(workdir, small_lines, f"{tag}_small"), count(workdir, large_lines, f"{tag}_large")
    return (large - small) // (len(large_lines) - n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source-dsn", default="postgresql://postgres@127.0.0.1:5432/bench_route")
    ap.add_argument("--workdir", default="/tmp/billing-callgrind", type=Path)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--what", default="route,cdr")
    ap.add_argument("--reuse", action="store_true", help="keep the scratch cluster of a previous run")
    ap.add_argument("--foreign-providers", type=int, default=0,
                    help="make one provider in K bill in SEK (with a SEK -> EUR rate) before counting")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    if not (args.reuse and (args.workdir / "data").exists()):
        print(f"copying {args.source_dsn} into a scratch cluster in {args.workdir} ...", flush=True)
        build_cluster(args.source_dsn, args.workdir)
    if args.foreign_providers:
        foreign_providers(args.workdir, args.foreign_providers)
    what = args.what.split(",")
    if "route" in what:
        per_call = per_statement(args.workdir, route_statements(args.n), route_statements(4 * args.n), "route")
        print(f"route_call: {per_call:,} instructions per call", flush=True)
    if "cdr" in what:
        start_cluster(args.workdir)   # for the world and for quoting; stopped before counting
        try:
            world = load_world(scratch_dsn(args.workdir))
            conn = psycopg2.connect(scratch_dsn(args.workdir))
            cur = conn.cursor()
            small, large = cdr_statements(cur, args.n, world), cdr_statements(cur, 4 * args.n, world)
            conn.close()
        finally:
            stop_cluster(args.workdir)
        print(f"CDR insert: {per_statement(args.workdir, small, large, 'cdr'):,} instructions per CDR", flush=True)


if __name__ == "__main__":
    main()
