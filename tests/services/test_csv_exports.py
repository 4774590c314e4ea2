"""Every CSV download of the portal goes through portal.csvstream: cells a spreadsheet
would run as formulas are neutralised in every one, and a download cut mid-way ends
with the incomplete marker. A new `.csv` route fails test_every_csv_route_is_covered
until it is added to DOWNLOADS below."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import psycopg2
import pytest

from portal import csvstream, dbapi
from tests import factories
from tests.selfcare.conftest import insert_cdr

HYPERLINK = '=HYPERLINK("http://x","y")'
SUM = "@SUM(1+1)"
MINUS = "-1-1"          # a legal customer name that spreadsheets compute to -2


@pytest.fixture()
def hostile(world):
    """Text chosen by outsiders in every free-text column a download carries: caller
    ids (chosen by whoever calls), a customer and an endpoint name, a destination name."""
    a = world.a
    for caller_id in (HYPERLINK, SUM):
        insert_cdr(a.customer, a.sip, "339912345", world.now - timedelta(minutes=1), 30, "0.010000",
                   caller_id=caller_id, prefix="3399")
    factories.destination("3399", factories.weight("hostile"), HYPERLINK)
    factories.sell_rate(a.cards[0], "3399", "0.090000")
    other = factories.customer(name=MINUS)
    endpoint = factories.endpoint(other, factories.permission([], name="none"), name="-2-2", ip="192.0.2.77/32")
    insert_cdr(other, endpoint, "339900000", world.now - timedelta(minutes=2), 10, "0.001000", caller_id=SUM)
    return world


def _rows(response) -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(b"".join(response.response).decode())))


def _cells(rows) -> set[str]:
    return {value for row in rows for value in row}


def _staff_cdrs(world, clients):
    return clients.staff().get("/admin/cdrs/export.csv")


def _customer_cdrs(world, clients):
    return clients.customer().get("/my/cdrs.csv", query_string={"date_from": ""})


def _customer_rates(world, clients):
    return clients.customer().get("/my/rates.csv")


def _days_around(world):
    # the calls are a minute or two old: the day before and after too, so a run just
    # after midnight (in any time zone) still finds them
    return {"date_from": (world.now - timedelta(days=1)).date().isoformat(),
            "date_to": (world.now + timedelta(days=1)).date().isoformat()}


def _report_by_customer(world, clients):
    return clients.staff().get("/admin/reports.csv", query_string={"dimension": "customer", **_days_around(world)})


def _report_by_destination(world, clients):
    return clients.staff().get("/admin/reports.csv", query_string={"dimension": "destination", **_days_around(world)})


def _rate_deck(world, clients):
    return clients.staff().get(f"/admin/rate-exports/ratecard/{world.a.cards[0].id}.csv")


def _exchange_rates(world, clients):
    factories.exchange_rate("SEK", "EUR", "0.0871", world.now - timedelta(days=1))
    return clients.staff().get("/admin/exchange-rates.csv")


# (endpoint, how to download it, the hostile texts its columns carry)
DOWNLOADS = [
    ("admin.cdrs_export", _staff_cdrs, {HYPERLINK, SUM, MINUS, "-2-2"}),
    ("selfcare.cdrs_csv", _customer_cdrs, {HYPERLINK, SUM}),
    ("selfcare.rates_csv", _customer_rates, {HYPERLINK}),
    ("admin.reports_csv", _report_by_customer, {MINUS}),
    ("admin.reports_csv", _report_by_destination, {HYPERLINK}),
    # Rate decks have no free-text column (prefixes are digits, names stay out):
    # they are covered by the stream tests below.
    ("admin.rate_export", _rate_deck, set()),
    # Exchange rates: currency codes, numbers and dates only.
    ("admin.exchange_rates_csv", _exchange_rates, set()),
]
STREAMED = [d for d in DOWNLOADS if d[1] not in (_report_by_customer, _report_by_destination, _exchange_rates)]


class Clients:
    """Signs in the audience a download needs, when it is asked for (one per test)."""

    def __init__(self, request):
        self.customer = lambda: request.getfixturevalue("customer_client")
        self.staff = lambda: request.getfixturevalue("staff_client")


@pytest.fixture()
def clients(request, hostile):
    return Clients(request)


def test_every_csv_route_is_covered(app):
    csv_routes = {r.endpoint for r in app.url_map.iter_rules() if r.rule.endswith(".csv")}
    assert csv_routes == {endpoint for endpoint, _, _ in DOWNLOADS}


@pytest.mark.parametrize("endpoint, download, texts", DOWNLOADS, ids=lambda d: getattr(d, "__name__", None))
def test_formulas_are_neutralised(clients, hostile, endpoint, download, texts):
    cells = _cells(_rows(download(hostile, clients)))
    for text in texts:
        assert "'" + text in cells, f"{endpoint}: {text!r} missing or not neutralised"
        assert text not in cells, f"{endpoint}: {text!r} written as a formula"
    # Numbers stay numbers: no cell made of digits, signs and dots is quoted.
    assert not any(c.startswith("'") and c[1:].lstrip("+-").replace(".", "").isdigit() for c in cells)


def test_admin_cdr_export_neutralises_caller_ids(clients, hostile):
    rows = list(csv.DictReader(io.StringIO(clients.staff().get("/admin/cdrs/export.csv").get_data(as_text=True))))
    assert sorted(r["caller_id"] for r in rows if r["destination"].startswith("3399")) == \
        sorted(["'" + HYPERLINK, "'" + SUM, "'" + SUM])
    assert {r["customer"] for r in rows if r["destination"] == "339900000"} == {"'" + MINUS}


def _cut_after_first_batch(monkeypatch):
    """The database connection drops after the first batch (a real cut)."""
    real = dbapi.batches

    def batches(conn, sql, params=None, size=1000):
        source = real(conn, sql, params, size)
        yield next(source)
        source.close()
        raise psycopg2.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(dbapi, "batches", batches)


def _consume(response) -> list[bytes]:
    chunks = []
    with pytest.raises(psycopg2.OperationalError):
        for chunk in response.response:
            chunks.append(chunk)
    return chunks


@pytest.mark.parametrize("endpoint, download, texts", STREAMED, ids=lambda d: getattr(d, "__name__", None))
def test_a_download_cut_midway_ends_with_the_marker(clients, hostile, monkeypatch, endpoint, download, texts):
    _cut_after_first_batch(monkeypatch)
    chunks = _consume(download(hostile, clients))
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode())))
    assert len(rows) >= 3, "the header and the rows sent before the cut"
    assert rows[-1][0].startswith(csvstream.INCOMPLETE_MARKER)
    assert not any(r[0].startswith(csvstream.INCOMPLETE_MARKER) for r in rows[:-1])


@pytest.mark.parametrize("endpoint, download, texts", STREAMED, ids=lambda d: getattr(d, "__name__", None))
def test_a_download_that_cannot_start_sends_nothing(clients, hostile, monkeypatch, endpoint, download, texts):
    def batches(conn, sql, params=None, size=1000):
        raise psycopg2.OperationalError("server closed the connection unexpectedly")
        yield  # noqa: unreachable (a generator, like the real one)

    monkeypatch.setattr(dbapi, "batches", batches)
    # Raised while the server waits for the first chunk (the test client reads it as
    # servers do, to send the status line): no byte of a file goes out; the server
    # answers 500 instead.
    with pytest.raises(psycopg2.OperationalError):
        download(hostile, clients)
