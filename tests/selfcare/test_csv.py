"""CSV downloads: only the customer's own rows, exact amounts, streamed in batches."""
from __future__ import annotations

import csv
import io

from portal.cdrs import services
from portal.extensions import db

from .conftest import assert_no_b


def _csv(response):
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(b"".join(response.response).decode())))


def test_cdr_csv_has_own_rows_only(client_a, world):
    response = client_a.get("/my/cdrs.csv", query_string={"date_from": ""})
    assert response.is_streamed
    rows = _csv(response)
    assert [r["destination"] for r in rows] == ["33987654321", "33123456789", "447700900123"]  # oldest first
    first = rows[1]
    assert (first["amount"], first["rate_per_minute"], first["billsec"], first["billed_seconds"], first["endpoint"],
            first["destination_name"], first["rate_prefix"]) == (
        "0.040000", "0.020000", "65", "120", "alpha-office", "France", "33")
    assert_no_b(response.get_data())


def test_cdr_csv_respects_filters_and_default_month(client_a, world):
    assert [r["destination"] for r in _csv(client_a.get("/my/cdrs.csv"))] == ["33123456789", "447700900123"]
    rows = _csv(client_a.get("/my/cdrs.csv", query_string={"date_from": "", "answered": "no"}))
    assert [r["destination"] for r in rows] == ["447700900123"]


def test_cdr_csv_streams_in_batches(client_a, world):
    db.session.execute(db.text("""
        INSERT INTO billing.cdr (fs_cdr_id, uuid, customer_id, endpoint_id, destination, start_stamp, billsec,
                                 sell_amount, caller_id)
        SELECT 100000 + i, 'bulk-' || i, :c, :e, '33' || lpad(i::text, 9, '0'),
               date_trunc('month', now()) + i * interval '1 second', 10, 0.001, '=cmd|calc'
          FROM generate_series(1, 2500) AS i"""), {"c": world.a.customer.id, "e": world.a.sip.id})
    response = client_a.get("/my/cdrs.csv")
    chunks = list(response.response)
    assert len(chunks) >= 4                        # header + 3 batches of at most 1000 rows
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode())))
    assert len(rows) == 2502
    bulk = [r for r in rows if r["uuid"].startswith("bulk-")]
    assert sum(int(r["billsec"]) for r in bulk) == 25000
    assert bulk[0]["caller_id"] == "'=cmd|calc"   # spreadsheet formulas are defused


def test_iter_cdrs_uses_a_server_side_cursor(world, pg):
    """Constant memory: rows come from the database in batches, never all at once."""
    batches = list(services.export(services.CdrFilter(), customer_id=world.a.customer.id).batches(pg, 2))
    assert [len(b) for b in batches] == [2, 1]


def test_rates_csv(client_a, world):
    rows = _csv(client_a.get("/my/rates.csv"))
    assert [(r["prefix"], r["rate_per_minute"], r["applied_prefix"], r["ratecard"], r["available"]) for r in rows] == [
        ("33", "0.020000", "33", "alpha-retail", "yes"),
        ("336", "0.020000", "33", "alpha-retail", "yes"),
        ("3361", "0.020000", "33", "alpha-retail", "yes"),
        ("44", "0.050000", "44", "alpha-extra", "yes"),
    ]
    assert rows[3]["connect_fee"] == "0.010000" and rows[3]["increment"] == "1/1" and rows[3]["min_duration"] == "10"
    searched = _csv(client_a.get("/my/rates.csv", query_string={"q": "united"}))
    assert [r["prefix"] for r in searched] == ["44"]
    assert_no_b(client_a.get("/my/rates.csv").get_data())
