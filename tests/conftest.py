"""Test fixtures: a real PostgreSQL, never SQLite, never a mock.

* One template database is migrated per test session (``<prefix>_tpl``); the working
  database ``<prefix>_main`` is cloned from it.
* ``db_session`` (autouse for tests that use the app or ``pg``) runs every test inside
  a transaction that is rolled back at the end; the ORM session and the raw psycopg2
  connection ``pg`` share that one transaction, so both see the same data.
* ``fresh_db`` gives a test its own committed database, cloned from the template, for
  concurrency tests that need several connections.

The server comes from ``DATABASE_URL`` (any libpq URL; the database named in it is
only used to connect for CREATE/DROP DATABASE). The prefix is derived from the
checkout's path so two checkouts on one server do not collide; set
``TEST_DB_PREFIX`` to choose it.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
from psycopg2 import sql
from sqlalchemy.orm import scoped_session, sessionmaker

from portal import create_app, dbmigrate
from portal.config import TestingConfig
from portal.extensions import db

ROOT = Path(__file__).resolve().parent.parent
SERVER_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PREFIX = os.environ.get("TEST_DB_PREFIX") or "billing_test_" + hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if WORKER:
    PREFIX = f"{PREFIX}_{WORKER}"


def url_for_db(name: str) -> str:
    """The server URL with its database replaced by `name`."""
    parts = urlsplit(SERVER_URL)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _admin_conn():
    conn = psycopg2.connect(SERVER_URL)
    conn.autocommit = True
    return conn


def drop_database(name: str) -> None:
    conn = _admin_conn()
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        conn.close()


def create_database(name: str, template: str | None = None) -> str:
    drop_database(name)
    conn = _admin_conn()
    try:
        with conn.cursor() as cur:
            if template:
                cur.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
            else:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    return url_for_db(name)


@pytest.fixture(scope="session")
def template_db() -> str:
    name = f"{PREFIX}_tpl"
    url = create_database(name)
    dbmigrate.upgrade(url)
    yield name
    drop_database(name)


@pytest.fixture(scope="session")
def database_url(template_db) -> str:
    name = f"{PREFIX}_main"
    url = create_database(name, template=template_db)
    yield url
    drop_database(name)


@pytest.fixture(scope="session")
def app(database_url):
    app = create_app(TestingConfig, DATABASE_URL=database_url)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture()
def db_session(app):
    """The ORM session of the test, inside a transaction rolled back at the end."""
    with app.app_context():
        connection = db.engine.connect()
        transaction = connection.begin()
        # A plain Session: Flask-SQLAlchemy's own get_bind() would pick the engine and
        # escape the test's transaction.
        session = scoped_session(sessionmaker(bind=connection, join_transaction_mode="create_savepoint"))
        previous = db.session
        db.session = session
        try:
            yield session
        finally:
            session.remove()
            db.session = previous
            if transaction.is_active:
                transaction.rollback()
            connection.close()


@pytest.fixture()
def pg(db_session):
    """A raw psycopg2 connection inside the test's transaction (same data as the ORM)."""
    connection = db_session.connection()
    return connection.connection.dbapi_connection


@pytest.fixture()
def client(app, db_session):
    return app.test_client()


@pytest.fixture()
def cli(app, db_session):
    return app.test_cli_runner()


@pytest.fixture()
def fresh_db(template_db):
    """A committed database of its own, for tests with several connections."""
    name = f"{PREFIX}_f{uuid.uuid4().hex[:8]}"
    url = create_database(name, template=template_db)
    yield url
    drop_database(name)


@contextlib.contextmanager
def serving(app):
    """`app` served by werkzeug in a thread on a free port of 127.0.0.1 (browser tests);
    yields its base URL, and stops the server and the app's connections after."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        with app.app_context():
            db.engine.dispose()


# ----------------------------------------------------------------------------- logins

ADMIN_EMAIL = "admin@example.net"
ADMIN_PASSWORD = "admin-password-1"
CUSTOMER_PASSWORD = "customer-password-1"


@pytest.fixture()
def admin_user(db_session):
    from tests import factories

    return factories.user(ADMIN_EMAIL, ADMIN_PASSWORD, role="admin")


@pytest.fixture()
def admin_client(client, admin_user):
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    return client


def login(client, email: str, password: str):
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 302, f"login of {email} failed"
    return response
