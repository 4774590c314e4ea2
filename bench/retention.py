"""Benchmark of CDR retention (a script, not a test): prints its figures.

    python bench/retention.py [--dsn postgresql://postgres@127.0.0.1:5432/bench_retention]
                              [--rows 1000000] [--keep]

* Builds its own database (dropped at the end unless --keep) with 1,000 customers and
  one month (March 2024) of N rated CDRs inserted through billing.cdr, as the billing
  trigger does (partition routing, every index maintained row by row, fillfactor 50),
  and an issued invoice per customer, so the month is closed for billing.
* Prints the partition's size on disk: heap and each index, per 1M rows.
* Archives the month (gzip CSV + manifest, read back and verified, partition dropped),
  restores it (checksum, load, count, attach: a fresh table at fillfactor 100 whose
  indexes are built by the attach), archives it again; prints each time and the sizes
  of the file and of the restored partition.

docs/scaling-retention.md uses these figures for "100M CDRs on paper". The machine is
shared: times are noisy, sizes are not.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import psycopg2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from portal import dbmigrate  # noqa: E402
from portal.retention import services as retention  # noqa: E402

CUSTOMERS = 1000
MONTH = date(2024, 3, 1)


def admin_dsn(dsn: str) -> str:
    return dsn.rsplit("/", 1)[0] + "/postgres"


def recreate_database(dsn: str) -> None:
    name = dsn.rsplit("/", 1)[1].split("?")[0]
    conn = psycopg2.connect(admin_dsn(dsn))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    dbmigrate.upgrade(dsn)


def drop_database(dsn: str) -> None:
    name = dsn.rsplit("/", 1)[1].split("?")[0]
    conn = psycopg2.connect(admin_dsn(dsn))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def fill(conn, rows: int) -> float:
    """N CDRs of March 2024 through billing.cdr (the bench/portal.py shape, every call rated)."""
    with conn.cursor() as cur:
        cur.execute("INSERT INTO billing.customers (name) SELECT 'cust' || i FROM generate_series(1, %s) i",
                    (CUSTOMERS,))
        cur.execute("SELECT min(id) FROM billing.customers")
        cmin = cur.fetchone()[0]
        cur.execute("SELECT billing_private.create_cdr_partition(%s)", (MONTH,))
        conn.commit()
        t0 = time.perf_counter()
        cur.execute("""
            INSERT INTO billing.cdr (fs_cdr_id, uuid, customer_id, endpoint_id, provider_id, gateway,
                caller_id, destination, sell_prefix, start_stamp, answer_stamp, end_stamp, duration, billsec,
                billed_seconds, cost_billed_seconds, sell_rate, sell_amount, cost_rate, cost_amount, margin,
                hangup_cause, route_seq, status, rated_at)
            SELECT g.i, md5(g.i::text)::uuid::text, %(cmin)s + c, c + 1, p + 1, 'gw' || (p + 1),
                   '100' || c, dest, left(dest, 4), st,
                   CASE WHEN bs > 0 THEN st + interval '4 seconds' END, st + (bs + 6) * interval '1 second',
                   bs + 6, bs, bs, bs, 0.02, round(bs * 0.02 / 60, 6), 0.012, round(bs * 0.012 / 60, 6),
                   round(bs * 0.02 / 60, 6) - round(bs * 0.012 / 60, 6),
                   CASE WHEN bs > 0 THEN 'NORMAL_CLEARING' ELSE 'NO_ANSWER' END, 1 + g.i %% 3, 'rated', st
              FROM generate_series(1::bigint, %(n)s::bigint) AS g(i),
                   LATERAL (SELECT (g.i * 7919) %% %(customers)s AS c, (g.i * 31) %% 10 AS p,
                                   CASE WHEN g.i %% 10 < 3 THEN 0 ELSE (g.i * 37) %% 900 + 1 END AS bs,
                                   (10 + (g.i * 13) %% 90)::text || lpad(((g.i * 104729) %% 10000000)::text, 7, '0')
                                       AS dest,
                                   '2024-03-01 00:00:00+00'::timestamptz
                                       + ((g.i - 1) * 2678400 / %(n)s) * interval '1 second' AS st) x""",
                    {"cmin": cmin, "n": rows, "customers": CUSTOMERS})
        conn.commit()
        seconds = time.perf_counter() - t0
        cur.execute("""INSERT INTO billing.invoices (customer_id, kind, status, number, period_start, period_end,
                                                     currency, tax_rate, customer_name, issued_at)
                       SELECT id, 'invoice', 'issued', 'B-' || id, '2024-03-01', '2024-04-01', 'EUR', 0, name, now()
                         FROM billing.customers""")
        cur.execute("ANALYZE billing.cdr_2024_03")
    conn.commit()
    return seconds


def sizes(conn, table: str) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_relation_size(%s::regclass), pg_total_relation_size(%s::regclass)",
                    (f"billing.{table}", f"billing.{table}"))
        heap, total = cur.fetchone()
        cur.execute("""SELECT i.relname, pg_relation_size(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                        WHERE x.indrelid = %s::regclass ORDER BY 2 DESC""", (f"billing.{table}",))
        out = {"heap": heap}
        out.update({name: size for name, size in cur.fetchall()})
        out["total"] = total
    conn.commit()
    return out


def mb(n: int) -> str:
    return f"{n / 1024 / 1024:,.1f} MB"


def print_sizes(title: str, s: dict[str, int], rows: int) -> None:
    print(f"\n{title} ({rows:,} rows)")
    per = 1_000_000 / rows
    for name, size in s.items():
        print(f"  {name:45} {mb(size):>12}   per 1M rows {mb(int(size * per)):>12}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("BENCH_RETENTION_DSN",
                                                        "postgresql://postgres@127.0.0.1:5432/bench_retention"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    args = parser.parse_args()

    recreate_database(args.dsn)
    conn = psycopg2.connect(args.dsn)
    try:
        seconds = fill(conn, args.rows)
        print(f"filled {args.rows:,} CDRs through billing.cdr in {seconds:.1f} s "
              f"({args.rows / seconds:,.0f} rows/s, indexes maintained per row)")
        live = sizes(conn, "cdr_2024_03")
        print_sizes("live partition, fillfactor 50, indexes grown by insertion", live, args.rows)
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            t0 = time.perf_counter()
            result = retention.archive(conn, MONTH, directory, actor="bench")
            conn.commit()
            archive_s = time.perf_counter() - t0
            print(f"\narchive: {archive_s:.1f} s (COPY to gzip, read back and sum, sha256, detach, drop); "
                  f"file {mb(result.file_bytes)} = {result.file_bytes / live['total']:.1%} of the partition, "
                  f"{result.file_bytes / args.rows:.0f} bytes per CDR")
            t0 = time.perf_counter()
            restored = retention.restore(conn, MONTH, directory, actor="bench")
            conn.commit()
            restore_s = time.perf_counter() - t0
            print(f"restore: {restore_s:.1f} s (sha256, COPY from gzip, count and sum, attach with index builds); "
                  f"{restored.figures.rows:,} rows")
            print_sizes("restored partition, fillfactor 100, indexes built by the attach",
                        sizes(conn, "cdr_2024_03"), args.rows)
            t0 = time.perf_counter()
            retention.archive(conn, MONTH, directory, actor="bench")
            conn.commit()
            print(f"\narchive again: {time.perf_counter() - t0:.1f} s")
            print("\nmanifest:\n" + (directory / retention.manifest_file_name(MONTH)).read_text())
    finally:
        conn.close()
        if not args.keep:
            drop_database(args.dsn)


if __name__ == "__main__":
    main()
