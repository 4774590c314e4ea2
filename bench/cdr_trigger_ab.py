#!/usr/bin/env python3
"""A/B of the CDR billing trigger in one backend: server CPU per CDR insert.

Each variant is a list of SQL files (CREATE OR REPLACE scripts, e.g. an older and a
newer sql/procedures/20_cdr_billing.sql); batches of the variants are interleaved
(A B A B ...). Before each batch the variant's files are applied, a fresh connection
inserts --warmup CDRs (not counted, fills its caches) and then --rows CDRs, each a
literal INSERT in its own transaction (autocommit), as mod_cdr_pg_csv sends them. The
figure is the backend's CPU (utime + stime from /proc, same machine only) per CDR:
it does not depend on what other processes do with the other cores, wall time does.
Both variants of a pair insert the same mix of calls (same seed, fresh uuids).

Usage: python bench/cdr_trigger_ab.py --dsn postgresql://postgres@127.0.0.1:5432/bench_cdr_ds \
           --pairs 3 --rows 3000 A=old_10.sql,old_20.sql B=sql/procedures/10_rating.sql,...
The data set must exist (bench/cdr.py builds it). The last variant stays installed:
re-apply the project's files afterwards (bench/cdr.py or `flask db upgrade` does it
when their checksums differ from the recorded ones, so apply the current files last).
"""
from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cdr import backend_cpu_seconds, fake_cdr, insert_statement, load_world  # noqa: E402


def apply(dsn: str, files: list[str]) -> None:
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute("SET LOCAL check_function_bodies = off")
        for f in files:
            cur.execute(Path(f).read_text())
    conn.close()


def batch(dsn: str, world, rows: int, warmup: int, seed: int) -> tuple[float, float]:
    rng = random.Random(seed)
    base = datetime.now(timezone.utc).replace(microsecond=0)
    sqls = []
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    for _ in range(rows + warmup):
        row = fake_cdr(rng, world, base - timedelta(seconds=rng.randint(0, 86400)))
        row["uuid"] = str(uuid.uuid4())
        sqls.append(insert_statement(cur, row))
    for sql in sqls[:warmup]:
        cur.execute(sql)
    cpu0, t0 = backend_cpu_seconds(conn), time.monotonic()
    for sql in sqls[warmup:]:
        cur.execute(sql)
    cpu1, t1 = backend_cpu_seconds(conn), time.monotonic()
    conn.close()
    return (cpu1 - cpu0) / rows * 1e6, (t1 - t0) / rows * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("variants", nargs="+", help="NAME=file.sql[,file.sql...]")
    args = ap.parse_args()
    variants = [(v.split("=", 1)[0], v.split("=", 1)[1].split(",")) for v in args.variants]
    world = load_world(args.dsn)
    results: dict[str, list[float]] = {name: [] for name, _ in variants}
    for p in range(args.pairs):
        for name, files in variants:
            apply(args.dsn, files)
            cpu, wall = batch(args.dsn, world, args.rows, args.warmup, seed=1000 + p)
            results[name].append(cpu)
            print(f"pair {p + 1} {name:>10}: {cpu:7.0f} us CPU/CDR  {wall:7.0f} us wall/CDR", flush=True)
    for name, cpus in results.items():
        print(f"{name:>10}: " + " / ".join(f"{c:.0f}" for c in cpus) + f"  (mean {sum(cpus) / len(cpus):.0f} us)")


if __name__ == "__main__":
    main()
