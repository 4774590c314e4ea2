"""portal.csvstream, the one CSV writer: the formula guard, streaming in batches from a
server-side cursor, failing before the first byte, and the marker of a cut file.
Queries run on the real test database; the failures are real PostgreSQL errors."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from decimal import Decimal

import psycopg2
import pytest

from portal import csvstream
from portal.csvstream import Export, cell, lines


@pytest.mark.parametrize("value, written", [
    ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
    ("@SUM(1+1)", "'@SUM(1+1)"),
    ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("\tTAB", "'\tTAB"),
    ("\rCR", "'\rCR"),
    ("+33123456789", "+33123456789"),         # a caller id in E.164 stays a number
    ("-0.250000", "-0.250000"),               # a negative amount stays a number
    ("1E-7", "1E-7"),
    ("alpha = beta", "alpha = beta"),         # only the first character counts
    ("", ""),
])
def test_formula_guard(value, written):
    assert cell(value) == written


def test_cells_are_exact():
    assert cell(None) == ""
    assert cell(Decimal("-0.000001")) == "-0.000001"
    assert cell(Decimal("12.345600")) == "12.345600"
    assert cell(datetime(2026, 3, 1, 12, 30, 5, 250, tzinfo=timezone.utc)) == "2026-03-01T12:30:05.000250+00:00"
    assert cell(7) == "7"


def test_lines_guard_every_cell_and_the_header():
    text = "".join(lines(["=h", "ok"], [[("=1+1", None)], [("@x", Decimal("-1.5"))]]))
    assert list(csv.reader(io.StringIO(text))) == [["'=h", "ok"], ["'=1+1", ""], ["'@x", "-1.5"]]


def test_export_streams_one_chunk_per_batch(pg):
    export = Export(["n", "label"], "SELECT i, '=' || i FROM generate_series(1, 5) AS i")
    chunks = list(export.text(pg, size=2))
    assert chunks[0] == "n,label\n"
    assert [c.count("\n") for c in chunks[1:]] == [2, 2, 1]
    assert "".join(chunks).endswith("5,'=5\n")


def test_a_query_that_fails_at_once_fails_before_the_first_byte(pg):
    """Division by zero on the first row: not even the header is produced."""
    produced = []
    with pytest.raises(psycopg2.errors.DivisionByZero):
        for chunk in Export(["x"], "SELECT 1 / (i - 1) FROM generate_series(1, 3) AS i").text(pg, size=10):
            produced.append(chunk)
    assert produced == []


def test_a_stream_cut_midway_ends_with_the_incomplete_marker(pg):
    """Rows 1-2 are fine; the second fetch reaches i = 3 and PostgreSQL fails: the
    rows sent so far are followed by the marker line, then the error is raised."""
    produced = []
    with pytest.raises(psycopg2.errors.DivisionByZero):
        for chunk in Export(["x"], "SELECT 1 / (i - 3) FROM generate_series(1, 5) AS i").text(pg, size=2):
            produced.append(chunk)
    rows = list(csv.reader(io.StringIO("".join(produced))))
    assert rows[:3] == [["x"], ["0"], ["-1"]]
    assert rows[-1][0].startswith(csvstream.INCOMPLETE_MARKER) and "after 2 rows" in rows[-1][0]


def test_check_plans_the_query_without_running_it(pg):
    Export(["x"], "SELECT 1 / (i - 1) FROM generate_series(1, 3) AS i").check(pg)   # runs fine: only planned
    with pytest.raises(psycopg2.errors.UndefinedColumn):
        Export(["x"], "SELECT no_such_column FROM billing.cdr").check(pg)
