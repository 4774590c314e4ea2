"""Gap-free document numbers, one sequence per series and year.

The counter row is created or incremented with one upsert in the issuing
transaction. PostgreSQL keeps that row locked until the transaction ends, so two
issuers queue on it (never the same number), and a rollback gives the number back
(never a gap). Keep the issuing transaction short: it holds the year's counter.
"""
from __future__ import annotations

from sqlalchemy import text

from ..extensions import db

SERIES = {"invoice": "INV", "statement": "ST", "credit_note": "CN"}
_FORMAT = {"INV": "{year}-{seq:06d}", "ST": "ST-{year}-{seq:06d}", "CN": "CN-{year}-{seq:06d}"}


def format_number(series: str, year: int, seq: int) -> str:
    return _FORMAT[series].format(year=year, seq=seq)


def next_number(series: str, year: int) -> tuple[int, str]:
    """Take the next number of `series` for `year` in the current transaction."""
    seq = db.session.execute(text("""
        INSERT INTO billing.invoice_counters AS c (series, year, last_number) VALUES (:series, :year, 1)
        ON CONFLICT (series, year) DO UPDATE SET last_number = c.last_number + 1
        RETURNING last_number"""), {"series": series, "year": year}).scalar_one()
    return seq, format_number(series, year, seq)
