"""Migration 0090 on a database that already has overlapping IP endpoints: refused
with the list of them and nothing changed; once fixed, it applies."""
from __future__ import annotations

import shutil

import psycopg2
import pytest

from portal import dbmigrate
from tests.conftest import ROOT, create_database, drop_database, PREFIX


@pytest.fixture()
def db_before_0090(tmp_path):
    sql_dir = tmp_path / "sql"
    (sql_dir / "migrations").mkdir(parents=True)
    for path in (ROOT / "sql" / "migrations").glob("*.sql"):
        if int(path.name[:4]) < 90:
            shutil.copy(path, sql_dir / "migrations")
    shutil.copytree(ROOT / "sql" / "procedures", sql_dir / "procedures")
    name = f"{PREFIX}_m0090"
    url = create_database(name)
    dbmigrate.upgrade(url, sql_dir)
    yield url
    drop_database(name)


def _execute(url, statement, params=()):
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def test_overlaps_make_the_migration_fail_clearly_then_apply_once_fixed(db_before_0090):
    url = db_before_0090
    _execute(url, """
        INSERT INTO billing.permissions (name) VALUES ('std');
        INSERT INTO billing.customers (name) VALUES ('acme'), ('beta');
        INSERT INTO billing.endpoints (customer_id, name, auth, ip, permission_id)
        SELECT c.id, e.name, 'ip', e.ip::cidr, (SELECT id FROM billing.permissions)
          FROM (VALUES ('acme', 'acme-pbx', '198.51.100.7/32'), ('acme', 'acme-net', '198.51.100.0/24'),
                       ('beta', 'beta-pbx', '198.51.100.7/32'), ('beta', 'beta-2', '192.0.2.1/32'),
                       ('beta', 'beta-3', '192.0.2.1/32')) e(customer, name, ip)
          JOIN billing.customers c ON c.name = e.customer""")
    with pytest.raises(dbmigrate.MigrationError) as excinfo:
        dbmigrate.upgrade(url)
    message = str(excinfo.value)
    assert "0090_endpoint_ip_one_customer.sql failed" in message
    assert "3 pair(s) of IP endpoints" in message
    pairs = {frozenset(pair.split(" and ")) for pair in message.split("same range: ")[1].split(" Nothing")[0]
             .split(". HINT")[0].split("\n")[0].split("; ")}
    assert pairs == {frozenset({"acme-pbx (customer acme, 198.51.100.7/32)", "beta-pbx (customer beta, 198.51.100.7/32)"}),
                     frozenset({"acme-net (customer acme, 198.51.100.0/24)", "beta-pbx (customer beta, 198.51.100.7/32)"}),
                     frozenset({"beta-2 (customer beta, 192.0.2.1/32)", "beta-3 (customer beta, 192.0.2.1/32)"})}
    assert "Nothing was changed" in message
    # Nested ranges of one customer (acme-pbx inside acme-net) are not in the list (see pairs).
    assert _execute(url, "SELECT count(*) FROM billing_meta.migrations WHERE version = 90") == [(0,)]

    _execute(url, "UPDATE billing.endpoints SET ip = '203.0.113.7/32' WHERE name = 'beta-pbx';"
                  "DELETE FROM billing.endpoints WHERE name = 'beta-3'")
    assert "0090_endpoint_ip_one_customer.sql" in dbmigrate.upgrade(url).summary()
