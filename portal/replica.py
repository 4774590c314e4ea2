"""Heavy read-only pages from a streaming replica (DATABASE_REPLICA_URL), with their lag.

The CDR browser and its CSV, reports, the dashboard, self care's calls and the API's
CDR reads scan many rows and change none: with `DATABASE_REPLICA_URL` set they read a
hot standby of the primary, so a month's report does not compete with route_call and
CDR billing for the primary's CPU and cache. Everything else (sign-in, balances,
ledger, forms, every write) stays on the primary, through `db.session` as always.

A view opts in with `@reads_replica`. For a GET or HEAD, that decorator checks a replica
connection out of the replica's own pool, measures its lag in the same round trip
that proves the connection alive (`LAG_SQL`), and then `dbapi.connection()` answers
that connection for the rest of the request (ORM lookups such as the customer list of
a filter form still read the primary: they are small). Without the setting nothing of
this runs: the decorator returns the view's own answer, `dbapi.connection()` pays one
`g.get`.

The primary serves the page instead, and the page says why, when:
* the replica cannot be reached (connect timeout REPLICA_CONNECT_TIMEOUT): the failure
  is remembered for REPLICA_RETRY_SECONDS, so the next requests do not wait again;
* it is more than REPLICA_MAX_LAG_SECONDS behind, or its lag is unknown;
* the person's own last change (a POST of theirs on a page, recorded in the session;
  signing in is not one) may not be on it yet: a page shows what its reader has just
  written;
* it fails in the middle of the view (connection lost, a query cancelled by a recovery
  conflict): the view runs again on the primary, once. A CSV already streaming cannot
  start again; it ends with csvstream's INCOMPLETE marker.

What was used is in `g.data_source`: the pages show a badge in the header (base.html),
every answer carries `X-Data-Source` (`replica` or `primary`), `X-Data-Lag` (seconds,
replica only) and `X-Data-Fallback` (why the primary served a replica page).
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass

import psycopg2
from flask import Flask, current_app, g, request, session
from sqlalchemy import create_engine, exc as sa_exc

from .config import sqlalchemy_url

log = logging.getLogger(__name__)

# Lag in seconds, measured on the standby itself:
# * not in recovery (the URL names a primary, or a promoted standby): 0;
# * a WAL receiver is running and has replayed all it received: 0 -- an idle primary
#   writes no transactions, so now() - pg_last_xact_replay_timestamp() would grow
#   without the replica being behind at all;
# * otherwise now() minus the commit time of the last transaction replayed: WAL is
#   waiting to be replayed, or no receiver is connected (primary unreachable, archive
#   recovery) and the replica cannot know what it misses -- an upper bound, and NULL
#   (unknown) before anything was replayed.
# pg_stat_wal_receiver shows a row (its pid) to any role, details to privileged ones only.
LAG_SQL = """
SELECT CASE
         WHEN NOT pg_is_in_recovery() THEN 0
         WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
              AND EXISTS (SELECT FROM pg_stat_wal_receiver) THEN 0
         ELSE extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())
       END::float8"""

# A change the person made this long before the replica's last replayed commit is on
# the replica (clock differences between the portal and the primary, and the replica's
# lag 0 while the last WAL is still on its way).
WRITE_MARGIN_SECONDS = 1.0
SESSION_KEY = "_last_write"


@dataclass(frozen=True)
class DataSource:
    """Where a replica page's reads came from."""
    replica: bool
    lag: float | None = None       # seconds behind the primary; None: unknown / not measured
    fallback: str | None = None    # why the primary served it, a few words
    detail: str | None = None      # and the error or the figures behind them

    @property
    def lag_text(self) -> str:
        if self.lag is None:
            return "lag unknown"
        return "up to date" if self.lag < 1 else f"{self.lag:.0f} s behind"

    def headers(self) -> dict[str, str]:
        if self.replica:
            return {"X-Data-Source": "replica", "X-Data-Lag": f"{self.lag or 0:.1f}"}
        return {"X-Data-Source": "primary", "X-Data-Fallback": self.fallback or ""}


class Replica:
    """The replica's engine and what this process knows of its health."""

    def __init__(self, url: str, *, max_lag: float, connect_timeout: int, retry_seconds: float):
        self.max_lag, self.retry_seconds = max_lag, retry_seconds
        # No pre-ping: LAG_SQL is the first statement on every checkout, and proves it.
        self.engine = create_engine(
            sqlalchemy_url(url), pool_pre_ping=False, pool_recycle=3600,
            connect_args={"connect_timeout": connect_timeout, "application_name": "billing-portal-replica",
                          # a replica URL naming a primary by mistake must still never be written
                          "options": "-c default_transaction_read_only=on"})
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._down_reason = ""

    def mark_down(self, reason: str) -> None:
        with self._lock:
            self._down_until = time.monotonic() + self.retry_seconds
            self._down_reason = reason
        log.warning("replica unusable for %.0f s: %s", self.retry_seconds, reason)

    def down(self) -> str | None:
        """Why the replica is not tried now, or None."""
        with self._lock:
            return self._down_reason if time.monotonic() < self._down_until else None

    def checkout(self):
        """(a pooled connection, its lag in seconds), or raises the connection's error.
        A pooled connection that died since its last use is replaced once."""
        for attempt in (1, 2):
            conn = self.engine.raw_connection()
            try:
                with conn.dbapi_connection.cursor() as cur:
                    cur.execute(LAG_SQL)
                    return conn, cur.fetchone()[0]
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                conn.invalidate()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def choose(self, wrote_at: float | None) -> tuple[DataSource, object | None]:
        """The data source of this request and, for the replica, its connection."""
        reason = self.down()
        if reason is not None:
            return DataSource(False, None, "replica unreachable", f"{reason}; retried after {self.retry_seconds:.0f} s"), None
        try:
            conn, lag = self.checkout()
        except (sa_exc.DBAPIError, psycopg2.Error) as exc:
            self.mark_down(_first_line(exc))
            return DataSource(False, None, "replica unreachable", _first_line(exc)), None
        fallback = detail = None
        if lag is None:
            fallback, detail = "replica lag unknown", "nothing replayed since it started, and not streaming"
        elif lag > self.max_lag:
            fallback = f"replica {lag:.0f} s behind"
            detail = f"more than REPLICA_MAX_LAG_SECONDS ({self.max_lag:.0f} s)"
        elif wrote_at is not None and time.time() - wrote_at < lag + WRITE_MARGIN_SECONDS:
            fallback = "your last change is not on the replica yet"
            detail = f"replica {lag:.1f} s behind"
        if fallback is not None:
            conn.close()
            return DataSource(False, lag, fallback, detail), None
        return DataSource(True, lag), conn


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def replica() -> Replica | None:
    return current_app.extensions.get("billing_replica")


def connection():
    """The replica connection of this request, or None when its reads go to the primary.
    A streamed CSV asks again after the view returned (its first connection went back
    to the pool at teardown): it gets another one of the same replica."""
    source = g.get("data_source")
    if source is None or not source.replica:
        return None
    conn = g.get("_replica_connection")
    if conn is None:
        conn = g._replica_connection = replica().engine.raw_connection()
    return conn.dbapi_connection


def _release() -> None:
    conn = g.pop("_replica_connection", None)
    if conn is not None:
        try:
            conn.close()   # back to the pool; the pool rolls the transaction back
        except Exception:  # noqa: BLE001 - a dead connection is discarded by the pool
            log.debug("replica connection not returned cleanly", exc_info=True)


def _failed_on_replica(exc: psycopg2.Error) -> bool:
    """The replica connection broke, or the standby cancelled the query to replay WAL."""
    conn = g.get("_replica_connection")
    broken = conn is not None and conn.dbapi_connection is not None and conn.dbapi_connection.closed
    return bool(broken) or isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) \
        or getattr(exc, "pgcode", None) == "40001"


def reads_replica(view):
    """Serve this GET view's `dbapi.connection()` reads from the replica (see module doc)."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        rep = replica()
        if rep is None or request.method not in ("GET", "HEAD"):
            return view(*args, **kwargs)
        source, conn = rep.choose(_last_write())
        g.data_source = source
        if conn is None:
            return view(*args, **kwargs)
        g._replica_connection = conn
        try:
            return view(*args, **kwargs)
        except psycopg2.Error as exc:
            if not _failed_on_replica(exc):
                raise
            reason = _first_line(exc)
            if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
                rep.mark_down(reason)
            _release()
            from .extensions import db

            db.session.rollback()
            g.data_source = DataSource(False, None, "replica failed during the request", reason)
            return view(*args, **kwargs)
    return wrapper


def _last_write() -> float | None:
    """When this person last changed something (self care and back office; API tokens
    have no session and read what the replica has)."""
    value = session.get(SESSION_KEY) if request.path.split("/")[1:2] != ["api"] else None
    return float(value) if isinstance(value, (int, float)) else None


def init_app(app: Flask) -> None:
    url = app.config.get("DATABASE_REPLICA_URL")
    if not url:
        return
    rep = Replica(url, max_lag=float(app.config["REPLICA_MAX_LAG_SECONDS"]),
                  connect_timeout=int(app.config["REPLICA_CONNECT_TIMEOUT"]),
                  retry_seconds=float(app.config["REPLICA_RETRY_SECONDS"]))
    from . import localtime

    localtime.install(app, rep.engine)   # the operator's time zone, as on the primary
    app.extensions["billing_replica"] = rep

    @app.teardown_appcontext
    def release_replica_connection(_exc):
        _release()

    @app.after_request
    def data_source_headers(response):
        source = g.get("data_source")
        if source is not None:
            response.headers.update(source.headers())
        if request.method not in ("GET", "HEAD", "OPTIONS") and response.status_code < 400 \
                and request.blueprint not in ("auth", None) and not request.path.startswith("/api/"):
            session[SESSION_KEY] = round(time.time(), 3)
        return response
