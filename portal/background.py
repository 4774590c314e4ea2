"""Long back-office work in a thread of the portal, with connections of its own.

The rate deck import, the re-rate and the CDR archive or restore run this way: the page
starts the work and polls its status row. `conn` carries the work's changes, committed
when the work says so and rolled back otherwise; `status_conn` (autocommit) writes the
progress the page shows, visible at once. An exception rolls the work back and is
written to the status row by `failed`, so the page never waits forever.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg2


def start(dsn: str, name: str, work: Callable[[object, object], bool],
          failed: Callable[[object, Exception], None], *, reraise: bool = False) -> threading.Thread:
    """Run work(conn, status_conn) in a daemon thread named `name`; commit `conn` when it
    returns True. On an exception: roll back, failed(status_conn, exc), and raise it
    again in the thread when `reraise` (its traceback then goes to the log)."""

    def run():
        conn = psycopg2.connect(dsn)
        status_conn = psycopg2.connect(dsn)
        status_conn.autocommit = True
        try:
            if work(conn, status_conn):
                conn.commit()
            else:
                conn.rollback()
        except Exception as exc:  # noqa: BLE001 - the page must not poll forever
            conn.rollback()
            failed(status_conn, exc)
            if reraise:
                raise
        finally:
            conn.close()
            status_conn.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
