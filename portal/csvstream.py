"""Streaming CSV from a query: a server-side (named) cursor and one text chunk per
batch, so memory stays constant whatever the number of rows (CDR and rate exports)."""
from __future__ import annotations

import csv
import io
import uuid
from typing import Callable, Iterator, Sequence


def stream_csv(conn, sql: str, params, header: Sequence[str], batch: int = 5000,
               row: Callable[[tuple], Sequence] = lambda r: r) -> Iterator[str]:
    """Yield the header line, then the CSV lines of `sql`'s rows, `batch` rows a chunk.

    `conn` is a psycopg2 connection in a transaction (named cursors need one).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    yield buffer.getvalue()
    with conn.cursor(name=f"csv_{uuid.uuid4().hex[:12]}") as cur:
        cur.itersize = batch
        cur.execute(sql, params)
        while True:
            rows = cur.fetchmany(batch)
            if not rows:
                break
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(row(r) for r in rows)
            yield buffer.getvalue()
