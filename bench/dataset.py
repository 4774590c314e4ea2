"""A realistic, deterministic benchmark data set, shared by every benchmark.

    from bench.dataset import ensure_dataset
    info = ensure_dataset("postgresql://postgres@127.0.0.1:5432/bench_route")

``ensure_dataset(dsn)`` creates the database if it is missing, brings its schema up to
date (portal.dbmigrate), and builds the data set once; later calls find the marker row
in ``billing_meta.bench_dataset`` and return at once. Everything is made by
``INSERT ... SELECT generate_series`` inside the server, so the build takes about a
minute. Values are derived from hashes of ids, so two builds are identical.

What it contains (DATASET below has the exact numbers):

* 4 weights (local, mobile, international, premium); 3 permissions (all, no_premium,
  local_only).
* 20,070 destinations: 90 "countries" ``10``..``99`` plus, in each, 90 two-digit and
  132 three-digit area prefixes (``cc10``..``cc99``, ``cc100``..``cc231``). Areas
  starting with 6 or 7 are mobile, with 9 premium, the rest international.
* 10 ratecards x 100,000 sell rates = 1,000,000: the destination prefixes plus longer
  five- and six-digit ones (``cc`` + area + digit); increments mixed 60/60, 30/6, 1/1.
* 50 providers (priorities 1..5) x 20,000 provider rates = 1,000,000, each provider
  covering a different slice of the same prefix pool, always including the 90 country
  prefixes, so every number has several routes. Cost is below sell for most prefixes.
* 100 gateways (2 per provider, priority 1 and 2) with ``gateway_stats`` (ASR, ACD).
* 10,000 customers (80 % prepaid, 20 % postpaid), strategies mixed, 1-2 ratecards each,
  a balance of 1,000,000 (and credit for postpaid) so a benchmark never runs out of
  money, no concurrent-call limit (NULL) so holds piling up never refuse a call.
* 20,000 endpoints: customer ``i`` has an IP endpoint ``10.x.y.z/32`` (``ip_of(i)``)
  and a SIP endpoint ``bsip<i>`` (password ``bench-password``).
* 1,000 routing rules (customers 1..1000, their country prefix, 5 providers).

Numbers that route: any 11-digit number whose first two digits are 10..99, e.g.
``number_of(k)``. A pgbench script can compute a source as
``('10.' || (:c >> 16) || '.' || ((:c >> 8) & 255) || '.' || (:c & 255))::inet``.
"""
from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import make_dsn, parse_dsn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from portal import dbmigrate  # noqa: E402

DATASET_VERSION = 1
DATASET = {
    "destinations": 20_070,
    "ratecards": 10,
    "rates_per_ratecard": 100_000,
    "providers": 50,
    "rates_per_provider": 20_000,
    "gateways_per_provider": 2,
    "customers": 10_000,
    "endpoints": 20_000,
    "routing_rules": 1_000,
}
DEFAULT_DSN = os.environ.get("BENCH_DSN", "postgresql://postgres@127.0.0.1:5432/bench_route")
SIP_PASSWORD = "bench-password"


def ip_of(customer_index: int) -> str:
    """Source IP of the IP endpoint of customer number ``customer_index`` (1-based)."""
    i = customer_index
    return f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}"


def sip_user_of(customer_index: int) -> str:
    return f"bsip{customer_index}"


def number_of(k: int) -> str:
    """A routable 11-digit number (k = 0 .. 89,999,999,999 - 10,000,000,000)."""
    return str(10_000_000_000 + k % 89_999_999_999)


# Every statement runs inside one transaction; the build is all or nothing.
BUILD_SQL = r"""
SELECT setseed(0.42);

INSERT INTO billing.weights (name) VALUES ('local'), ('mobile'), ('international'), ('premium');
INSERT INTO billing.permissions (name) VALUES ('all'), ('no_premium'), ('local_only');
INSERT INTO billing.permission_weights (permission_id, weight_id)
SELECT p.id, w.id FROM billing.permissions p, billing.weights w
 WHERE p.name = 'all'
    OR (p.name = 'no_premium' AND w.name <> 'premium')
    OR (p.name = 'local_only' AND w.name = 'local');

-- Destinations: countries 10..99, then areas 10..99 and 100..231 inside each.
CREATE TEMP TABLE bench_prefix_pool (prefix text PRIMARY KEY, base numeric NOT NULL) ON COMMIT DROP;
INSERT INTO bench_prefix_pool (prefix, base)
SELECT p, round((abs(hashtext('base' || p)) % 2000 + 20) / 100000.0, 6)
  FROM (SELECT cc::text AS p FROM generate_series(10, 99) cc
        UNION ALL
        SELECT cc::text || a::text FROM generate_series(10, 99) cc, generate_series(10, 231) a) s;

INSERT INTO billing.destinations (prefix, name, weight_id)
SELECT p.prefix,
       'Country ' || left(p.prefix, 2) || CASE WHEN length(p.prefix) > 2 THEN ' area ' || substr(p.prefix, 3) ELSE '' END,
       (SELECT id FROM billing.weights WHERE name = CASE
             WHEN length(p.prefix) = 2 THEN 'international'
             WHEN substr(p.prefix, 3, 1) IN ('6', '7') THEN 'mobile'
             WHEN substr(p.prefix, 3, 1) = '9' THEN 'premium'
             ELSE 'international' END)
  FROM bench_prefix_pool p;

-- Longer, rate-only prefixes: every four- and five-digit area + one digit.
INSERT INTO bench_prefix_pool (prefix, base)
SELECT a.prefix || d::text, round((abs(hashtext('base' || a.prefix || d::text)) % 2000 + 20) / 100000.0, 6)
  FROM bench_prefix_pool a, generate_series(0, 9) d
 WHERE length(a.prefix) IN (4, 5)
ON CONFLICT (prefix) DO NOTHING;

CREATE TEMP TABLE bench_pool_numbered ON COMMIT DROP AS
SELECT prefix, base, row_number() OVER (ORDER BY length(prefix), prefix) AS n FROM bench_prefix_pool;
CREATE INDEX ON bench_pool_numbered (n);
ANALYZE bench_pool_numbered;

INSERT INTO billing.ratecards (name, currency)
SELECT 'bench_rc' || i, 'EUR' FROM generate_series(1, {{ratecards}}) i;

-- Sell rates: the first rates_per_ratecard prefixes of the pool (all destinations
-- first), price = base x (1.3 .. 1.6) depending on the card.
INSERT INTO billing.rates (ratecard_id, prefix, rate, connect_fee, min_duration, increment_first, increment_next)
SELECT rc.id, p.prefix,
       round(p.base * (1.3 + (rc.id % 4) * 0.1), 6),
       CASE WHEN abs(hashtext(rc.name || p.prefix)) % 10 = 0 THEN 0.01 ELSE 0 END,
       0,
       (ARRAY[60, 30, 1])[1 + abs(hashtext('inc' || rc.name || p.prefix)) % 3],
       (ARRAY[60, 6, 1])[1 + abs(hashtext('inc' || rc.name || p.prefix)) % 3]
  FROM billing.ratecards rc
  JOIN bench_pool_numbered p ON p.n <= {{rates_per_ratecard}}
 WHERE rc.name LIKE 'bench_rc%';

INSERT INTO billing.providers (name, priority, enabled)
SELECT 'bench_prov' || i, 1 + i % 5, true FROM generate_series(1, {{providers}}) i;

INSERT INTO billing.gateways (provider_id, name, host, priority, strip_digits, add_prefix, max_channels)
SELECT p.id, p.name || '_gw' || g, '192.0.2.' || ((p.id * 2 + g) % 250 + 1), g,
       CASE WHEN p.id % 7 = 0 THEN 2 ELSE 0 END,
       CASE WHEN p.id % 5 = 0 THEN '00' ELSE '' END,
       100
  FROM billing.providers p, generate_series(1, {{gateways_per_provider}}) g
 WHERE p.name LIKE 'bench_prov%';

INSERT INTO billing.gateway_stats (gateway_id, calls, answered, billsec, asr, acd)
SELECT g.id, 1000, 400 + abs(hashtext('asr' || g.name)) % 400, 0,
       round((400 + abs(hashtext('asr' || g.name)) % 400) / 1000.0, 4),
       60 + abs(hashtext('acd' || g.name)) % 240
  FROM billing.gateways g;

-- Provider rates: the 90 countries for everybody, plus a provider-specific slice of
-- the rest of the pool, so coverage and prices differ between providers.
INSERT INTO billing.provider_rates (provider_id, prefix, rate, increment_first, increment_next)
SELECT pr.id, p.prefix,
       round(p.base * (0.8 + (abs(hashtext(pr.name || p.prefix)) % 60) / 100.0), 6),
       1, 1
  FROM billing.providers pr
  JOIN bench_pool_numbered p
    ON p.n <= 90
    OR (p.n > 90 AND ((p.n + pr.id * 7919) % (SELECT count(*) - 90 FROM bench_pool_numbered)) < {{rates_per_provider}} - 90)
 WHERE pr.name LIKE 'bench_prov%';

-- Customers: balance through the ledger (the trigger keeps customers.balance).
INSERT INTO billing.customers (name, billing_type, credit_limit, max_calls, allow_negative_margin, lcr_strategy, email)
SELECT 'bench_cust' || i,
       CASE WHEN i % 5 = 0 THEN 'postpaid' ELSE 'prepaid' END,
       CASE WHEN i % 5 = 0 THEN 10000 ELSE 0 END,
       NULL,
       i % 10 = 0,
       (ARRAY['cost', 'quality', 'reliability', 'equal', 'priority'])[1 + i % 5],
       'bench' || i || '@example.net'
  FROM generate_series(1, {{customers}}) i;

CREATE TEMP TABLE bench_cust ON COMMIT DROP AS
SELECT id, substr(name, 11)::int AS i FROM billing.customers WHERE name LIKE 'bench_cust%';
CREATE INDEX ON bench_cust (i);
ANALYZE bench_cust;

INSERT INTO billing.ledger (customer_id, kind, amount, note)
SELECT id, 'initial', 1000000, 'bench data set' FROM bench_cust;

INSERT INTO billing.customer_ratecards (customer_id, ratecard_id, priority)
SELECT c.id, rc.id, 1 FROM bench_cust c
  JOIN billing.ratecards rc ON rc.name = 'bench_rc' || (1 + c.i % {{ratecards}});
INSERT INTO billing.customer_ratecards (customer_id, ratecard_id, priority)
SELECT c.id, rc.id, 2 FROM bench_cust c
  JOIN billing.ratecards rc ON rc.name = 'bench_rc' || (1 + (c.i + 3) % {{ratecards}})
 WHERE c.i % 3 = 0;

INSERT INTO billing.endpoints (customer_id, name, auth, ip, permission_id)
SELECT c.id, 'bench_ip' || c.i, 'ip',
       ('10.' || (c.i >> 16) || '.' || ((c.i >> 8) & 255) || '.' || (c.i & 255) || '/32')::cidr,
       (SELECT id FROM billing.permissions WHERE name = CASE WHEN c.i % 20 = 0 THEN 'no_premium' ELSE 'all' END)
  FROM bench_cust c;
INSERT INTO billing.endpoints (customer_id, name, auth, username, password, permission_id)
SELECT c.id, 'bench_sip' || c.i, 'sip', 'bsip' || c.i, {{sip_password}},
       (SELECT id FROM billing.permissions WHERE name = 'all')
  FROM bench_cust c;

INSERT INTO billing.routing_rules (customer_id, prefix)
SELECT c.id, (10 + c.i % 90)::text FROM bench_cust c WHERE c.i <= {{routing_rules}};
INSERT INTO billing.routing_rule_providers (routing_rule_id, provider_id)
SELECT rr.id, pr.id
  FROM billing.routing_rules rr
  JOIN billing.providers pr ON pr.name LIKE 'bench_prov%' AND (pr.id + rr.id) % 10 = 0;

CREATE TABLE billing_meta.bench_dataset (
    version   integer NOT NULL,
    built_at  timestamptz NOT NULL DEFAULT now(),
    seconds   numeric NOT NULL
);
"""


def render_build_sql() -> str:
    """BUILD_SQL with its {{name}} placeholders replaced by the constants above (no caller input)."""
    values = {**{k: str(v) for k, v in DATASET.items()}, "sip_password": "'" + SIP_PASSWORD + "'"}
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], BUILD_SQL)


def _server_dsn(dsn: str) -> str:
    return make_dsn(dsn, dbname="postgres")


def server_url(name: str) -> str:
    """DATABASE_URL's server (the local one by default) with the database `name`."""
    base = urlsplit(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    return urlunsplit((base.scheme, base.netloc, "/" + name, base.query, ""))


def recreate_database(name: str) -> str:
    """Drop `name` on DATABASE_URL's server, create it again with the project's schema
    (portal.dbmigrate); returns its URL. For benchmarks that start from nothing."""
    admin = psycopg2.connect(server_url("postgres"))
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        admin.close()
    url = server_url(name)
    dbmigrate.upgrade(url)
    return url


def ensure_database(dsn: str) -> bool:
    """Create the database named in ``dsn`` if it does not exist. True if created."""
    name = parse_dsn(dsn).get("dbname")
    if not name:
        raise ValueError(f"no database name in {dsn!r}")
    conn = psycopg2.connect(_server_dsn(dsn))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone():
                return False
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    finally:
        conn.close()


def dataset_info(dsn: str) -> dict | None:
    """The marker of a built data set, or None when the database has none."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('billing_meta.bench_dataset') IS NOT NULL")
        if not cur.fetchone()[0]:
            return None
        cur.execute("SELECT version, built_at, seconds FROM billing_meta.bench_dataset ORDER BY built_at DESC LIMIT 1")
        row = cur.fetchone()
    return None if row is None else {"version": row[0], "built_at": row[1], "seconds": row[2]}


def ensure_dataset(dsn: str = DEFAULT_DSN, log=print) -> dict:
    """Create, migrate and fill the benchmark database at ``dsn`` (each step only if needed).

    Returns ``{"version", "built_at", "seconds", "built": bool, **DATASET}``. A database
    holding a data set of another version is refused (drop it and run again) rather than
    silently mixed.
    """
    ensure_database(dsn)
    dbmigrate.upgrade(dsn)
    info = dataset_info(dsn)
    if info is not None:
        if info["version"] != DATASET_VERSION:
            raise RuntimeError(f"{dsn} holds bench data set v{info['version']}, this code builds "
                               f"v{DATASET_VERSION}: drop the database and run again")
        return {**info, **DATASET, "built": False}
    log(f"building the benchmark data set in {parse_dsn(dsn).get('dbname')} (about a minute) ...")
    started = time.monotonic()
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SET LOCAL synchronous_commit = off")
            cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
            cur.execute(render_build_sql())
            cur.execute("INSERT INTO billing_meta.bench_dataset (version, seconds) VALUES (%s, %s)",
                        (DATASET_VERSION, round(time.monotonic() - started, 1)))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    finally:
        conn.close()
    info = dataset_info(dsn)
    log(f"built in {info['seconds']} s")
    return {**info, **DATASET, "built": True}


if __name__ == "__main__":
    print(ensure_dataset(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_DSN))
