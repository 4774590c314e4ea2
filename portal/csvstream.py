"""The one CSV writer of the portal: every download (CDRs for admins and customers,
rates, rate decks, reports) is written here, so every one gets the same rules.

* Formula guard: a cell that a spreadsheet would run as a formula (starting with
  = + - @ TAB or CR; caller ids and names are chosen by outsiders) is prefixed with
  `'`. Numbers such as +33123456789 or -0.25 stay as they are.
* Streaming: a query export (`Export`) is read through a server-side cursor and written
  one chunk per batch of rows, so memory stays constant whatever the number of rows.
* Failures: an export that cannot run fails before the first byte (the query is planned
  in the view, and the first batch is read before the header is written), so the user
  gets an error page, not a file. If the stream breaks after rows were sent, the file
  ends with the line `INCOMPLETE_MARKER ...` and the error is raised again (the server
  logs it and cuts the connection): a truncated file never looks complete.

Lines end with "\\n"; values are written exactly as stored (Decimals to the last digit,
times in ISO 8601), None as an empty cell.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable, Iterator, Sequence

from . import dbapi

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?[0-9][0-9.]*([eE][+-]?[0-9]+)?$")
INCOMPLETE_MARKER = "# EXPORT INCOMPLETE"
BATCH = 1000


def cell(value) -> str:
    """One value as the text of a CSV cell, with the formula guard."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if text[:1] in FORMULA_STARTS and not _NUMBER.match(text):
        return "'" + text
    return text


def lines(header: Sequence[str], batches: Iterable[Sequence[Sequence]]) -> Iterator[str]:
    """The CSV text: the header line, then one chunk per batch of rows.

    The first batch is read before the header is yielded, so a query that fails at once
    fails before the first byte. A failure after that yields the incomplete marker as
    the last line, then raises again.
    """
    batches = iter(batches)
    first = next(batches, None)       # may raise: nothing has been written yet
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def text(rows) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(rows)
        return buffer.getvalue()

    yield text([[cell(name) for name in header]])
    written = 0
    try:
        batch = first
        while batch is not None:
            yield text([cell(v) for v in row] for row in batch)
            written += len(batch)
            batch = next(batches, None)
    except Exception:
        yield text([[f"{INCOMPLETE_MARKER}: the download failed after {written} rows and this file is "
                     "not complete. Download it again; if it fails again, tell the operator."]])
        raise


@dataclass(frozen=True)
class Export:
    """A CSV download described before it runs: its header and the query of its rows
    (one result column per header name, in order). Built by the domain services."""
    header: list[str]
    sql: str
    params: dict = field(default_factory=dict)

    def check(self, conn) -> None:
        """Plan the query without running it (see dbapi.explain)."""
        dbapi.explain(conn, self.sql, self.params)

    def batches(self, conn, size: int = BATCH) -> Iterator[list[tuple]]:
        return dbapi.batches(conn, self.sql, self.params, size)

    def text(self, conn, size: int = BATCH) -> Iterator[str]:
        """The CSV text of this export, one chunk per batch (see lines())."""
        return lines(self.header, self.batches(conn, size))


def response(filename: str, header: Sequence[str], batches: Callable[[], Iterable[Sequence[Sequence]]]):
    """A streamed CSV download. `batches` is called once streaming starts, inside the
    request's contexts pushed again (the view's own session is closed by then, so a
    query must take its connection there)."""
    from flask import Response, stream_with_context

    def generate():
        yield from lines(header, batches())

    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{_safe(filename)}"'})


def export_response(filename: str, export: Export, size: int = BATCH):
    """The download of a query export: planned now (a broken query answers with an
    error page), streamed from a server-side cursor once the view has returned."""
    export.check(dbapi.connection())
    return response(filename, export.header, lambda: export.batches(dbapi.connection(), size))


def _safe(filename: str) -> str:
    """A file name fit for the Content-Disposition header (names of ratecards and
    providers end up in it)."""
    return re.sub(r'[^A-Za-z0-9._ -]', "_", filename)
