"""Migrations, schema/model agreement, login and role separation."""
from __future__ import annotations

import threading

import psycopg2
import pytest
from sqlalchemy import Numeric, Text

from portal import dbmigrate
from portal.extensions import db
from tests import factories
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, CUSTOMER_PASSWORD, login


def _tables(url):
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM billing_meta.migrations")
        return cur.fetchone()[0]


def test_upgrade_from_empty_then_again_is_a_no_op(fresh_db):
    # fresh_db is cloned from the migrated template: a second run must change nothing.
    result = dbmigrate.upgrade(fresh_db)
    assert result.migrations_applied == [] and result.procedures_applied == []
    assert result.summary() == "database is up to date"
    assert _tables(fresh_db) == len(dbmigrate.load_migrations())


def test_upgrade_on_an_empty_database_applies_everything(template_db):
    from tests.conftest import PREFIX, create_database, drop_database

    name = f"{PREFIX}_empty"
    url = create_database(name)
    try:
        result = dbmigrate.upgrade(url)
        assert result.migrations_applied == [m.name for m in dbmigrate.load_migrations()]
        assert "zz_grants.sql" in result.procedures_applied
    finally:
        drop_database(name)


def test_two_runners_at_once_are_harmless(template_db):
    from tests.conftest import PREFIX, create_database, drop_database

    name = f"{PREFIX}_race"
    url = create_database(name)
    errors, results = [], []

    def run():
        try:
            results.append(dbmigrate.upgrade(url))
        except Exception as exc:  # noqa: BLE001 - the assertion reports it
            errors.append(exc)

    try:
        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        applied = sorted(len(r.migrations_applied) for r in results)
        assert applied == [0, len(dbmigrate.load_migrations())]
    finally:
        drop_database(name)


def test_database_newer_than_code_is_refused(fresh_db):
    with psycopg2.connect(fresh_db) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO billing_meta.migrations (version, name, checksum) VALUES (9999, '9999_future.sql', 'x')")
    with pytest.raises(dbmigrate.MigrationError, match="newer than this code.*9999_future.sql"):
        dbmigrate.upgrade(fresh_db)


def test_edited_migration_is_refused(fresh_db):
    with psycopg2.connect(fresh_db) as conn, conn.cursor() as cur:
        cur.execute("UPDATE billing_meta.migrations SET checksum = 'edited' WHERE version = 1")
    with pytest.raises(dbmigrate.MigrationError, match="0001_foundation.sql was edited"):
        dbmigrate.upgrade(fresh_db)


def test_changed_procedure_is_reapplied(fresh_db):
    with psycopg2.connect(fresh_db) as conn, conn.cursor() as cur:
        cur.execute("UPDATE billing_meta.procedures SET checksum = 'old' WHERE name = 'zz_grants.sql'")
    assert dbmigrate.upgrade(fresh_db).procedures_applied == ["zz_grants.sql"]


def test_models_agree_with_migrated_schema(pg):
    """Every mapped column exists in the database with the same nullability and type family."""
    with pg.cursor() as cur:
        cur.execute("""SELECT table_name, column_name, is_nullable, data_type, domain_name
                         FROM information_schema.columns WHERE table_schema = 'billing'""")
        columns = {(t, c): (n == "YES", dt, dom) for t, c, n, dt, dom in cur.fetchall()}
    problems = []
    for table in db.metadata.sorted_tables:
        for col in table.columns:
            key = (table.name, col.name)
            if key not in columns:
                problems.append(f"{key} mapped but missing in the database")
                continue
            nullable, data_type, _domain = columns[key]
            if col.primary_key:
                nullable_expected = False
            else:
                nullable_expected = col.nullable
            if nullable != nullable_expected:
                problems.append(f"{key}: database nullable={nullable}, model nullable={nullable_expected}")
            if isinstance(col.type, Numeric) and data_type != "numeric":
                problems.append(f"{key}: model Numeric, database {data_type}")
            if isinstance(col.type, Text) and data_type != "text":
                problems.append(f"{key}: model Text, database {data_type}")
        db_cols = {c for (t, c) in columns if t == table.name}
        missing_in_model = db_cols - {c.name for c in table.columns}
        if missing_in_model:
            problems.append(f"{table.name}: columns not mapped: {sorted(missing_in_model)}")
    assert problems == []


def test_freeswitch_role_has_least_privilege(pg):
    with pg.cursor() as cur:
        cur.execute("""SELECT table_name, privilege_type FROM information_schema.role_table_grants
                        WHERE grantee = 'billing_freeswitch' ORDER BY 1, 2""")
        assert cur.fetchall() == [("fs_cdr", "INSERT")]
        cur.execute("""SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                        WHERE n.nspname IN ('billing', 'billing_private')
                          AND has_function_privilege('billing_freeswitch', p.oid, 'EXECUTE')
                        ORDER BY 1""")
        allowed = {r[0] for r in cur.fetchall()}
    assert allowed <= {"route_call", "directory_user", "sofia_gateways", "acl_networks", "route_options",
                       "reauthorize_call", "release_call"}


def test_freeswitch_role_has_a_connection_ceiling(pg):
    # 0180: the server refuses the switches' connections beyond it (an operator's own
    # value is kept; -1 would be none at all)
    with pg.cursor() as cur:
        cur.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'billing_freeswitch'")
        limit = cur.fetchone()[0]
    assert 0 < limit < 100, limit


def test_balance_moves_only_through_the_ledger(db_session, pg):
    c = factories.customer(balance="10")
    assert c.balance == 10
    with pg.cursor() as cur:
        cur.execute("SAVEPOINT s")
        with pytest.raises(psycopg2.Error, match="only through billing.ledger"):
            cur.execute("UPDATE billing.customers SET balance = 99 WHERE id = %s", (c.id,))
        cur.execute("ROLLBACK TO SAVEPOINT s")
        with pytest.raises(psycopg2.Error, match="immutable"):
            cur.execute("UPDATE billing.ledger SET amount = 1 WHERE customer_id = %s", (c.id,))
        cur.execute("ROLLBACK TO SAVEPOINT s")


@pytest.mark.parametrize("sql_text", [
    "INSERT INTO billing.destinations (prefix, name, weight_id) VALUES ('33a', 'x', {w})",
    "INSERT INTO billing.ratecards (name) VALUES ('bad name with spaces')",
    "INSERT INTO billing.rates (ratecard_id, prefix, rate) VALUES ({rc}, '33', -1)",
    "INSERT INTO billing.rates (ratecard_id, prefix, rate, increment_first) VALUES ({rc}, '33', 1, 0)",
    "INSERT INTO billing.endpoints (customer_id, name, auth, ip, permission_id) VALUES ({c}, 'e', 'ip', '300.1.1.1', {p})",
    "INSERT INTO billing.endpoints (customer_id, name, auth, permission_id) VALUES ({c}, 'e', 'sip', {p})",
    "INSERT INTO billing.weights (name) VALUES ('{wname}')",
])
def test_database_rejects_nonsense(db_session, pg, sql_text):
    w = factories.weight()
    rc = factories.ratecard()
    c = factories.customer()
    p = factories.permission([w])
    with pg.cursor() as cur:
        cur.execute("SAVEPOINT s")
        with pytest.raises(psycopg2.Error):
            cur.execute(sql_text.format(w=w.id, rc=rc.id, c=c.id, p=p.id, wname=w.name))
        cur.execute("ROLLBACK TO SAVEPOINT s")


def test_cdr_partitions_exist_ahead(pg):
    with pg.cursor() as cur:
        cur.execute("""SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                        WHERE i.inhparent = 'billing.cdr'::regclass AND c.relname ~ '^cdr_[0-9]{4}_[0-9]{2}$'""")
        assert cur.fetchone()[0] >= 4


# ------------------------------------------------------------------------ portal access

def test_login_page_and_security_headers(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert b"Sign in" in response.data
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_login_wrong_password_is_refused(client, admin_user):
    response = client.post("/login", data={"email": ADMIN_EMAIL, "password": "wrong-password"})
    assert response.status_code == 200
    assert b"Wrong e-mail or password" in response.data


def test_login_and_logout(client, admin_user):
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert client.get("/").status_code == 302
    client.post("/logout")
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_login_rejects_open_redirect(client, admin_user):
    response = client.post("/login?next=https://evil.example/", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]


def test_passwords_are_hashed_with_argon2(admin_user):
    assert admin_user.password_hash.startswith("$argon2id$")
    assert ADMIN_PASSWORD not in admin_user.password_hash


def test_inactive_user_cannot_log_in(client, admin_user, db_session):
    admin_user.active = False
    db_session.flush()
    response = client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert response.status_code == 200


def test_csrf_is_enforced_on_forms(app, database_url):
    from portal import create_app
    from portal.config import TestingConfig

    strict = create_app(TestingConfig, DATABASE_URL=database_url, WTF_CSRF_ENABLED=True)
    response = strict.test_client().post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert response.status_code == 400
    with strict.app_context():
        db.engine.dispose()


def test_customer_user_gets_403_on_admin_pages(app, client, db_session):
    c = factories.customer(name="acme")
    factories.user("ops@acme.example", CUSTOMER_PASSWORD, customer=c)
    login(client, "ops@acme.example", CUSTOMER_PASSWORD)
    admin_rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("admin.") and "GET" in r.methods]
    for rule in admin_rules:
        url = rule.build({arg: 1 for arg in rule.arguments})[1]
        assert client.get(url).status_code == 403, url


def test_anonymous_is_sent_to_login_everywhere(app, client):
    protected = [r for r in app.url_map.iter_rules()
                 if r.endpoint.split(".")[0] in {"admin", "selfcare", "home"} and "GET" in r.methods]
    assert protected, "no protected pages registered"
    for rule in protected:
        url = rule.build({arg: 1 for arg in rule.arguments})[1]
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url


def test_unknown_page_is_a_404_page(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert b"Not found" in response.data


def test_create_admin_command(cli, db_session):
    result = cli.invoke(args=["create-admin", "--email", "Boss@Example.net", "--password", "long-enough-pw"])
    assert result.exit_code == 0, result.output
    assert "created admin boss@example.net" in result.output
    short = cli.invoke(args=["create-admin", "--email", "x@example.net", "--password", "short"])
    assert short.exit_code != 0 and "at least" in short.output
