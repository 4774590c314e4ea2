"""The database as the domain services see it: a DB-API (psycopg2) connection passed in
as their first argument, and rows returned as plain dicts.

Services never reach for the request: a view passes `connection()` (the connection of
the request's ORM session, so both see one transaction); a job, a background thread or
a benchmark passes its own connection. SQL uses psycopg2's `%(name)s` parameters.
"""
from __future__ import annotations

import uuid
from datetime import date
from typing import Iterator

from flask import g

from .extensions import db


def connection():
    """The psycopg2 connection under the current ORM session (same transaction); in a
    view marked `@reads_replica` whose request the replica serves, the replica's
    connection (portal/replica.py)."""
    if g.get("data_source") is not None:
        from . import replica

        conn = replica.connection()
        if conn is not None:
            return conn
    return db.session.connection().connection.dbapi_connection


def fetch_all(conn, sql: str, params: dict | None = None) -> list[dict]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def fetch_one(conn, sql: str, params: dict | None = None) -> dict | None:
    rows = fetch_all(conn, sql, params)
    return rows[0] if rows else None


def fetch_value(conn, sql: str, params: dict | None = None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def batches(conn, sql: str, params: dict | None = None, size: int = 1000) -> Iterator[list[tuple]]:
    """The rows of `sql`, `size` at a time, through a server-side (named) cursor: memory
    stays constant on both sides whatever the number of rows. Needs a transaction."""
    with conn.cursor(name=f"batches_{uuid.uuid4().hex[:12]}") as cur:
        cur.itersize = size
        cur.execute(sql, params)
        while rows := cur.fetchmany(size):
            yield rows


def explain(conn, sql: str, params: dict | None = None) -> None:
    """Plan `sql` without running it: a statement that cannot run (a missing function,
    a bad parameter type) raises here rather than halfway through a download."""
    with conn.cursor() as cur:
        cur.execute("EXPLAIN " + sql, params)


def like_escape(value: str) -> str:
    """`value` matched literally by LIKE / ILIKE (backslash, the default escape character)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def today(conn) -> date:
    """Today in the database session's time zone (self care reads dates in it)."""
    return fetch_value(conn, "SELECT current_date")


def timezone(conn) -> str:
    """The database session's time zone, the one self care reads and shows dates in."""
    return fetch_value(conn, "SELECT current_setting('TimeZone')")
